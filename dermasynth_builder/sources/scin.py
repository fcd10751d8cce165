"""SCIN (Google, 2024): 10,407 consumer photos from 5,033 US cases, up to three images per case.

ROOT is a mirror of the public bucket: ``dataset/scin_cases.csv``, ``dataset/scin_labels.csv`` and
``dataset/images/<int64>.png``. ``image_N_path`` values are bucket-relative
(``dataset/images/...``), so they are resolved against ROOT and must stay inside it. Labels are
Python literals, parsed with ``ast.literal_eval`` (never ``eval``).

Cases that the dermatologists graded insufficient quality for a skin-condition label are skipped
(reason "graded insufficient quality"). ``diagnosis`` comes only from the dermatologists' weighted
label; ``fitzpatrick_skin_type`` is the dermatologists' estimate and ``fitzpatrick_self_reported``
the person's own answer; ``monk_skin_tone`` is the US (else India) Monk label. SCIN has no
official split; ``age_group`` is a band, so records are ``age_approximate``.
"""

from __future__ import annotations

import ast
import copy
import os
import posixpath
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from ..records import INSUFFICIENT_QUALITY, Skip
from . import register
from .base import Candidate, Row, Source, bad_row, load_csv, readable

CASES = "dataset/scin_cases.csv"
LABELS = "dataset/scin_labels.csv"
SENTINELS = ("AGE_UNKNOWN", "UNKNOWN", "OTHER_OR_UNSPECIFIED", "NONE_IDENTIFIED")
IGNORED = {"no relevant experience", "no relevant symptoms"}
GRADERS = (1, 2, 3)
INSUFFICIENT = "NO_IMAGE_QUALITY_INSUFFICIENT"


@register
class Scin(Source):
    name = "scin"
    extra_fields = (
        "age_group",
        "condition_duration",
        "related_category",
        "other_symptoms",
        "shot_type",
        "case_id",
    )
    image_suffixes = (".png", ".jpg", ".jpeg")

    def candidates(self, root: Path, warnings: list[Skip]) -> Iterator[Candidate | Skip]:
        cases = load_csv(root / CASES, ("case_id", "image_1_path"))
        labels: dict[str, Row] = {}
        for i, values in enumerate(load_csv(root / LABELS, ("case_id",))):
            row = Row(values, LABELS, i + 2, warnings)
            case_id = row.text("case_id")
            if case_id is not None:
                labels[case_id] = row
        index: dict[str, str] | None = None
        for i, values in enumerate(cases):
            row = Row(values, CASES, i + 2, warnings)
            case_id = row.text("case_id")
            if case_id is None:
                yield bad_row("", "case_id is empty", CASES, row.line)
                continue
            row.image_id = case_id
            label_row = labels.get(case_id)
            if label_row is not None and ungradable(label_row):
                for n in (1, 2, 3):
                    raw = row.text(f"image_{n}_path")
                    if raw is not None:
                        yield Skip(
                            posixpath.basename(raw).rsplit(".", 1)[0],
                            INSUFFICIENT_QUALITY,
                            "dermatologists graded the case's images insufficient quality "
                            f"(case {case_id})",
                            LABELS,
                            label_row.line,
                        )
                continue
            differential = _differential(label_row, case_id) if label_row else {}
            top = next(iter(differential), None)
            shared = {
                "diagnosis": top,
                "diagnosis_code": top,
                "differential": differential,
                "age": None,
                "age_approximate": True,
                "sex": row.sex("sex_at_birth"),
                "fitzpatrick_skin_type": _dermatologist_fitzpatrick(label_row),
                "fitzpatrick_self_reported": row.fitzpatrick("fitzpatrick_skin_type"),
                "monk_skin_tone": _monk(label_row),
                "symptoms": _yes(values, "condition_symptoms_"),
                "textures": _yes(values, "textures_"),
                "body_parts": _yes(values, "body_parts_"),
                "group_id": case_id,
                "case_id": case_id,
                "age_group": _age_group(row.text("age_group", SENTINELS)),
                "condition_duration": readable(row.text("condition_duration", SENTINELS)),
                "related_category": readable(row.text("related_category", SENTINELS)),
                "other_symptoms": _yes(values, "other_symptoms_"),
            }
            for n in (1, 2, 3):
                raw = row.text(f"image_{n}_path")
                if raw is None:
                    continue
                image_id = posixpath.basename(raw).rsplit(".", 1)[0]
                rel = posixpath.normpath(raw.replace("\\", "/"))
                inside = not (rel.startswith("../") or rel == ".." or rel.startswith("/"))
                if inside and not os.path.isfile(root / rel):
                    # a mirror without the dataset/ prefix, or images moved: find by name
                    if index is None:
                        index = self.image_index(root)
                    rel = index.get(posixpath.basename(rel), rel)
                record = self.make_record(
                    image_id,
                    rel,
                    "clinical",
                    shot_type=readable(row.text(f"image_{n}_shot_type", SENTINELS)),
                    **copy.deepcopy(shared),
                )
                yield Candidate(record, CASES, row.line)


