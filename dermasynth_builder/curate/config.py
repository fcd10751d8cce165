"""Curation thresholds and word lists: a pydantic model with defaults, overridable from a file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

REFUSALS = [
    r"^\s*(i'?m|i am) (sorry|afraid)\b",
    r"^\s*(i )?(cannot|can ?not|can't|am unable to|'m unable to|am not able to|won't) "
    r"(provide|give|offer|make|determine|diagnose|answer|help|assist|comment|say)",
    r"^\s*(as an ai|as a language model)",
    r"^\s*unfortunately,? i (cannot|can't|am unable)",
    r"\bit is not possible (for me )?to (provide|determine|diagnose)\b",
]
CONSULT = (
    r"\b(please )?(consult|see|visit|talk to|speak (to|with))( with)? (a|your) "
    r"(doctor|dermatologist|physician|healthcare (provider|professional)|medical professional)"
)
LEAKS = [
    r"\baccording to the (provided |given |supplied |available )?(metadata|labels?|information|"
    r"context|case information|case details|data|annotations?|ground[- ]truth)\b",
    r"\b(based on|given|from) the (provided|given|supplied) (metadata|labels?|information|context|"
    r"case information|case details|data|diagnosis)\b",
    r"\bthe (metadata|case information|provided information|label|annotation)s? "
    r"(says|say|states?|indicates?|shows?|lists?|mentions?|notes?|confirms?|suggests?)\b",
    r"\bas (stated|indicated|noted|mentioned|given|provided|described|listed) in the "
    r"(metadata|case information|context|labels?|information provided|provided information)\b",
    r"\b(ground[- ]truth|metadata)\b",
]
DIAGNOSIS_TYPES = [
    "what_is_it",
    "differential_diagnosis",
    "differential_reasoning",
    "class_hierarchy",
    "subtype_features",
    "overview",
    "dense_caption",
    "patient_explanation",
]
MALIGNANCY_TYPES = ["benign_vs_malignant", "malignancy_reasoning"]


class CurateConfig(BaseModel):
    """Everything ``dermasynth curate`` decides with; defaults follow the self-instruct paper."""

    model_config = ConfigDict(extra="forbid")
    min_answer_words: int = Field(default=5, ge=1)
    min_caption_words: int = Field(default=12, ge=1)
    max_answer_words: int = Field(default=600, ge=1)
    min_question_words: int = Field(default=4, ge=1)
    max_question_words: int = Field(default=80, ge=1)
    novelty_rouge_l: float = Field(default=0.7, gt=0, le=1)
    near_duplicate_jaccard: float = Field(default=0.9, gt=0, le=1)
    min_substantive_words: int = Field(default=8, ge=1)
    refusal_patterns: list[str] = REFUSALS
    consult_pattern: str = CONSULT
    leak_patterns: list[str] = LEAKS
    diagnosis_types: list[str] = DIAGNOSIS_TYPES
    malignancy_types: list[str] = MALIGNANCY_TYPES
    synonyms: Path | None = None
    # subgroup tables: a rate needs at least this many pairs (else "too few")
    min_subgroup: int = Field(default=30, ge=1)
    # the `grounding` and `reveals_diagnosis` filters (curate/grounding.py); on by default
    grounding: bool = True
    # `dermasynth judge` verdicts that reject a pair (the `judge` filter); [] keeps them as
    # columns only. Without a judge pass (no RUN/judgements.jsonl) nothing is rejected.
    judge_reject: list[Literal["label", "facts", "advice"]] = ["label", "facts", "advice"]

    @classmethod
    def load(cls, path: Path | None) -> CurateConfig:
        if path is None:
            return cls()
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise ValueError("expected a mapping of keys (min_answer_words: 5, ...)")
        return cls(**data)
