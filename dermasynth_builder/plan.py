"""Plan: read the sources, choose questions per image, and write the run folder's request list.

Every choice is drawn from a random generator seeded by (seed, source, image_id, slot), so adding
or removing images never changes the requests of the others, and request ids are hashes of what
the request says, so the same inputs always give the same ids and byte-identical files.
"""

from __future__ import annotations

import hashlib
import os
import platform
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .prompts import PromptKit, QuestionType
from .records import MALIGNANCY, SourceRecord
from .runfolder import (
    RECORDS,
    REQUESTS,
    RUN_JSON,
    SKIPPED,
    dumps,
    write_json_atomic,
    write_jsonl_atomic,
)
from .sources import ReadResult, get_source

Reader = Callable[[str, Path], ReadResult]


@dataclass(slots=True)
class PlanSummary:
    run: Path
    records: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    requests: Counter = field(default_factory=Counter)  # (source, bank, question_type, task) -> n

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


def _hash(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).hexdigest()


def _rng(seed: int, source: str, image_id: str, slot: int) -> random.Random:
    return random.Random(int(_hash(seed, source, image_id, slot)[:16], 16))


def reveals(question: str, record: SourceRecord) -> bool:
    """Would this question give away the record's diagnosis or malignancy?

    Naming both sides of a choice ("benign or malignant?") reveals nothing; naming one does.
    """
    text = question.lower()
    for name in (record.diagnosis, record.diagnosis_code):
        if name and len(name) >= 3 and re.search(rf"\b{re.escape(name.lower())}\b", text):
            return True
    if record.malignancy:
        named = [m for m in MALIGNANCY if re.search(rf"\b{m}\b", text)]
        return named == [record.malignancy]
    return False


def choose_questions(
    kit: PromptKit, record: SourceRecord, seed: int
) -> Iterator[tuple[int, QuestionType, str]]:
    """Yield (slot, question type, question text) for each recipe slot that has an eligible type."""
    ctx = record.context()
    used: set[tuple[str, str]] = set()
    for slot_index, slot in enumerate(kit.recipe.slots):
        rng = _rng(seed, record.source, record.image_id, slot_index)
        options = [
            q
            for q in kit.candidates(slot, record.source)
            if q.eligible(ctx) and (q.bank, q.name) not in used
        ]
        if not options:
            continue
        qtype = rng.choices(options, weights=[q.weight for q in options])[0]
        order = list(range(len(qtype.phrasings)))
        rng.shuffle(order)
        for index in order:
            text = qtype.compiled[index].render(ctx).strip()
            if not reveals(text, record):
                used.add((qtype.bank, qtype.name))
                yield slot_index, qtype, text
                break


def build_requests(kit: PromptKit, record: SourceRecord, seed: int) -> list[dict[str, Any]]:
    context = kit.render_context(record)
    system_digest = kit.digests["system.j2"]
    out = []
    for slot, qtype, question in choose_questions(kit, record, seed):
        body = {
            "source": record.source,
            "image_id": record.image_id,
            "image_path": record.image_path,
            "slot": slot,
            "bank": "general" if qtype.bank == "general" else "source",
            "question_type": qtype.name,
            "task": qtype.task,
            "self_instruct": qtype.self_instruct,
            "question": question,
            "context": context,
            "system_digest": system_digest,
        }
        body["id"] = _hash(dumps(body))[:20]
        out.append(body)
    return out


def sample_ids(records: list[SourceRecord], seed: int, limit: int | None) -> list[SourceRecord]:
    """A seeded subset of ``limit`` records that stays stable when other images come and go."""
    if limit is None or limit >= len(records):
        return records
    ranked = sorted(records, key=lambda r: _hash(seed, r.source, r.image_id))
    keep = {r.image_id for r in ranked[:limit]}
    return [r for r in records if r.image_id in keep]


def make_plan(
    sources: list[tuple[str, Path]],
    run: Path,
    *,
    seed: int = 0,
    limit: int | None = None,
    recipe: str = "default",
    reader: Reader | None = None,
    on_record: Callable[[], None] | None = None,
) -> PlanSummary:
    """Write run.json, records.jsonl, skipped.jsonl and requests.jsonl for ``sources``."""
    kit = PromptKit(recipe)  # fails fast on a template problem, before any reading
    read = reader or (lambda name, root: get_source(name).read(root))
    run.mkdir(parents=True, exist_ok=True)
    summary = PlanSummary(run)
    records: list[SourceRecord] = []
    skipped: list[dict[str, Any]] = []
    roots: dict[str, str] = {}
    for name, root in sources:
        result = read(name, root)
        chosen = sample_ids(result.records, seed, limit)
        records.extend(chosen)
        skipped.extend({"source": name, **s.to_dict()} for s in result.skipped)
        roots[name] = os.path.abspath(root)
        summary.records[name] = len(chosen)
        summary.skipped[name] = len(result.skipped)

    write_jsonl_atomic(run / RECORDS, (r.to_dict() for r in records))
    write_jsonl_atomic(run / SKIPPED, skipped)

    def requests() -> Iterator[dict[str, Any]]:
        for record in records:
            for req in build_requests(kit, record, seed):
                summary.requests[
                    (req["source"], req["bank"], req["question_type"], req["task"])
                ] += 1
                yield req
            if on_record is not None:
                on_record()

    total = write_jsonl_atomic(run / REQUESTS, requests())
    write_json_atomic(
        run / RUN_JSON,
        {
            "format": 1,
            "plan": {
                "seed": seed,
                "limit": limit,
                "recipe": kit.recipe.name,
                "sources": {
                    name: {
                        "root": roots[name],
                        "records": summary.records[name],
                        "skipped": summary.skipped[name],
                    }
                    for name, _ in sources
                },
                "requests": total,
            },
            "system": kit.system,
            "templates": {"version": kit.version, "digests": kit.digests},
            "versions": {"dermasynth": __version__, "python": platform.python_version()},
        },
    )
    return summary