def _yes(values: dict[str, str], prefix: str) -> list[str]:
    """The multi-select answers of one question: columns ``prefix*`` holding ``YES``."""
    out = []
    for column, value in values.items():
        if column.startswith(prefix) and str(value).strip().upper() == "YES":
            word = column[len(prefix) :].replace("_", " ")
            if word not in IGNORED:
                out.append(word)
    return out


def _age_group(value: str | None) -> str | None:
    if value is None:
        return None
    return value.removeprefix("AGE_").replace("_", " ").lower()


def _differential(row: Row, case_id: str) -> dict[str, float]:
    """Parse ``{'Eczema': 0.69, ...}`` safely; sorted by weight, heaviest first."""
    raw = row.text("weighted_skin_condition_label")
    if raw is None:
        return {}
    row.image_id = case_id
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        row.warn("weighted_skin_condition_label", f"{raw[:60]!r} is not a label dict; ignored")
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(w, (int, float)) and not isinstance(w, bool)
        for k, w in value.items()
    ):
        row.warn("weighted_skin_condition_label", f"{raw[:60]!r} is not a label dict; ignored")
        return {}
    return {k: float(w) for k, w in sorted(value.items(), key=lambda kv: (-kv[1], kv[0]))}


def ungradable(row: Row) -> bool:
    """Every dermatologist who graded the case found its images insufficient for a label."""
    grades = [
        g.upper()
        for n in GRADERS
        if (g := row.text(f"dermatologist_gradable_for_skin_condition_{n}"))
    ]
    return bool(grades) and all(g == INSUFFICIENT for g in grades)


def _dermatologist_fitzpatrick(row: Row | None) -> str | None:
    """The most common type among the graders who found the images gradable for skin type."""
    if row is None:
        return None
    votes = [
        fst
        for n in GRADERS
        if (row.text(f"dermatologist_gradable_for_fitzpatrick_skin_type_{n}") or "YES").upper()
        != "NO"
        and (fst := row.fitzpatrick(f"dermatologist_fitzpatrick_skin_type_label_{n}"))
    ]
    return Counter(votes).most_common(1)[0][0] if votes else None


def _monk(row: Row | None) -> int | None:
    """The Monk skin tone (1-10): the US label where gradable, else the India label."""
    if row is None:
        return None
    for region in ("us", "india"):
        if row.boolean(f"gradable_for_monk_skin_tone_{region}") is False:
            continue
        value = row.number(f"monk_skin_tone_label_{region}")
        if value is not None and value.is_integer() and 1 <= value <= 10:
            return int(value)
        if value is not None:
            row.warn(f"monk_skin_tone_label_{region}", f"{value!r} is not a tone 1-10")
    return None
