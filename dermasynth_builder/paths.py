"""Where the package's data lives, in a source checkout and after a plain ``pip install .``.

In a checkout, ``templates/``, ``hub_dataset/`` and ``dataset_card.md`` sit at the repository
root; the wheel ships copies under ``dermasynth_builder/_data/``. Both are looked up here so no
other module cares which one it runs from.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SAMPLE = PACKAGE / "sample"


def data_path(name: str) -> Path:
    """The installed copy of a root-level data file or folder, else the checkout's."""
    for candidate in (PACKAGE / "_data" / name, PACKAGE.parent / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"package data {name!r} not found (looked in {PACKAGE / '_data'})")


def templates_dir() -> Path:
    return data_path("templates")


def sample_root(source: str) -> Path:
    """The bundled sample copy of ``source`` in its real on-disk layout."""
    return SAMPLE / source
