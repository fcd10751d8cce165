"""What a release is: its summary (`Release`), its errors, and the hub builder it is made with.

Both `package` (which builds a release) and `card` (which describes one) import this module and
not each other, so neither drags the other in and there is no import cycle.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .paths import data_path
from .run.jsonl import RunFolderError

BUILDER_MODULE = "dermasynth_hub_builder"


_SIZE = re.compile(r"^\s*\d+(?:\.\d+)?\s*(?:[KMGT]i?B|B)?\s*$", re.I)


_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS.update({"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40})


def size_in_bytes(size: str | int) -> int:
    """A shard size (bytes, or a number with a unit such as 500MB or 2GiB) in bytes, read as
    `datasets` reads it (KB = 1000 bytes, KiB = 1024)."""
    if isinstance(size, int):
        return size
    text = size.strip().upper().replace(" ", "")
    number = text.rstrip("KMGTIB")
    return int(float(number) * _UNITS[text[len(number) :]])


def check_shard_size(value: str | int) -> str | int:
    """A shard size `datasets` takes (bytes, or a number with a unit such as 500MB)."""
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and _SIZE.match(value) and size_in_bytes(value) > 0:
        return value.strip()
    raise ValueError(f"{value!r} is not a size such as 500MB, 1GB or 2GiB")


class ReleaseError(RunFolderError):
    """The run cannot be packaged as asked (a `RunFolderError`: the CLI prints one line, exit 2)."""


class ForeignContentError(ReleaseError):
    """``--out`` holds something an earlier release did not write: it is left untouched."""


@dataclass(slots=True)
class Release:
    """What a packaged release holds; the card and the CLI summary are made from it."""

    out: Path
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # config -> split -> images
    nbytes: dict[str, dict[str, int]] = field(default_factory=dict)  # config -> split -> bytes
    files: dict[str, list[str]] = field(default_factory=dict)  # config -> parquet paths
    images: Counter = field(default_factory=Counter)  # source -> distinct images
    modalities: dict[str, Counter] = field(default_factory=dict)  # source -> modality -> images
    licenses: dict[str, set[str]] = field(default_factory=dict)  # source -> licences of its rows
    models: Counter = field(default_factory=Counter)  # model -> pairs
    figures: list[str] = field(default_factory=list)  # figures/*.png shipped with the card
    pairs: Counter = field(default_factory=Counter)  # source -> pairs
    diagnoses: list[str] = field(default_factory=list)  # the shared `diagnosis` label space
    imported: bool = False  # the pairs are the published DermaSynth text (import-original)
    text_license: str | None = None  # the text's licence when it is not the image's
    max_image_side: int | None = None  # larger images were re-encoded (None: none was)
    reencoded: int = 0  # images stored re-encoded rather than as their original bytes
    test_fraction: float = 0.0

    @property
    def offline(self) -> bool:
        """Were any pairs written by the offline backend (template text, no model saw them)?"""
        return self.models.get("offline", 0) > 0


def builder_module() -> Any:
    """Import hub_dataset/dermasynth.py (a file, not a package module) by path, once."""
    if BUILDER_MODULE in sys.modules:
        return sys.modules[BUILDER_MODULE]
    path = data_path("hub_dataset") / "dermasynth.py"
    spec = importlib.util.spec_from_file_location(BUILDER_MODULE, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[BUILDER_MODULE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[BUILDER_MODULE]  # a failed import must not leave a half module behind
        raise
    return module
