"""A deterministic backend with no network: answers built from the record's metadata.

It exists for the demo, the tests and dry runs of a whole plan (to count tokens and cost before
spending money). Its answers go through the same schema validation as a real model's, and every
output says ``model="offline"``. Usage is estimated with the same rules a real call is billed by.
"""

from __future__ import annotations

import hashlib
import json

from ..images import image_tokens
from ..records import SourceRecord
from .base import Backend, Call, CallResult, Usage, estimate_text_tokens, parse_answers

_OPENERS = (
    "On inspection, {view} shows {finding}.",
    "This {view_short} demonstrates {finding}.",
    "The image is {view} showing {finding}.",
)


def _pick(options: tuple[str, ...], *keys: str) -> str:
    digest = hashlib.sha256("|".join(keys).encode()).digest()
    return options[digest[0] % len(options)]


def _describe(record: SourceRecord | None) -> dict[str, str]:
    if record is None:
        return {"view": "a skin image", "view_short": "image", "finding": "a skin finding",
                "name": "the finding", "where": ""}  # fmt: skip
    dermoscopic = record.modality == "dermoscopic"
    view = "a dermoscopic view" if dermoscopic else "a clinical photograph"
    where = f" on the {record.anatomic_site}" if record.anatomic_site else ""
    name = record.diagnosis or "a skin condition"
    finding = f"a lesion{where} whose appearance is consistent with {name}"
    return {"view": view, "view_short": "dermoscopic image" if dermoscopic else "photograph",
            "finding": finding, "name": name, "where": where}  # fmt: skip


def offline_answer(record: SourceRecord | None, request: dict) -> dict[str, str]:
    """A short, metadata-grounded answer (and question, for self-instruct) for one request."""
    words = _describe(record)
    opener = _pick(_OPENERS, request["id"]).format(**words)
    malignancy = record.malignancy if record else None
    risk = {
        "malignant": "The features warrant prompt specialist assessment and histopathology.",
        "benign": "The overall picture is reassuring, though change over time should be reviewed.",
        "indeterminate": "Follow-up or biopsy would help to settle the assessment.",
    }.get(malignancy or "", "A dermatologist's in-person review would confirm the assessment.")
    kind = request.get("question_type", "")
    if kind in ("overview", "dense_caption") or request.get("task") == "caption":
        body = f"{opener} The colours, border and surface are described as seen in the image."
    else:
        body = f"{opener} {risk}"
    answer = {"answer": body}
    if request.get("self_instruct"):
        answer["question"] = (
            f"Which visible features of this {words['view_short']} support the assessment"
            f"{' of the lesion' + words['where'] if words['where'] else ''}?"
        )
    return answer


class OfflineBackend(Backend):
    name = "offline"

    def __init__(self, system: str = "", priced_as: str = "gemini-2.0-flash"):
        self.model = "offline"
        self.system = system
        self.priced_as = priced_as  # dry runs estimate cost as if this model had answered

    async def generate(self, call: Call) -> CallResult:
        _, width, height = await call.image()
        payload = {
            key: offline_answer(call.record, request)
            for key, request in zip(call.keys, call.requests, strict=True)
        }
        text = json.dumps(payload)
        answers = parse_answers(call, text)  # the same validation a real model's output gets
        image = image_tokens(width, height)
        usage = Usage(
            prompt_tokens=image + estimate_text_tokens(self.system + call.prompt),
            output_tokens=estimate_text_tokens(text),
            image_tokens=image,
        )
        return CallResult(answers, "offline", usage)
