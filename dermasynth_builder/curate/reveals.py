"""Model-written questions that give the diagnosis away: a self-instruct question naming the
record's diagnosis (or a synonym or its code) makes its answer free, so such pairs are
rejected (the ``reveals_diagnosis`` filter)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .grounding import PACKAGE, _field


def load_names(path: Path | None = None) -> dict[str, list[str]]:
    """Diagnosis name -> synonyms, from the package's synonyms.yaml (or ``path``)."""
    data = yaml.safe_load((path or PACKAGE / "synonyms.yaml").read_text(encoding="utf-8")) or {}
    return {str(k).lower(): [str(v).lower() for v in vs] for k, vs in data.items()}


def diagnosis_names(
    diagnosis: str | None, code: str | None, synonyms: dict[str, list[str]]
) -> set[str]:
    """The record's diagnosis, its code and every synonym of it (lower case, 3+ letters)."""
    names: set[str] = set()
    for value in (diagnosis, code):
        if value:
            low = value.lower().strip()
            names |= {low, low.split(",")[0].strip()}
    for key, group in synonyms.items():
        if key in names or names & set(group):
            names |= {key, *group}
    return {n for n in names if len(n) >= 3}


def diagnosis_patterns(
    diagnosis: str | None, code: str | None, synonyms: dict[str, list[str]]
) -> list[tuple[str, re.Pattern[str]]]:
    """Each name of the diagnosis (longest first) with the pattern that finds it as a word."""
    names = sorted(diagnosis_names(diagnosis, code, synonyms), key=len, reverse=True)
    return [(name, re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")) for name in names]


def question_names(question: str | None, patterns: list[tuple[str, re.Pattern[str]]]) -> str | None:
    """Why ``question`` gives the diagnosis away (``diagnosis_patterns``), or None."""
    text = (question or "").lower()
    for name, pattern in patterns:
        if pattern.search(text):
            return f"question names the diagnosis: {name!r}"
    return None


def names_diagnosis(
    question: str | None, record: Any, synonyms: dict[str, list[str]]
) -> str | None:
    """Why a model-written ``question`` gives away the record's diagnosis, or None."""
    return question_names(question, diagnosis_patterns(*record_diagnosis(record), synonyms))


def record_diagnosis(record: Any) -> tuple[str | None, str | None]:
    """The record's (diagnosis, diagnosis code)."""
    return _field(record, "diagnosis"), _field(record, "diagnosis_code")
