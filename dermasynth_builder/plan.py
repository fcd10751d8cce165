"""Plan: read the sources, choose questions per image, and write the run folder's request list.

Every choice is drawn from a random generator seeded by (seed, source, image_id, slot), so adding
or removing images never changes the requests of the others, and request ids are hashes of what
the request says, so the same inputs always give the same ids and byte-identical files.
"""

from __future__ import annotations

import hashlib
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
from .run import Request, RunFolder, RunFolderError, dumps, plan_fingerprint, what_changed
from .run.fingerprint import file_digest, template_digests
from .sources import ReadResult, get_source

Reader = Callable[[str, Path], ReadResult]


@dataclass(slots=True)
class PlanSummary:
    run: Path
    records: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    requests: Counter = field(default_factory=Counter)  # (source, bank, question_type, task) -> n
    moved_aside: Path | None = None  # where --fresh moved an earlier plan's results
    heldout: dict[str, int] = field(default_factory=dict)  # official test images left out
    unlabelled: dict[str, int] = field(default_factory=dict)  # images asked descriptive only
    skip_reasons: dict[str, Counter] = field(default_factory=dict)  # source -> reason -> n

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
    kit: PromptKit, record: SourceRecord, seed: int, ctx: dict[str, Any] | None = None
) -> Iterator[tuple[int, QuestionType, str]]:
    """Yield (slot, question type, question text) for each recipe slot that has an eligible type."""
    ctx = record.context() if ctx is None else ctx
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
            text = qtype.render(index, ctx)
            if not reveals(text, record):
                used.add((qtype.bank, qtype.name))
                yield slot_index, qtype, text
                break


def build_requests(kit: PromptKit, record: SourceRecord, seed: int) -> list[Request]:
    ctx = record.context()
    context = kit.render_context(record, ctx)
    system_digest = kit.digests["system.j2"]
    out = []
    for slot, qtype, question in choose_questions(kit, record, seed, ctx):
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
        out.append(Request(id=_hash(dumps(body))[:20], **body))
    return out


def sample_ids(records: list[SourceRecord], seed: int, limit: int | None) -> list[SourceRecord]:
    """A seeded subset of ``limit`` records that stays stable when other images come and go."""
    if limit is None or limit >= len(records):
        return records
    ranked = sorted(records, key=lambda r: _hash(seed, r.source, r.image_id))
    keep = {r.image_id for r in ranked[:limit]}
    return [r for r in records if r.image_id in keep]


class PlanConflictError(RunFolderError):
    """The folder holds results of a different plan: they must not count as done."""


def make_plan(
    sources: list[tuple[str, Path]],
    run: Path,
    *,
    seed: int = 0,
    limit: int | None = None,
    recipe: str = "default",
    reader: Reader | None = None,
    on_record: Callable[[], None] | None = None,
    fresh: bool = False,
    include_official_test: bool = False,
) -> PlanSummary:
    """Write run.json, records.jsonl, heldout.jsonl, skipped.jsonl and requests.jsonl.

    Official test images are left out (their records go to heldout.jsonl, for evaluation)
    unless ``include_official_test``. Planning the same inputs again keeps every result.
    Planning different inputs over a folder that holds results refuses, unless ``fresh``
    moves those results aside first.
    """
    kit = PromptKit(recipe)  # fails fast on a template problem, before any reading
    folder = RunFolder(run)
    fingerprint = _fingerprint(kit, sources, seed, limit, include_official_test)
    created = not folder.path.exists()
    try:
        return _plan_locked(
            folder, fingerprint, fresh, sources, kit, (seed, limit, include_official_test),
            reader, on_record,
        )  # fmt: skip
    except BaseException:
        if created:  # a plan that failed before writing anything leaves no empty folder behind
            _remove_if_unused(folder.path)
        raise


def _remove_if_unused(path: Path) -> None:
    """Remove a folder this plan created if it holds nothing but the lock file."""
    from .run.lock import LOCK_FILE

    try:
        if {p.name for p in path.iterdir()} <= {LOCK_FILE}:
            (path / LOCK_FILE).unlink(missing_ok=True)
            path.rmdir()
    except OSError:
        pass


def _plan_locked(
    folder: RunFolder,
    fingerprint: dict[str, Any],
    fresh: bool,
    sources: list[tuple[str, Path]],
    kit: PromptKit,
    choices: tuple[int, int | None, bool],
    reader: Reader | None,
    on_record: Callable[[], None] | None,
) -> PlanSummary:
    with folder.lock("plan"):
        moved = _make_room(folder, fingerprint, fresh)
        summary = PlanSummary(folder.path, moved_aside=moved)
        _write_plan(
            folder,
            summary,
            sources,
            kit,
            fingerprint,
            choices,
            reader,
            on_record,
        )
        return summary


