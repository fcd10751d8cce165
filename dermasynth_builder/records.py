"""The normalized record every source reader produces, and the skip that explains a dropped row."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

MODALITIES = ("dermoscopic", "clinical")
MALIGNANCY = ("benign", "malignant", "indeterminate")
SEXES = ("male", "female")
FITZPATRICK = ("I", "II", "III", "IV", "V", "VI")


@dataclass(slots=True)
class SourceRecord:
    """One image of one source with its metadata in a shared vocabulary.

    Missing values are ``None`` (lists empty, dicts empty), never "nan"/"UNK"/"None" strings, so
    templates and filters can test presence without knowing each source's sentinels.
    ``fitzpatrick_skin_type`` is the clinician-assessed type (or a source's only Fitzpatrick
    field); ``fitzpatrick_self_reported`` is SCIN's self-reported one, kept apart.
    ``age_approximate`` is True where the source rounds ages (questions then say "about N").
    ``split`` is the image's official split ("train"/"test") where its source defines one.
    ``extra`` holds the source-specific fields its templates use (each source declares them).
    """

    source: str
    image_id: str
    image_path: str
    modality: str
    license: str
    attribution: str
    diagnosis: str | None = None
    diagnosis_code: str | None = None
    diagnosis_hierarchy: list[str] = field(default_factory=list)
    malignancy: str | None = None
    age: int | None = None
    sex: str | None = None
    anatomic_site: str | None = None
    fitzpatrick_skin_type: str | None = None
    fitzpatrick_self_reported: str | None = None
    monk_skin_tone: int | None = None
    age_approximate: bool = False
    symptoms: list[str] = field(default_factory=list)
    textures: list[str] = field(default_factory=list)
    body_parts: list[str] = field(default_factory=list)
    differential: dict[str, float] = field(default_factory=dict)
    group_id: str | None = None
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The record as plain data; lists and dicts are copies (faster than ``asdict``)."""
        return {name: _copy(getattr(self, name)) for name in _FIELD_NAMES}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceRecord:
        return cls(**data)

    def context(self) -> dict[str, Any]:
        """Flat variables for templates: the common fields plus this source's extras.
        Values are shared with the record, not copied: templates run in an immutable sandbox."""
        out = {name: getattr(self, name) for name in _FIELD_NAMES if name != "extra"}
        out.update(self.extra)
        return out


_FIELD_NAMES = tuple(f.name for f in fields(SourceRecord))


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


@dataclass(slots=True)
class Skip:
    """A metadata row that did not become a record, with the reason a user can act on.

    ``reason`` is one of a few fixed phrases (so skips group); ``detail`` says what exactly,
    ``file`` and ``line`` point at the metadata row.
    """

    image_id: str
    reason: str
    detail: str = ""
    file: str = ""
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# The fixed skip reasons; `sources check` groups by these.
IMAGE_MISSING = "image missing"
IMAGE_UNREADABLE = "image unreadable"
PATH_ESCAPES_ROOT = "image path escapes ROOT"
DUPLICATE_IMAGE = "image already read"
BAD_ROW = "bad row"
INSUFFICIENT_QUALITY = "graded insufficient quality"
# Skips that apply a data policy rather than report a problem: listed, but not a failure.
POLICY_SKIPS = frozenset({INSUFFICIENT_QUALITY})
SPLITS = ("train", "test")
