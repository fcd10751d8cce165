"""Grounding: a kept pair states only what its image and its question give.

The release ships ``(image, question) -> answer`` without the case information the model saw.
An answer that asserts a fact the image cannot show (age, sex, history, symptoms, duration,
size, biopsy, treatment) and the question does not give teaches a model to invent that fact.
``grounding_reason`` finds such assertions two ways: generic fact statements ("the patient
reports...", "N years old", "N mm", "family history", "biopsy showed") and the record's own values
(its reported symptoms, measured size, age, duration). Hypothetical mentions ("if it itches",
"ask about a family history") are not assertions and pass (``reveals.py`` holds the
companion check on model-written questions that name the diagnosis).

These are pure functions; the ``grounding`` filter (in filters.py) only fetches the record
and calls them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parents[1]
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")
# Words just before a match that make it hypothetical, advice or a question, not a case fact.
_HYPOTHETICAL = re.compile(
    r"\b(if|whether|unless|ask(?:ing|ed)? (?:about|whether|if)|inquir\w*|enquir\w*|such as|"
    r"e\.g\.|for example|for instance|watch(?:ing)? for|look(?:ing)? out for|signs? (?:of|like)|"
    r"warning signs?|any|should|in case|were|suppose|without|regardless of|no information|"
    r"not (?:known|given|stated|provided)|unknown|would want|would need|would help)\b",
    re.I,
)
# Size thresholds of general knowledge ("larger than 6 mm") are not a measurement of this lesion.
_THRESHOLD = re.compile(
    r"\b(greater|larger|bigger|more|less|smaller|over|under|above|below|exceed\w*|than|up to|"
    r"at least|beyond|threshold|>|<)\W*$",
    re.I,
)


@dataclass(frozen=True, slots=True)
class FactCheck:
    """One kind of non-visible fact: how an answer asserts it, how a question gives it."""

    fact: str
    asserted: tuple[re.Pattern[str], ...]
    given: re.Pattern[str]


def _p(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.I) for p in patterns)


NUM = r"(?:\d{1,3}(?:[.,]\d+)?)"
CHECKS: tuple[FactCheck, ...] = (
    FactCheck(
        "age",
        _p(
            r"\b\d{1,3}[- ](?:years?|yrs?)[- ]old\b",
            r"\b\d{1,3}-year\b",
            r"\baged? (?:about |around |approximately |roughly )?\d{1,3}\b",
            r"\bat (?:the )?age (?:of )?\d{1,3}\b",
            r"\bin (?:his|her|their) (?:early |mid-?|late )?\d0s\b",
            r"\b\d{1,3} ?(?:yo|y/o)\b",
        ),
        re.compile(r"\b(ages?d?|years? old|year-old|\d0s)\b|\b\d{1,3}\b", re.I),
    ),
    FactCheck(
        "sex",
        _p(
            r"\b(?:this|the|a|an|our)\s+(?:\d{1,3}-year-old\s+)?(?:young\s+|elderly\s+|older\s+|"
            r"middle-aged\s+)?(?:man|woman|male|female|gentleman|lady|boy|girl)\b",
            r"\b(?:he|she)\b(?!\s+or\b)(?<!\bor he)(?<!\bor she)",
            r"\b(?:his|her)\s+(?:skin|lesion|back|arm|leg|face|chest|trunk|history|age|symptoms?|"
            r"family|body|scalp|neck|hand|foot|shoulder)\b",
        ),
        re.compile(r"\b(man|woman|male|female|men|women|boy|girl|he|she|his|her|sex)\b", re.I),
    ),
    FactCheck(
        "symptoms",
        _p(
            r"\b(?:the )?(?:patient|person|individual|child)(?:'s)? (?:also )?(?:reports?|reported|"
            r"complains?|complained|describes?|described|mentions?|mentioned|notes?|noted|"
            r"notices?|noticed|says|said|states?|stated|experiences?|experienced|feels?|felt|"
            r"has (?:noticed|reported|described|been experiencing))\b",
            r"\b(?:reported|described|associated|accompanying) (?:symptoms?|itch\w*|pain|bleeding|"
            r"burning|tenderness|pruritus)\b",
            r"\b(?:is|are|has been|was|were|became|becomes) (?:very |mildly |intensely |quite |"
            r"also |occasionally )?(?:itchy|painful|tender|sore|bleeding|burning|pruritic)\b",
            r"\b(?:it|lesion|rash|spot|area|mole|growth) (?:itches|hurts|bleeds|burns|stings)\b",
            r"\b(?:the|this|her|his|their) (?:itch|itching|pain|bleeding|burning|tenderness|"
            r"pruritus)\b",
        ),
        re.compile(
            r"\b(symptoms?|reports?|reported|complain\w*|itch\w*|prurit\w*|pain\w*|hurt\w*|"
            r"bleed\w*|burn\w*|tender\w*|sore)\b",
            re.I,
        ),
    ),
    FactCheck(
        "history",
        _p(
            r"\bfamily history\b",
            r"\b(?:personal|past|prior|previous) (?:medical )?history\b",
            r"\bhistory of (?:skin cancer|melanoma|cancer|non-?melanoma|sunburns?|"
            r"\w+ (?:cancer|carcinoma)|basal cell|squamous cell|atypical|dysplastic)\b",
            r"\b(?:has|had|with) (?:a )?(?:previous|prior|earlier) (?:melanoma|skin cancer|"
            r"\w+ carcinoma|skin tumou?rs?)\b",
            r"\b(?:is a (?:heavy )?smoker|smokes|drinks alcohol|exposed to pesticides|"
            r"pesticide exposure)\b",
        ),
        re.compile(r"\b(history|previous|prior|family|smok\w*|alcohol|pesticide\w*)\b", re.I),
    ),
    FactCheck(
        "duration",
        _p(
            r"\b(?:has|have|had) been (?:present|there|growing|enlarging|changing|evolving|"
            r"spreading|itching|bleeding)\b",
            r"\b(?:for|over) (?:the )?(?:past|last) (?:\d+|a few|several|few|many|two|three|four|"
            r"five|six) (?:days?|weeks?|months?|years?)\b",
            r"\bsince (?:childhood|birth|infancy)\b",
            r"\b(?:recently|newly) (?:appeared|developed|noticed|changed|grown|enlarged)\b",
            r"\b(?:has|had) (?:grown|enlarged|changed|increased in size|appeared|spread|"
            r"darkened)\b",
            r"\b(?:present|there) for (?:\d+|a few|several|many|about|over|more than|"
            r"less than) \w+",
        ),
        re.compile(
            r"\b(duration|present|since|days?|weeks?|months?|years?|grow\w*|grew|chang\w*|new|"
            r"long|evol\w*|recent\w*|enlarg\w*)\b",
            re.I,
        ),
    ),
    FactCheck(
        "size",
        _p(
            rf"\b{NUM}\s*(?:[x×]\s*{NUM}\s*)?(?:-\s*)?(?:mm|millimet(?:er|re)s?|cm|"
            r"centimet(?:er|re)s?)\b",
        ),
        re.compile(r"\b(mm|millimet\w*|cm|centimet\w*|measur\w*|diameter|size)\b", re.I),
    ),
    FactCheck(
        "biopsy",
        _p(
            r"\b(?:biopsy|histology|histopathology|pathology|histopathological examination)"
            r"(?: report| results?)? (?:showed|shows|confirmed|confirms|revealed|reveals|proved|"
            r"demonstrated|demonstrates)\b",
            r"\b(?:biopsy|histolog\w*|histopatholog\w*)[- ](?:proven|confirmed)\b",
            r"\b(?:was|has been|were|had been) (?:biopsied|excised|sampled)\b",
            r"\bconfirmed (?:by|on|with|at) (?:biopsy|histolog\w*|histopatholog\w*)\b",
        ),
        re.compile(r"\b(biops\w*|histolog\w*|histopatholog\w*|patholog\w*|excis\w*)\b", re.I),
    ),
    FactCheck(
        "treatment",
        _p(
            r"\b(?:was|were|has been|had been|is being) (?:treated|prescribed|frozen|cauterized|"
            r"cauterised|removed)\b",
            r"\b(?:previous|prior|current|ongoing) (?:treatments?|therapy|therapies|"
            r"medications?)\b",
            r"\b(?:has|had) (?:used|applied|tried|been using|been applying)\b",
        ),
        re.compile(
            r"\b(treat\w*|therap\w*|medicat\w*|cream|ointment|prescri\w*|used|applied)\b", re.I
        ),
    ),
)

GROWTH = r"(?:has|have|had|been|is) (?:grown|growing|enlarg\w*)|grew|increas\w* in size"
CHECKS_BY_FACT = {c.fact: c for c in CHECKS}
# Every asserted pattern starts with \b and a word character, so one search of their union,
# tried only where a word starts, tells whether any of them can match: most answers state no
# case fact, and then the per-pattern, per-sentence reading is skipped.
assert all(p.pattern.startswith(r"\b") for c in CHECKS for p in c.asserted)
# The patterns are lower case, so the union runs without re.I on the lower-cased text (several
# times faster).
assert not any(
    re.search("[A-Z]", re.sub(r"\\.", "", p.pattern)) for c in CHECKS for p in c.asserted
)
_ANY_ASSERTED = re.compile(
    r"\b(?=\w)(?:" + "|".join(f"(?:{p.pattern})" for c in CHECKS for p in c.asserted) + ")"
)
_SYMPTOM_WORD = re.compile(
    r"\b(itch\w*|prurit\w*|pain\w*|hurt\w*|bleed\w*|burn\w*|tender\w*|sore\w*|sting\w*|"
    r"fever\w*|fatigue\w*|tired\w*|chills|numb\w*|tingl\w*)\b",
    re.I,
)
# Record symptom words (PAD-UFES-20, SCIN, HIBA readers) -> the stems an answer would use.
SYMPTOM_STEMS = {
    "itching": r"itch\w*|prurit\w*",
    "pain": r"pain\w*|hurts?|tender\w*",
    "bleeding": r"bleeds|bled|has been bleeding|bleeding episodes?|episodes? of bleeding",
    "burning": r"burn\w*",
    "growing": GROWTH,
    "increasing size": GROWTH,
    "changing": r"(?:has|have|had|been) chang\w*|chang(?:ed|ing) in (?:size|shape|colou?r)",
    "darkening": r"darken\w*",
    "fever": r"fever\w*|febrile",
    "chills": r"chills",
    "fatigue": r"fatigue\w*|tired\w*",
    "joint pain": r"joint pain|arthralg\w*",
    "mouth sores": r"mouth sores?|oral (?:sores?|ulcers?)",
    "shortness of breath": r"shortness of breath|breathless\w*|dyspn\w*",
}


def _joined(text: str) -> str:
    """``text`` with its sentence breaks turned into NUL: a pattern that matches inside one
    sentence matches here too (NUL is neither a word nor a space character, like the edge of a
    string), so one search of this rules a pattern out without splitting the text."""
    return _SENTENCE.sub("\x00", text)


def _asserted(
    pattern: re.Pattern[str], text: str, joined: str | None = None
) -> re.Match[str] | None:
    """The first match of ``pattern`` in ``text`` that is stated as a fact, not a hypothetical.
    ``joined`` (``_joined(text)``) lets a pattern that cannot match skip the sentence split."""
    if joined is not None and pattern.search(joined) is None:
        return None
    for sentence in _SENTENCE.split(text):
        for match in pattern.finditer(sentence):
            before = sentence[max(0, match.start() - 60) : match.start()]
            if _HYPOTHETICAL.search(before):
                continue
            if _THRESHOLD.search(before):
                continue
            return match
    return None


def _symptoms_missing(match: re.Match[str], question: str) -> list[str]:
    """The symptoms a statement names (rest of its sentence) that the question does not give; a
    statement naming none ("the patient reports...") needs a question that reports symptoms."""
    rest = match.string[match.start() :]
    named = {m.group(0).lower()[:4]: m.group(0) for m in _SYMPTOM_WORD.finditer(rest)}
    if named:
        asked = {m.group(0).lower()[:4] for m in _SYMPTOM_WORD.finditer(question)}
        return [word for stem, word in named.items() if stem not in asked]
    return [] if CHECKS_BY_FACT["symptoms"].given.search(question) else [match.group(0).strip()]


def _field(record: Any, name: str) -> Any:
    if record is None:
        return None
    if isinstance(record, Mapping):
        value = record.get(name)
        if value is None and isinstance(record.get("extra"), Mapping):
            value = record["extra"].get(name)
        return value
    value = getattr(record, name, None)
    if value is None:
        value = (getattr(record, "extra", None) or {}).get(name)
    return value


def _numbers(text: str) -> list[float]:
    return [
        float(n.replace(",", ".")) for n in re.findall(r"(?<!\d)\d{1,3}(?:[.,]\d+)?(?!\d)", text)
    ]


def _record_reason(
    question: str, answer: str, record: Any, joined: str | None = None
) -> str | None:
    """Facts that only this record has, stated in the answer but not in the question."""
    symptoms = list(_field(record, "symptoms") or []) + list(_field(record, "other_symptoms") or [])
    for symptom in symptoms:
        stem = SYMPTOM_STEMS.get(str(symptom).lower())
        if stem is None:
            continue
        pattern = re.compile(rf"\b(?:{stem})\b", re.I)
        match = _asserted(pattern, answer, joined)
        if match and not pattern.search(question):
            return f"symptoms: states the case's {symptom!r} ({match.group(0)!r})"
    age = _field(record, "age")
    if isinstance(age, int) and age >= 10:
        pattern = re.compile(rf"\b{age}\b(?!\s*(?:mm|cm|%|x\b|×))", re.I)
        match = _asserted(pattern, answer, joined)
        if match and not pattern.search(question):
            return f"age: states the case's age {age}"
    for key in ("diameter_1_mm", "diameter_2_mm"):
        value = _field(record, key)
        if isinstance(value, (int, float)) and value > 0:
            pattern = re.compile(rf"\b{value:g}(?:\.0)?\s*(?:mm|x|×|millimet)", re.I)
            match = _asserted(pattern, answer, joined)
            if match and not pattern.search(question):
                return f"size: states the measured size ({match.group(0)!r})"
    duration = _field(record, "condition_duration")
    known = isinstance(duration, str) and len(duration) > 3 and duration.lower() != "unknown"
    if known and duration.lower() in answer.lower() and duration.lower() not in question.lower():
        return f"duration: states the reported duration {duration!r}"
    return None


def grounding_reason(question: str | None, answer: str | None, record: Any = None) -> str | None:
    """Why ``answer`` states a non-visible case fact that ``question`` does not give, or None.

    ``record`` (a SourceRecord, its dict, or a pair dict) adds checks for its own values; without
    it the generic fact statements are still checked. Reasons read "ungrounded <fact>: ...".
    """
    question, answer = question or "", answer or ""
    if not answer.strip():
        return None
    joined = _joined(answer)
    for check in CHECKS if _ANY_ASSERTED.search(joined.lower()) else ():
        for pattern in check.asserted:
            match = _asserted(pattern, answer, joined)
            if match is None:
                continue
            if check.fact in ("age", "size"):
                said = _numbers(match.group(0))
                asked = _numbers(question)
                close = said and any(abs(s - a) <= 5 for s in said for a in asked)
                if close and check.given.search(question):
                    continue
            elif check.fact == "symptoms":
                missing = _symptoms_missing(match, question)
                if not missing:
                    continue
                said = ", ".join(repr(word) for word in missing)
                return f"ungrounded symptoms: {said} not given by the question"
            elif check.given.search(question):
                continue
            return f"ungrounded {check.fact}: {match.group(0).strip()!r} not given by the question"
    if record is not None:
        reason = _record_reason(question, answer, record, joined)
        if reason is not None:
            return f"ungrounded {reason}"
    return None


# every record field the grounding and reveals-diagnosis checks read
RECORD_FACTS = (
    "symptoms",
    "other_symptoms",
    "age",
    "diameter_1_mm",
    "diameter_2_mm",
    "condition_duration",
    "diagnosis",
    "diagnosis_code",
)


def record_facts(record: Any) -> dict[str, Any]:
    """The record's ``RECORD_FACTS`` that are set: a small stand-in for the record that those
    checks read the same way (a worker process holds one per image)."""
    return {k: v for k in RECORD_FACTS if (v := _field(record, k)) is not None}