def current_fingerprint(
    sources: list[tuple[str, Path]],
    *,
    seed: int,
    limit: int | None,
    recipe: str,
    include_official_test: bool = False,
) -> dict[str, Any]:
    """The fingerprint a plan of these inputs would have (``run`` compares it with the folder's)."""
    return _fingerprint(PromptKit(recipe), sources, seed, limit, include_official_test)


def _fingerprint(
    kit: PromptKit,
    sources: list[tuple[str, Path]],
    seed: int,
    limit: int | None,
    include_official_test: bool,
) -> dict[str, Any]:
    return plan_fingerprint(
        sources,
        seed=seed,
        limit=limit,
        recipe=kit.recipe.name,
        templates=template_digests(kit.root, kit.digests),
        options={"include_official_test": include_official_test},
    )


def _make_room(folder: RunFolder, fingerprint: dict[str, Any], fresh: bool) -> Path | None:
    """Refuse (or, with ``fresh``, move aside) results that another plan made."""
    old = folder.info() if folder.exists() else {}
    if "import" in old:
        raise PlanConflictError(f"{folder.path} holds imported pairs; plan into a new folder")
    if not folder.has_results() or _same_plan(old, fingerprint):
        return None
    if not fresh:
        change = what_changed(old.get("fingerprint") or {}, fingerprint)
        raise PlanConflictError(
            f"{folder.path} holds results of another plan ({change}); plan into a new --out, "
            "or add --fresh to move those results aside"
        )
    return folder.move_results_aside()


def _same_plan(info: dict[str, Any], fingerprint: dict[str, Any]) -> bool:
    return (info.get("fingerprint") or {}).get("digest") == fingerprint["digest"]


def _write_plan(
    folder: RunFolder,
    summary: PlanSummary,
    sources: list[tuple[str, Path]],
    kit: PromptKit,
    fingerprint: dict[str, Any],
    choices: tuple[int, int | None, bool],
    reader: Reader | None,
    on_record: Callable[[], None] | None,
) -> None:
    seed, limit, include_official_test = choices
    old = folder.info() if folder.exists() else {}
    same = _same_plan(old, fingerprint)
    read = reader or (lambda name, root: get_source(name).read(root))
    records: list[SourceRecord] = []
    heldout: list[SourceRecord] = []
    skipped: list[dict[str, Any]] = []
    roots: dict[str, str] = {}
    for name, root in sources:
        result = read(name, root)
        usable = result.records
        if not include_official_test:
            test = [r for r in usable if r.split == "test"]
            usable = [r for r in usable if r.split != "test"]
            heldout.extend(test)
            summary.heldout[name] = len(test)
        chosen = sample_ids(usable, seed, limit)
        records.extend(chosen)
        skipped.extend({"source": name, **s.to_dict()} for s in result.skipped)
        roots[name] = fingerprint["sources"][name]["root"]
        summary.records[name] = len(chosen)
        summary.skipped[name] = len(result.skipped)
        summary.skip_reasons[name] = Counter(s.reason for s in result.skipped)
        summary.unlabelled[name] = sum(1 for r in chosen if not r.diagnosis)

    # keep what later steps recorded only when they ran on this very plan
    own = ("plan", "fingerprint", "steps")
    info = {k: v for k, v in old.items() if k not in own} if same else {}
    steps = {k: v for k, v in old.get("steps", {}).items() if k != "plan"} if same else {}
    info.update({"format": 2, "fingerprint": fingerprint, "steps": steps})
    folder.write_info(info)  # the plan's own mark is gone until the files below are whole
    folder.write_records(records)
    folder.write_heldout(heldout)
    folder.write_skipped(skipped)

    def requests() -> Iterator[Request]:
        for record in records:
            for req in build_requests(kit, record, seed):
                summary.requests[(req.source, req.bank, req.question_type, req.task)] += 1
                yield req
            if on_record is not None:
                on_record()

    total = folder.write_requests(requests())
    info.update(
        {
            "plan": {
                "seed": seed,
                "limit": limit,
                "recipe": kit.recipe.name,
                "include_official_test": include_official_test,
                "sources": {
                    name: {
                        "root": roots[name],
                        "records": summary.records[name],
                        "skipped": summary.skipped[name],
                        "official_test_left_out": summary.heldout.get(name, 0),
                        "unlabelled_descriptive_only": summary.unlabelled[name],
                    }
                    for name, _ in sources
                },
                "requests": total,
            },
            "system": kit.system,
            "templates": {"version": kit.version, "digests": kit.digests},
            "versions": {"dermasynth": __version__, "python": platform.python_version()},
        }
    )
    folder.write_info(info)
    folder.finish_step("plan", requests_sha256=file_digest(folder.file("requests.jsonl")))
