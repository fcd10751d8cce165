"""One release row (one image with all its pairs) in storage form, and the split it falls in.

Used by the hub builder (``hub_dataset/dermasynth.py``) and by ``bench/package.py``'s pyarrow
baseline, so both write exactly the same rows. No `datasets` import here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from .records import MALIGNANCY
from .run.schema import PAIR_RECORD_FIELDS, Pair

__all__ = ["CAPTION_PROMPT", "ROW_FIELDS", "RowMaker", "in_test", "messages_of", "pair_fields"]

CAPTION_PROMPT = "Describe this image."
SCALARS = {"str": "string", "bool": "bool", "int": "int64", "float": "float64"}
# Pair fields that describe the image, not the pair: they live once on the row.
ROW_FIELDS = frozenset({"source", "image_id", *PAIR_RECORD_FIELDS})


def _base(annotation: Any) -> str:
    return str(annotation).replace(" | None", "").replace("None | ", "").strip()


def pair_fields() -> dict[str, str]:
    """One ``pairs`` entry: every `Pair` field about the pair, with its storage type (a field
    whose type is not a scalar is stored as JSON text). Derived from the dataclass, so scores or
    flags a later step adds to `Pair` are kept."""
    return {
        f.name: SCALARS.get(_base(f.type), "string")
        for f in dataclasses.fields(Pair)
        if f.name not in ROW_FIELDS
    }


def in_test(source: str, group_id: str | None, image_id: str, fraction: float, seed: int) -> bool:
    """Group-aware split: every image of a patient, lesion or case falls on the same side."""
    if fraction <= 0:
        return False
    key = f"{seed}|{source}|{group_id or image_id}".encode()
    return int(hashlib.sha256(key).hexdigest()[:15], 16) / 16**15 < fraction


def messages_of(pairs: list[Pair]) -> list[dict[str, Any]]:
    """The pairs as one chat in TRL's vision-language format: the image placeholder opens the
    first user turn (one placeholder for the one image), then question/answer turns."""
    turns: list[dict[str, Any]] = []
    for pair in pairs:
        content = [{"type": "text", "text": pair.question or CAPTION_PROMPT}]
        if not turns:
            content.insert(0, {"type": "image", "text": None})
        turns.append({"role": "user", "content": content})
        turns.append({"role": "assistant", "content": [{"type": "text", "text": pair.answer}]})
    return turns


class RowMaker:
    """Rows over one label space: ``diagnoses`` gives the `diagnosis` class indices."""

    def __init__(self, diagnoses: list[str] | tuple[str, ...], text_license: str | None = None):
        self.label = {name: i for i, name in enumerate(diagnoses)}
        self.malignancy = {name: i for i, name in enumerate(MALIGNANCY)}
        self.text_license = text_license  # None: the text's licence follows the image's
        fields = pair_fields()
        self.entry_names = list(fields)
        self.as_json = [name for name in fields if _base(_type_of(name)) not in SCALARS]
        self.row_names = [name for name in PAIR_RECORD_FIELDS if name != "image_path"]

    def row(
        self, pairs: list[Pair], record: Any, image: dict[str, Any], reencoded: bool
    ) -> dict[str, Any]:
        """The row of one image: ``image`` as stored (``{"bytes", "path"}``), labels as their
        class index, the record's fields that pairs do not carry, the pairs and the chat."""
        first = pairs[0]
        names, as_json = self.entry_names, self.as_json
        entries = []
        for pair in pairs:
            entry = {name: getattr(pair, name) for name in names}
            for name in as_json:
                if entry[name] is not None:
                    entry[name] = json.dumps(entry[name])
            entries.append(entry)

        def extra(name: str, default: Any = None) -> Any:
            return getattr(record, name, default) if record is not None else default

        row = {name: getattr(first, name) for name in self.row_names}
        row.update(
            image_id=first.image_id,
            source=first.source,
            images=[image],
            messages=messages_of(pairs),
            pairs=entries,
            diagnosis=self.label[first.diagnosis] if first.diagnosis is not None else None,
            diagnosis_code=extra("diagnosis_code"),
            diagnosis_hierarchy=list(extra("diagnosis_hierarchy") or []),
            malignancy=self.malignancy.get(first.malignancy),
            age_approximate=bool(extra("age_approximate", False)),
            fitzpatrick_self_reported=extra("fitzpatrick_self_reported"),
            monk_skin_tone=extra("monk_skin_tone"),
            official_split=extra("split"),
            text_license=self.text_license or first.license,
            image_reencoded=reencoded,
        )
        return row


def _type_of(name: str) -> Any:
    return next(f.type for f in dataclasses.fields(Pair) if f.name == name)
