"""The normalized record every source reader produces, and the skip that explains a dropped row."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
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
    symptoms: list[str] = field(default_factory=list)
    textures: list[str] = field(default_factory=list)
    body_parts: list[str] = field(default_factory=list)
    differential: dict[str, float] = field(default_factory=dict)
    group_id: str | None = None
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceRecord:
        return cls(**data)

    def context(self) -> dict[str, Any]:
        """Flat variables for templates: the common fields plus this source's extras."""
        out = {k: v for k, v in self.to_dict().items() if k != "extra"}
        out.update(self.extra)
        return out


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
