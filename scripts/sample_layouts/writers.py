"""Shared writers for the bundled sample: paths, line endings, CSV/JPEG/PNG output.

Images are painted by ``tests.support.synthetic.draw_lesion``, seeded by a CRC32 of the file
name, so two runs give byte-identical files.
"""

from __future__ import annotations

import csv
import importlib.util
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType

from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLE_DIR = REPO_ROOT / "dermasynth_builder" / "sample"

LF = "\n"
CRLF = "\r\n"

JPEG_SIZE = 240
JPEG_QUALITY = 80
PNG_SIZE = 192


def _load_synthetic() -> ModuleType:
    """Import ``tests/support/synthetic.py`` by path.

    Why: the script only needs the drawing helpers, and loading the file directly avoids
    importing the package ``__init__`` (which may pull in optional runtime dependencies).
    """
    path = REPO_ROOT / "tests" / "support" / "synthetic.py"
    spec = importlib.util.spec_from_file_location("_dermasynth_synthetic", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SYN = _load_synthetic()


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _seed(name: str) -> int:
    """Stable per-file seed (CRC32 of the file name; Python's ``hash`` is salted per run)."""
    return zlib.crc32(name.encode("utf-8"))


def write_csv(
    path: Path, header: Sequence[str], rows: Iterable[Mapping[str, str]], line_end: str
) -> int:
    """Write ``rows`` under ``header`` with minimal quoting and a fixed line ending.

    Missing keys become empty cells; unknown keys raise, which catches typos in the source
    tables. Returns the number of data rows.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(
            fh, fieldnames=list(header), restval="", extrasaction="raise", lineterminator=line_end
        )
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def write_jpeg(path: Path, modality: str, size: int = JPEG_SIZE) -> None:
    """Draw a lesion seeded by the file name and save it as JPEG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = SYN.draw_lesion(_seed(path.name), size, modality)
    path.write_bytes(SYN.encode_jpeg(img, quality=JPEG_QUALITY))


def write_png(
    path: Path,
    modality: str = "clinical",
    size: int = PNG_SIZE,
    transform: Callable[[Image.Image], Image.Image] | None = None,
) -> None:
    """Draw a lesion seeded by the file name, optionally transform it, and save it as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = SYN.draw_lesion(_seed(path.name), size, modality)
    if transform is not None:
        img = transform(img)
    path.write_bytes(SYN.encode_png(img))


def split_header(line: str) -> list[str]:
    """Split a header written exactly as the real file's first line (easy to diff by eye)."""
    return line.split(",")
