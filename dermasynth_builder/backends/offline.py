"""A deterministic backend with no network: answers built from the record's metadata.

It exists for the demo, the tests and dry runs of a whole plan (to count tokens and cost before
spending money). Its answers go through the same schema validation as a real model's, and every
output says ``model="offline"``. Usage is estimated with the same rules a real call is billed by.
The text is templated, not observed: it is grounded in the labels, never in the pixels.
"""

from __future__ import annotations

import hashlib
import json
import random

from ..images import image_size, image_tokens, scaled_size
from ..records import SourceRecord
from .base import (
    Backend,
    Call,
    CallResult,
    FinalError,
    Usage,
    estimate_text_tokens,
    parse_answers,
)

COLOURS = (
    "light brown",
    "dark brown",
    "tan",
    "pink",
    "reddish-brown",
    "grey-blue",
    "skin-coloured",
)
BORDERS = ("well-defined", "slightly irregular", "partly ill-defined", "regular and sharp")
SURFACES = ("smooth", "slightly scaly", "crusted", "keratotic", "glossy", "rough")
SHAPES = ("oval", "round", "irregular", "asymmetric", "roughly symmetric")
SELF_QUESTIONS = (
    "Which single visible feature of this {view} most influences the assessment, and why?",
    "How would you describe the border of this {thing} to a colleague over the phone?",
    "What finding here would prompt you to document the {thing} with serial photographs?",
    "If this patient asked whether the {thing} needs removal, what would you explain?",
    "Which look-alike condition should be considered for this {thing}, and what separates them?",
    "What does the colour distribution across this {thing} suggest about its nature?",
    "How does the surface texture seen in this {view} help narrow the possibilities?",
    "Which part of this {thing} would you biopsy first if sampling were needed, and why?",
    "What would you ask the patient about this {thing} before deciding on follow-up?",
    "How would the appearance of this {thing} change your level of concern over time?",
    "Name two features a trainee might overlook in this {view} and explain their relevance.",
    "Why does the {site}location matter when interpreting this {thing}?",
)


def _rng(*keys: str) -> random.Random:
    return random.Random(int(hashlib.sha256("|".join(keys).encode()).hexdigest()[:16], 16))


def offline_answer(record: SourceRecord | None, request: dict) -> dict[str, str]:
    """A short answer (and, for self-instruct, a question) grounded in the record's labels."""
    rng = _rng(request.id)
    rec = record or SourceRecord("", "", "", "clinical", "", "")
    dermoscopic = rec.modality == "dermoscopic"
    view = "dermoscopic image" if dermoscopic else "clinical photograph"
    thing = "lesion" if dermoscopic or rec.source != "scin" else "skin condition"
    # the body site is said only where the question gives it: a close-up does not show it
    said = rec.anatomic_site and rec.anatomic_site.lower() in (request.question or "").lower()
    site = f"on the {rec.anatomic_site} " if said else ""
    name = rec.diagnosis or "an inflammatory or neoplastic skin condition"
    colour, colour2 = rng.sample(COLOURS, 2)
    border, surface, shape = rng.choice(BORDERS), rng.choice(SURFACES), rng.choice(SHAPES)
    morphology = (
        f"The {view} shows {_article(shape)} {shape} {thing} {site}with {colour} and {colour2} "
        f"areas, {_article(border)} {border} border and {_article(surface)} {surface} surface."
    )
    kind = request.question_type
    mal = rec.malignancy
    call = {
        "malignant": "Its features are worrying for a malignant process",
        "benign": "Its features favour a benign process",
        "indeterminate": "Its features suggest a premalignant process that needs a closer look",
    }.get(mal or "", "Its nature cannot be settled from the image alone")
    if kind in ("overview", "dense_caption") or request.task == "caption":
        text = f"{morphology} The appearance is consistent with {name}."
        if kind == "dense_caption":
            text += f" No ulceration is evident; the surrounding skin looks {rng.choice(SURFACES)}."
    elif "differential" in kind or kind == "what_is_it":
        text = (
            f"The most likely diagnosis is {name}, given the {colour} colour and {border} border. "
            f"Alternatives to weigh include other {'pigmented' if dermoscopic else 'common'} "
            f"lesions with a similar {shape} outline."
        )
    elif "malignan" in kind or kind in ("benign_vs_malignant", "melanocytic_or_not"):
        text = f"{call}: the {border} border and {colour} tones are the main clues. {morphology}"
    elif kind in ("patient_explanation",):
        text = (
            f"This is a spot on your skin that looks like {name}. {call}, and a dermatologist "
            "can confirm it and explain what, if anything, needs doing."
        )
    elif kind in ("next_steps",):
        text = (
            f"Sensible next steps are a full skin examination, dermoscopy and comparison with "
            f"earlier photographs; {call.lower()}, so a biopsy is worth discussing if it changes."
        )
    else:
        text = f"{morphology} {call}, in keeping with {name}."
    answer = {"answer": text}
    if request.self_instruct:
        answer["question"] = rng.choice(SELF_QUESTIONS).format(view=view, thing=thing, site=site)
    return answer


class OfflineBackend(Backend):
    name = "offline"
    needs_records = True
    simulated = True
    sends_image = False  # bills images by the profile's rule; reads at most the header

    def __init__(self, system: str = "", priced_as: str = "gemini-3.1-flash-lite"):
        self.model = "offline"
        self.system = system
        self._priced_as = priced_as  # dry runs estimate cost as if this model had answered

    @property
    def priced_as(self) -> str:
        return self._priced_as

    def image_tokens(self, call: Call) -> int:
        """What the priced model bills for this call's image: a fixed count under media
        resolution, else the tile rule on the size the upload would have."""
        settings = self.settings
        if settings is not None and settings.mr_tokens is not None:
            return settings.mr_tokens
        try:
            width, height = image_size(call.image_path)
        except OSError as exc:
            raise FinalError(f"image unreadable: {call.image_path}: {exc}") from None
        return image_tokens(*scaled_size(width, height, call.max_image_side))

    async def generate(self, call: Call) -> CallResult:
        payload = {
            key: offline_answer(call.record, request)
            for key, request in zip(call.keys, call.requests, strict=True)
        }
        text = json.dumps(payload)
        answers = parse_answers(call, text)  # the same validation a real model's output gets
        image = self.image_tokens(call)
        usage = Usage(
            prompt_tokens=image + estimate_text_tokens(self.system + call.prompt),
            output_tokens=estimate_text_tokens(text),
            image_tokens=image,
        )
        return CallResult(answers, "offline", usage)


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
