"""Curate: validate, filter and flag generated pairs; never calls a model.

Responses are taken in plan order (requests.jsonl), so the stateful filters (novelty,
duplicates) decide the same way on every rerun: the same inputs give the same files.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..records import SourceRecord
from ..runfolder import (
    PAIRS,
    RECORDS,
    REJECTED,
    REQUESTS,
    RESPONSES,
    RunFolderError,
    iter_jsonl,
    read_run,
    update_run,
    write_jsonl_atomic,
)
from .config import CurateConfig
from .filters import (
    DuplicateFilter,
    LeakageFilter,
    LengthFilter,
    NoveltyFilter,
    RefusalFilter,
    SchemaFilter,
)
from .flags import LabelChecker, flags_for, load_synonyms
from .novelty import tokens
from .report import ReportStats, write_report

ROW_FIELDS = (
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


@dataclass(slots=True)
class CurateSummary:
    responses: int = 0
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)  # (filter, short reason) -> n
    novelty_comparisons: int = 0
    novelty_candidates: int = 0
    report: dict[str, Any] = field(default_factory=dict)


def make_pair(
    response: dict[str, Any], record: SourceRecord | None, template_version: str
) -> dict[str, Any]:
    """A dataset row (without the image): the response joined with its record's metadata."""
    pair = {
        "id": response["id"],
        "image_id": response["image_id"],
        "source": response["source"],
        "task": response["task"],
        "question_type": response["question_type"],
        "bank": response.get("bank"),
        "self_instruct": bool(response.get("self_instruct")),
        "question": response.get("question"),
        "answer": response.get("answer"),
        "model": response.get("model"),
        "template_version": template_version,
    }
    for name in ROW_FIELDS:
        pair[name] = getattr(record, name) if record is not None else None
    return pair


def curate(run: Path, config: CurateConfig | None = None, figures: bool = True) -> CurateSummary:
    """Write RUN/pairs.jsonl, RUN/rejected.jsonl and the report from RUN/responses.jsonl."""
    config = config or CurateConfig()
    info = read_run(run)
    if not (run / RESPONSES).is_file():
        raise RunFolderError(f"{run / RESPONSES} not found: run `dermasynth generate` first")
    records = {
        (r["source"], r["image_id"]): SourceRecord.from_dict(r) for r in iter_jsonl(run / RECORDS)
    }
    responses = {r["id"]: r for r in iter_jsonl(run / RESPONSES)}
    version = info.get("templates", {}).get("version", "")
    corpus: dict[str, list[list[str]]] = {}
    for r in responses.values():
        if r.get("self_instruct") and r.get("question"):
            corpus.setdefault(r["source"], []).append(tokens(r["question"]))
    novelty = NoveltyFilter(config, corpus)
    duplicates = DuplicateFilter(config)
    chain = [
        SchemaFilter(config),
        LengthFilter(config),
        RefusalFilter(config),
        LeakageFilter(config),
        duplicates,
        novelty,
    ]
    checker = LabelChecker(
        load_synonyms(config.synonyms), [r.diagnosis for r in records.values() if r.diagnosis]
    )
    summary = CurateSummary(responses=len(responses))
    stats = ReportStats()
    rejected_rows: list[dict[str, Any]] = []

    def pairs():
        for request in iter_jsonl(run / REQUESTS):
            response = responses.get(request["id"])
            if response is None:
                continue
            pair = make_pair(
                response, records.get((response["source"], response["image_id"])), version
            )
            for f in chain:
                reason = f.check(pair)
                if reason is not None:
                    rejected_rows.append({**pair, "filter": f.name, "reason": reason})
                    summary.rejected[(f.name, reason.split(":")[0])] += 1
                    stats.reject(pair, f.name)
                    break
            else:
                duplicates.accept(pair)
                novelty.accept(pair)
                flags, applies = flags_for(
                    pair, checker, config.diagnosis_types, config.malignancy_types
                )
                pair.update(flags)
                stats.accept(pair, applies)
                summary.accepted += 1
                yield pair

    write_jsonl_atomic(run / PAIRS, pairs())
    write_jsonl_atomic(run / REJECTED, rejected_rows)
    summary.novelty_comparisons = novelty.comparisons
    summary.novelty_candidates = sum(i.candidates for i in novelty.indexes.values())
    summary.report = write_report(run, stats, figures=figures)
    update_run(
        run,
        curation={
            "config": config.model_dump(
                mode="json",
                include={
                    "min_answer_words",
                    "min_caption_words",
                    "max_answer_words",
                    "min_question_words",
                    "max_question_words",
                    "novelty_rouge_l",
                    "near_duplicate_jaccard",
                },
            ),
            "responses": summary.responses,
            "accepted": summary.accepted,
            "rejected": sum(summary.rejected.values()),
        },
    )
    return summary
