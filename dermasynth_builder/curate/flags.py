"""Quality flags (columns, not rejections): does a diagnosis-type answer name the record's
diagnosis, another one, or none; does a benign/malignant answer agree with the record."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ..paths import PACKAGE

MALIGNANT = re.compile(r"\b(malignan\w*|cancer(ous)?|carcinoma|melanoma)\b", re.I)
BENIGN = re.compile(r"\b(benign|non-?cancerous|harmless)\b", re.I)
NEGATED = re.compile(
    r"\b(?:not|isn't|doesn't|unlikely to be|no (?:signs?|features|evidence) of)(?:\s+\w+){0,2}?"
    r"\s+(malignan\w*|cancer\w*|benign)|\bnon-?(malignan\w*|cancer\w*)",
    re.I,
)
INDETERMINATE = re.compile(
    r"\b(pre-?malignan\w*|pre-?cancer\w*|indeterminate|premalignant)\b", re.I
)


def load_synonyms(path: Path | None = None) -> dict[str, list[str]]:
    data = yaml.safe_load((path or PACKAGE / "synonyms.yaml").read_text(encoding="utf-8")) or {}
    return {str(k).lower(): [str(v).lower() for v in vs] for k, vs in data.items()}


class LabelChecker:
    """Names of diagnoses, with synonyms, matched as whole words."""

    def __init__(self, synonyms: dict[str, list[str]], extra_names: list[str]):
        self.synonyms = synonyms
        vocabulary = set(synonyms) | {s for group in synonyms.values() for s in group}
        vocabulary |= {n.lower() for n in extra_names if n}
        # longest first, so "basal cell carcinoma" wins over "carcinoma"
        self.vocabulary = sorted(vocabulary, key=len, reverse=True)
        self._cache: dict[str, re.Pattern] = {}

    def names_for(self, diagnosis: str) -> set[str]:
        low = diagnosis.lower().strip()
        names = {low, low.split(",")[0].strip()}
        for key, group in self.synonyms.items():
            if low == key or low in group:
                names |= {key, *group}
        return {n for n in names if n}

    def _pattern(self, name: str) -> re.Pattern:
        if name not in self._cache:
            self._cache[name] = re.compile(rf"(?<![a-z]){re.escape(name)}(?![a-z])", re.I)
        return self._cache[name]

    def mentioned(self, text: str) -> set[str]:
        found: set[str] = set()
        low = text.lower()
        for name in self.vocabulary:
            # skip a name inside a longer one already found ("carcinoma" in "basal cell carcinoma")
            if (
                name in low
                and self._pattern(name).search(low)
                and not any(name in longer for longer in found)
            ):
                found.add(name)
        return found

    def consistent(self, diagnosis: str | None, answer: str) -> bool | None:
        """True: names the record's diagnosis (or a synonym); False: names only others;
        None: names no diagnosis, or the record has none."""
        if not diagnosis:
            return None
        mine = self.names_for(diagnosis)
        found = self.mentioned(answer)
        if any(self._pattern(n).search(answer) for n in mine):
            return True
        return False if found else None


def stance(answer: str) -> str | None:
    """The answer's benign/malignant call, if it makes one."""
    if INDETERMINATE.search(answer):
        return "indeterminate"
    text = NEGATED.sub(
        lambda m: "malignant" if (m.group(1) or "").lower() == "benign" else "benign", answer
    )
    malignant = [m.start() for m in MALIGNANT.finditer(text)]
    benign = [m.start() for m in BENIGN.finditer(text)]
    if not malignant and not benign:
        return None
    if len(malignant) != len(benign):
        return "malignant" if len(malignant) > len(benign) else "benign"
    return "malignant" if malignant[0] < benign[0] else "benign"


def malignancy_consistent(malignancy: str | None, answer: str) -> bool | None:
    if not malignancy:
        return None
    call = stance(answer)
    return None if call is None else call == malignancy


def flags_for(
    pair: dict[str, Any],
    checker: LabelChecker,
    diagnosis_types: list[str],
    malignancy_types: list[str],
) -> tuple[dict[str, bool | None], tuple[str, ...]]:
    """The flag columns of a pair, and which of them apply to its question type (a flag that
    does not apply is null, like one whose answer states nothing)."""
    label = mal = None
    applies: list[str] = []
    if pair["question_type"] in diagnosis_types and pair.get("diagnosis"):
        label = checker.consistent(pair["diagnosis"], pair["answer"])
        applies.append("label_consistent")
    if pair["question_type"] in malignancy_types and pair.get("malignancy"):
        mal = malignancy_consistent(pair["malignancy"], pair["answer"])
        applies.append("malignancy_consistent")
    return {"label_consistent": label, "malignancy_consistent": mal}, tuple(applies)
