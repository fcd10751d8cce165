"""Quality flags (columns, not rejections): does a diagnosis-type answer commit to the record's
diagnosis (or a parent or subtype of it), another one, or none; does a benign/malignant answer
agree with the record. Both come from ``dermasynth_builder.agreement.score_answer``, the scorer
evaluation uses too, so the card's agreement rates and an evaluation's mean the same thing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..agreement import Taxonomy, answer_stance, diagnosis_call, load_taxonomy, mentions
from ..agreement import score_answer as _score


class LabelChecker:
    """The scorer bound to one taxonomy (the package's, or one with a custom synonym file)."""

    def __init__(self, synonyms: Path | None = None, taxonomy: Path | None = None):
        self.taxonomy: Taxonomy = load_taxonomy(taxonomy, synonyms)

    def score(
        self, answer: str | None, diagnosis: str | None, malignancy: str | None
    ) -> dict[str, bool | None]:
        """The two flag columns (``score_answer`` without its ``agreement`` number)."""
        result = _score(answer, diagnosis=diagnosis, malignancy=malignancy, taxonomy=self.taxonomy)
        return {k: result[k] for k in ("label_consistent", "malignancy_consistent")}

    def consistent(self, diagnosis: str | None, answer: str) -> bool | None:
        """True: the answer's diagnosis is the record's (or its parent or subtype); False: it
        commits to another, or denies the record's; None: it names none, or no record label."""
        return self.score(answer, diagnosis, None)["label_consistent"]


def stance(answer: str, checker: LabelChecker | None = None) -> str | None:
    """The answer's benign / malignant / indeterminate call, if it makes one."""
    tax = (checker or LabelChecker()).taxonomy
    return answer_stance(answer, diagnosis_call(mentions(answer, tax), tax), tax)


def malignancy_consistent(
    malignancy: str | None, answer: str, checker: LabelChecker | None = None
) -> bool | None:
    return (checker or LabelChecker()).score(answer, None, malignancy)["malignancy_consistent"]


def flags_for(
    pair: dict[str, Any],
    checker: LabelChecker,
    diagnosis_types: list[str],
    malignancy_types: list[str],
) -> tuple[dict[str, bool | None], tuple[str, ...]]:
    """The flag columns of a pair, and which of them apply to its question type (a flag that
    does not apply is null, like one whose answer states nothing)."""
    applies: list[str] = []
    diagnosis = malignancy = None
    if pair["question_type"] in diagnosis_types and pair.get("diagnosis"):
        diagnosis = pair["diagnosis"]
        applies.append("label_consistent")
    if pair["question_type"] in malignancy_types and pair.get("malignancy"):
        malignancy = pair["malignancy"]
        applies.append("malignancy_consistent")
    if not applies:
        return {"label_consistent": None, "malignancy_consistent": None}, ()
    return checker.score(pair["answer"], diagnosis, malignancy), tuple(applies)
