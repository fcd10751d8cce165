"""The rows that cross the run folder, as types: one line of a JSONL file is one of these.

Steps build rows only through these classes and read them back with ``from_dict``, which
rejects a field the contract does not know, so a typo or a stale writer fails loudly at the
seam instead of shipping a silently different dataset. The README documents every field.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

from ..records import Skip, SourceRecord

__all__ = [
    "PAIR_RECORD_FIELDS",
    "Failure",
    "Judgement",
    "Pair",
    "Rejected",
    "Request",
    "Response",
    "Row",
    "SchemaError",
    "Skip",
    "SourceRecord",
]


class SchemaError(ValueError):
    """A line that does not fit its file's row type."""


T = TypeVar("T", bound="Row")


class Row:
    """Shared (de)serialisation: plain dicts out, strict dicts in."""

    __slots__ = ()
    _names: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._names}

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        unknown = set(data) - set(cls._names)
        if unknown:
            raise SchemaError(f"{cls.__name__}: unknown field(s) {', '.join(sorted(unknown))}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise SchemaError(f"{cls.__name__}: {exc}") from None


def _names(cls: type[Row]) -> type[Row]:
    cls._names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    return cls


@_names
@dataclass(slots=True)
class Request(Row):
    """One planned question about one image (``requests.jsonl``). ``id`` hashes the rest."""

    id: str
    source: str
    image_id: str
    image_path: str
    question_type: str
    task: str
    question: str
    slot: int | None = None
    bank: str | None = None
    self_instruct: bool = False
    context: str = ""
    system_digest: str = ""


@_names
@dataclass(slots=True)
class Response(Row):
    """A request answered (``responses.jsonl``); one line per request even when one call
    answered several (``call_id`` and ``call_size`` tell which)."""

    id: str
    source: str
    image_id: str
    question_type: str
    task: str
    instruction: str  # the planned question (for self-instruct: the instruction to write one)
    question: str  # the question the pair asks (the model's own for self-instruct)
    answer: str
    model: str
    backend: str
    call_id: str
    bank: str | None = None
    self_instruct: bool = False
    finish_reason: str = "STOP"
    call_size: int = 1
    attempts: int = 1
    latency_s: float = 0.0
    usage: dict[str, int] = field(default_factory=dict)  # this request's share of its call
    batch: bool = False


@_names
@dataclass(slots=True)
class Failure(Row):
    """A request that failed for good (``failures.jsonl``), with why."""

    id: str
    source: str
    image_id: str
    question_type: str
    task: str
    kind: str  # final | content | transient
    reason: str  # redacted: never holds a secret
    attempts: int
    backend: str
    model: str


PAIR_RECORD_FIELDS = (
    "modality",
    "diagnosis",
    "malignancy",
    "age",
    "sex",
    "anatomic_site",
    "fitzpatrick_skin_type",
    "license",
    "attribution",
    "group_id",
    "image_path",
)


@_names
@dataclass(slots=True)
class Pair(Row):
    """A curated question/answer pair joined with its image's record (``pairs.jsonl``)."""

    id: str
    source: str
    image_id: str
    task: str
    question_type: str
    question: str | None
    answer: str | None
    model: str | None
    template_version: str
    bank: str | None = None
    self_instruct: bool = False
    modality: str | None = None
    diagnosis: str | None = None
    malignancy: str | None = None
    age: int | None = None
    sex: str | None = None
    anatomic_site: str | None = None
    fitzpatrick_skin_type: str | None = None
    license: str | None = None
    attribution: str | None = None
    group_id: str | None = None
    image_path: str | None = None
    label_consistent: bool | None = None
    malignancy_consistent: bool | None = None
    # `dermasynth judge`'s verdicts, added by the next curate (null without a judge pass)
    judge_label: str | None = None
    judge_facts: str | None = None
    judge_advice: str | None = None

    @classmethod
    def join(cls, response: Response, record: SourceRecord | None, template_version: str) -> Pair:
        """The response with its record's metadata (all null when the record is missing)."""
        pair = cls(
            id=response.id,
            source=response.source,
            image_id=response.image_id,
            task=response.task,
            question_type=response.question_type,
            question=response.question,
            answer=response.answer,
            model=response.model,
            template_version=template_version,
            bank=response.bank,
            self_instruct=bool(response.self_instruct),
        )
        if record is not None:
            for name in PAIR_RECORD_FIELDS:
                setattr(pair, name, getattr(record, name))
        return pair


@_names
@dataclass(slots=True)
class Rejected(Pair):
    """A pair a filter turned down (``rejected.jsonl``): the filter's name and its reason."""

    filter: str = ""
    reason: str = ""


@_names
@dataclass(slots=True)
class Judgement(Row):
    """A judge model's verdict on one kept pair (``judgements.jsonl``), by the pair's ``id``.

    Each check is "ok", the problem's name, or None when the judge gave no usable verdict.
    """

    id: str
    label: str | None = None  # "ok" | "contradicts": the answer's call vs the record's label
    facts: str | None = None  # "ok" | "invented": case facts the question does not give
    advice: str | None = None  # "ok" | "unsafe": individual or unsafe medical advice
    reason: str | None = None
    model: str | None = None
