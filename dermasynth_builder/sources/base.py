"""What every source reader shares: the Source base class, CSV loading, value cleaning, and the
image checks that turn each metadata row into exactly one record or one skip with a reason."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..images import check_image, index_files
from ..records import (
    BAD_ROW,
    DUPLICATE_IMAGE,
    FITZPATRICK,
    IMAGE_MISSING,
    IMAGE_UNREADABLE,
    PATH_ESCAPES_ROOT,
    SPLITS,
    Skip,
    SourceRecord,
)
from .registry import SourceInfo, source_info

# Spellings of "no value" across the five sources; compared case-insensitively.
NULLS = frozenset({"", "nan", "none", "null", "unk", "n/a"})
ProgressFn = Callable[[int, int], None]


class SourceFormatError(Exception):
    """The source folder cannot be read at all: a metadata file or required column is missing."""


@dataclass(slots=True)
class Candidate:
    """A parsed metadata row that still needs its image checked."""

    record: SourceRecord
    file: str
    line: int


@dataclass(slots=True)
class ReadResult:
    """All a read produced: the records, the rows skipped (with why) and value warnings."""

    source: str
    root: str
    records: list[SourceRecord] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    warnings: list[Skip] = field(default_factory=list)


# No metadata cell of any source comes near this; a larger one would be copied into every
# record and prompt (a 200 MB cell made a 419 MB plan).
MAX_CELL_CHARS = 10_000


class Row:
    """One metadata row with typed accessors that never raise: a bad value becomes ``None``
    and a warning naming the file, line and column, so one odd cell does not cost an image."""

    __slots__ = ("values", "file", "line", "image_id", "warnings")

    def __init__(self, values: dict[str, str], file: str, line: int, warnings: list[Skip]):
        self.values = values
        self.file = file
        self.line = line
        self.image_id = ""
        self.warnings = warnings
        for column, value in values.items():
            if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
                values[column] = value[:MAX_CELL_CHARS]
                self.warn(column, f"cell of {len(value):,} characters cut to {MAX_CELL_CHARS:,}")

    def warn(self, column: str, message: str) -> None:
        self.warnings.append(
            Skip(self.image_id, "bad value", f"{column}: {message}", self.file, self.line)
        )

    def text(self, column: str, nulls: Iterable[str] = ()) -> str | None:
        raw = self.values.get(column)
        if raw is None:
            return None
        value = str(raw).strip()
        low = value.lower()
        if low in NULLS or any(low == n.lower() for n in nulls):
            return None
        return value

    def number(self, column: str) -> float | None:
        value = self.text(column)
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            self.warn(column, f"{value!r} is not a number; treated as missing")
            return None

    def integer(self, column: str) -> int | None:
        value = self.number(column)
        return None if value is None else int(round(value))

    def boolean(self, column: str) -> bool | None:
        value = self.text(column)
        if value is None:
            return None
        low = value.lower()
        if low in {"true", "yes", "1", "1.0"}:
            return True
        if low in {"false", "no", "0", "0.0"}:
            return False
        self.warn(column, f"{value!r} is not true/false; treated as missing")
        return None

    def sex(self, column: str) -> str | None:
        value = self.text(column, nulls=("OTHER_OR_UNSPECIFIED", "unknown", "other"))
        if value is None:
            return None
        low = value.lower()
        if low in {"male", "m", "man"}:
            return "male"
        if low in {"female", "f", "woman"}:
            return "female"
        self.warn(column, f"{value!r} is not male/female; treated as missing")
        return None

    def split(self, column: str, default: str | None = None) -> str | None:
        """The official split ("train"/"test"); ``default`` (the file's own split) when empty."""
        value = self.text(column)
        if value is None:
            return default
        low = value.lower()
        if low in SPLITS:
            return low
        self.warn(column, f"{value!r} is not train/test; the file's split is used")
        return default

    def fitzpatrick(self, column: str) -> str | None:
        """Normalize Fitzpatrick types to Roman numerals: "II", "2.0" and "FST2" all give "II"."""
        value = self.text(column, nulls=("NONE_IDENTIFIED", "NONE_SELECTED", "unknown"))
        if value is None:
            return None
        token = value.upper().removeprefix("FST").removeprefix("TYPE").strip()
        if token in FITZPATRICK:
            return token
        try:
            number = float(token)
        except ValueError:
            number = 0
        if number.is_integer() and 1 <= number <= 6:
            return FITZPATRICK[int(number) - 1]
        self.warn(column, f"{value!r} is not a Fitzpatrick type I-VI; treated as missing")
        return None


def load_csv(path: Path, required: Iterable[str]) -> list[dict[str, str]]:
    """Read a metadata CSV as text (no type guessing: ids like SCIN's int64 case ids stay exact)."""
    if not path.is_file():
        raise SourceFormatError(f"metadata file not found: {path}")
    import pandas as pd  # here, not at the top: `dermasynth --help` must not pay for pandas

    try:
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig"
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SourceFormatError(f"{path}: cannot parse as CSV ({exc})") from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise SourceFormatError(
            f"{path}: required column {missing[0]!r} is missing"
            + (f" (also {', '.join(map(repr, missing[1:]))})" if len(missing) > 1 else "")
        )
    return frame.to_dict("records")


def readable(value: str | None) -> str | None:
    """Turn codes such as ``basal_cell_carcinoma`` or ``GROWTH_OR_MOLE`` into plain words."""
    if value is None:
        return None
    return value.replace("_", " ").strip().lower() or None


class Source:
    """A reader for one dataset's official download. Subclasses parse metadata into candidate
    records; this base class checks every image once and keeps one record per unique file.

    A subclass sets only ``name``: its title, licence, attribution, citation, homepage and layout
    come from the registry entry of that name, so every row and the card say the same thing.
    """

    name: ClassVar[str]
    info: ClassVar[SourceInfo]
    title: ClassVar[str]
    license: ClassVar[str]
    attribution: ClassVar[str]
    citation: ClassVar[str]
    homepage: ClassVar[str]
    layout: ClassVar[str]
    extra_fields: ClassVar[tuple[str, ...]] = ()
    image_suffixes: ClassVar[tuple[str, ...]] = (".jpg", ".jpeg", ".png")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            return  # an intermediate base class: nothing to describe yet
        info = source_info(cls.name)  # a reader missing from the registry fails at import
        cls.info = info
        cls.title = info.title
        cls.license = info.license
        cls.attribution = info.attribution
        cls.citation = info.citation
        cls.homepage = info.homepage
        cls.layout = info.layout

    def candidates(self, root: Path, warnings: list[Skip]) -> Iterable[Candidate | Skip]:
        """Parse the metadata under ``root`` into candidates (or skips for unusable rows)."""
        raise NotImplementedError

    def make_record(
        self, image_id: str, image_path: str, modality: str, **fields: Any
    ) -> SourceRecord:
        extra = {key: fields.pop(key, None) for key in self.extra_fields}
        unknown = set(fields) - set(SourceRecord.__slots__)
        if unknown:
            raise TypeError(f"{self.name}: unknown record fields {sorted(unknown)}")
        return SourceRecord(
            source=self.name,
            image_id=image_id,
            image_path=image_path,
            modality=modality,
            license=self.license,
            attribution=self.attribution,
            extra=extra,
            **fields,
        )

    def image_index(self, root: Path) -> dict[str, str]:
        return index_files(root, self.image_suffixes)

    def read(
        self,
        root: str | os.PathLike[str],
        *,
        progress: ProgressFn | None = None,
    ) -> ReadResult:
        """Read the source at ``root``: every metadata row ends as one record or one skip."""
        root_path = Path(root)
        if not root_path.is_dir():
            raise SourceFormatError(f"{self.name}: ROOT is not a folder: {root_path}")
        result = ReadResult(self.name, str(root_path))
        items = list(self.candidates(root_path, result.warnings))
        real_root = os.path.realpath(root_path)
        seen: dict[str, str] = {}
        total = len(items)
        for done, item in enumerate(items, 1):
            if progress is not None and (done % 256 == 0 or done == total):
                progress(done, total)
            if isinstance(item, Skip):
                result.skipped.append(item)
                continue
            skip = self._check(item, real_root, seen)
            if skip is None:
                result.records.append(item.record)
            else:
                result.skipped.append(skip)
        return result

    def _check(self, item: Candidate, real_root: str, seen: dict[str, str]) -> Skip | None:
        rec = item.record

        def skip(reason: str, detail: str) -> Skip:
            return Skip(rec.image_id, reason, detail, item.file, item.line)

        if not rec.image_path:
            return skip(IMAGE_MISSING, f"no file named {rec.image_id}.* under ROOT")
        if "\x00" in rec.image_path:
            return skip(BAD_ROW, f"image path {rec.image_path!r} holds a NUL byte")
        full = os.path.realpath(os.path.join(real_root, rec.image_path))
        if not (full == real_root or full.startswith(real_root.rstrip(os.sep) + os.sep)):
            return skip(PATH_ESCAPES_ROOT, rec.image_path)
        if not os.path.isfile(full):
            return skip(IMAGE_MISSING, rec.image_path)
        first = seen.get(full)
        if first is not None:
            return skip(DUPLICATE_IMAGE, f"{rec.image_path} was already read as {first}")
        seen[full] = rec.image_id
        problem = check_image(full)
        if problem is not None:
            return skip(IMAGE_UNREADABLE, f"{rec.image_path}: {problem}")
        return None


def bad_row(image_id: str, detail: str, file: str, line: int) -> Skip:
    return Skip(image_id, BAD_ROW, detail, file, line)
