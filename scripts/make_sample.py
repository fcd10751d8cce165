"""(Re)create the bundled synthetic sample in ``dermasynth_builder/sample/``.

Why: the readers must be tested against each source's *real* on-disk layout (folder nesting,
exact CSV headers and column order, line endings, missing-value styles, quirks), but real rows
and images cannot be shipped. This script writes a handful of invented rows per source in that
layout, with images painted by ``tests.support.synthetic.draw_lesion``.

The formats follow ``shared/reference/sources.md`` (sections 1-5). Every row is invented; no
real row, identifier or image is copied. Each source's rows and builder live in
``scripts/sample_layouts/<source>.py``; the shared writers in ``sample_layouts/writers.py``.

Determinism: the sample folder is deleted and rebuilt; image seeds come from a CRC32 of the file
name; CSVs are written with a fixed line ending (CRLF for the ISIC export, LF elsewhere, as in
the real files) and UTF-8 without BOM; JPEG/PNG encoding embeds no timestamps. Two runs give
byte-identical files.

Run from the repository root::

    /work/venv/bin/python scripts/make_sample.py
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

# Run as ``python scripts/make_sample.py`` or loaded by path (tests): either way the per-source
# layouts in ``scripts/sample_layouts/`` must be importable.
_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

from sample_layouts.bcn20000 import make_bcn20000  # noqa: E402
from sample_layouts.derm12345 import make_derm12345  # noqa: E402
from sample_layouts.hiba import make_hiba  # noqa: E402
from sample_layouts.pad_ufes_20 import make_pad_ufes_20  # noqa: E402
from sample_layouts.scin import make_scin  # noqa: E402
from sample_layouts.writers import SAMPLE_DIR  # noqa: E402

README = """\
# Bundled synthetic sample

Everything in this folder is **invented**. The rows were written by hand and the images were
painted by `tests.support.synthetic.draw_lesion`; `scripts/make_sample.py` rebuilds the
folder byte for byte. It is **not real patient data**, and no row, identifier or image is copied
from the real datasets. Identifiers only follow the real *formats* (`DERM_`, `PID_`, `BCN_`,
`PAT_`, `IL_`, `IP_`, `ISIC_`, signed int64 SCIN ids).

Each source sits in its real on-disk layout, with the exact official CSV header and column
order, so readers can be tested against the real formats. The harmless real-world quirks
included are:

- `derm12345/`: separate train/test CSVs (LF); header uses `copyright-license` (hyphen); images
  under `derm12345_train_part_1/` (labels up to `isl`), `derm12345_train_part_2/` and
  `derm12345_test/`, each in `<label>/<image_id>.jpg`; rows sorted by label; several images per
  patient; `ak` has malignancy `indeterminate`; generic classes (`jd`, `mel`) repeat
  `main_class_2` in `sub_class`.
- `bcn20000/`: figshare 2024 release; `bcn_filename` includes `.jpg`; images nested twice
  (`BCN_20k_train/bcn_20k_train/`); test `diagnosis` is empty; train lesion ids `BCN_0009101`
  vs test `BCN9205`; two images of one lesion; `age_approx` as float with one empty; one empty
  `sex`; one empty `anatom_site_general`.
- `pad_ufes_20/`: 26-column `metadata.csv` (LF) with the `fitspatrick` misspelling and float
  values (`2.0`); two rows with the empty questionnaire block (all non-biopsied); `UNK` in
  symptom cells and in one `background_father`; `BRASIL` next to `BRAZIL`; two images of one
  lesion and two lesions of one patient; images split over `images/imgs_part_1/imgs_part_1/`
  (double nesting), `images/imgs_part_2/`, `images/imgs_part_3/`; one RGBA PNG; one 190x191 PNG.
- `scin/`: bucket mirror `dataset/`; 57-column cases and 17-column labels files; signed int64
  `case_id`s and image names that lose precision as float; `image_N_path` values are
  bucket-relative (`dataset/images/...`) and empty when absent; cases with 1, 2 and 3 images;
  `YES`/blank multi-select columns; `AGE_UNKNOWN`, `OTHER_OR_UNSPECIFIED`, `NONE_IDENTIFIED`,
  `UNKNOWN` sentinels; Python-literal list/dict label strings (one name contains a comma); one
  case with an empty weighted label (`{}`), i.e. no diagnosis. `combined_race` values are a
  guess at the real style.
- `hiba/`: ISIC Archive export with the 21-column header (CRLF), flat `ISIC_*.jpg`,
  `attribution.txt` and `licenses/CC-BY.txt` (short placeholder texts); dermoscopic and clinical
  (`clinical: close-up`, `clinical: overview`) images sharing a `lesion_id`; a vascular row with
  empty `diagnosis_3`; `Melanoma, NOS` (quoted, contains a comma); Roman-numeral
  `fitzpatrick_skin_type` with one empty; `True`/`False`/empty history columns; one empty
  `anatom_site_general`.
"""


def main(argv: list[str] | None = None) -> int:
    """Write the sample to ``dermasynth_builder/sample`` (or to the folder given as argument)."""
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]).resolve() if args else SAMPLE_DIR
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    builders: dict[str, Callable[[Path], dict[str, int]]] = {
        "derm12345": make_derm12345,
        "bcn20000": make_bcn20000,
        "pad_ufes_20": make_pad_ufes_20,
        "scin": make_scin,
        "hiba": make_hiba,
    }
    for source, build in builders.items():
        counts = build(out / source)
        summary = ", ".join(f"{name}: {n} rows" for name, n in counts.items())
        print(f"{source}: {summary}")
    (out / "README.md").write_bytes(README.encode("utf-8"))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"total: {total} bytes in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
