"""The bundled sample's layouts, one module per source, written by ``scripts/make_sample.py``.

``writers`` holds the shared CSV/JPEG/PNG writers; each other module holds one source's
invented rows and its ``make_<source>(root)`` builder, which returns rows written per CSV.
"""
