"""Curate: validate, filter and flag generated pairs; never calls a model.

Responses are taken in plan order (requests.jsonl), so the stateful filters (novelty,
duplicates) decide the same way on every rerun: the same inputs give the same files.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..records import SourceRecord
from ..run import PAIRS, REJECTED, RESPONSES, Pair, Rejected, Request, Response, RunFolder, dumps
from ..run.fingerprint import file_digest
from ..run.jsonl import TMP_SUFFIX, RunFolderError
from .checks import MIN_PARALLEL, check_all, default_workers
from .config import CurateConfig
from .filters import DuplicateFilter, JudgeFilter, NoveltyFilter
from .novelty import NoveltyIndex, tokens
from .report import ReportStats, write_report
from .stream import ResponseIndex


@dataclass(slots=True)
class CurateSummary:
    responses: int = 0
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)  # (filter, short reason) -> n
    novelty_comparisons: int = 0
    novelty_candidates: int = 0
    workers: int = 0  # processes that ran the per-pair checks (0: the main one alone)
    report: dict[str, Any] = field(default_factory=dict)


def make_pair(
    response: Response, record: SourceRecord | None, template_version: str
) -> dict[str, Any]:
    """A dataset row (without the image): the response joined with its record's metadata.
    Filters read and flag it as a dict; it is checked against ``Pair`` when written."""
    return Pair.join(response, record, template_version).to_dict()


def curate(
    run: Path,
    config: CurateConfig | None = None,
    figures: bool = True,
    workers: int | None = None,
) -> CurateSummary:
    """Write RUN/pairs.jsonl, RUN/rejected.jsonl and the report from RUN/responses.jsonl.

    ``workers``: processes for the per-pair checks (0: none; default: one per core, up to
    four, for runs of 5,000 responses or more). The files are the same for any number."""
    folder = RunFolder(run)
    with folder.lock("curate"):
        return _curate(folder, config or CurateConfig(), figures, workers)


def _curate(
    folder: RunFolder, config: CurateConfig, figures: bool, workers: int | None
) -> CurateSummary:
    """Stream requests in plan order, read each one's response through an index of
    responses.jsonl, and write pairs and rejected rows as they are decided: memory holds the
    records (per image), the filters' state and 16 bytes per response, not the responses."""
    run = folder.path
    info = folder.info()
    if "import" not in info:
        folder.check_plan()  # partial results may be curated (a pilot), a stale plan may not
    state = folder.results_state()
    folder.start_step("curate")
    records = folder.records_by_image()
    version = info.get("templates", {}).get("version", "")
    frequency: dict[str, Counter] = {}

    def count_question(r: Response) -> None:
        if r.self_instruct and r.question:
            counts = frequency.setdefault(r.source, Counter())
            NoveltyIndex.count_elements(counts, tokens(r.question))

    # requests still to come per image: the duplicate filter forgets an image when it is done
    pending: Counter = Counter((r.source, r.image_id) for r in folder.requests())
    with ResponseIndex(folder.file(RESPONSES), count_question) as responses:
        if not responses.count:
            failed = sum(1 for _ in folder.failures())
            raise RunFolderError(
                f"nothing to curate: {folder.file(RESPONSES)} holds no response"
                + (f" ({failed:,} requests failed: see failures.jsonl)" if failed else "")
                + "; run `dermasynth generate` first"
            )
        novelty = NoveltyFilter(config, frequency=frequency)
        frequency = {}
        duplicates = DuplicateFilter(config)
        judge = JudgeFilter(config, {j.id: j for j in folder.judgements()})
        stateful = [judge, duplicates, novelty]  # after the stateless checks, in this order
        summary = CurateSummary(responses=responses.count)
        stats = ReportStats()
        rejected_tmp = folder.file(REJECTED).with_name(REJECTED + TMP_SUFFIX)
        if workers is None:
            workers = default_workers() if responses.count >= MIN_PARALLEL else 0
        summary.workers = workers

        def candidates() -> Iterator[tuple[tuple[str, str], dict[str, Any] | None]]:
            for request, response in _with_responses(folder.requests(), responses):
                pair = None
                if response is not None:
                    record = records.get((response.source, response.image_id))
                    pair = make_pair(response, record, version)
                yield (request.source, request.image_id), pair

        def pairs(rejected_out: IO[str]) -> Iterator[Pair]:
            checked = check_all(candidates(), config, records, folder.path, workers)
            for key, pair, verdict in checked:
                if pair is not None and verdict is not None:
                    judge.annotate(pair)
                    name, reason = verdict[0], verdict[1]
                    if name is None:
                        duplicates.prime(pair, verdict[3])
                        for f in stateful:
                            reason = f.check(pair)
                            if reason is not None:
                                name = f.name
                                break
                    record = records.get((pair["source"], pair["image_id"]))
                    if name is not None:
                        row = Rejected(**pair, filter=name, reason=reason)
                        rejected_out.write(dumps(row.to_dict()) + "\n")
                        summary.rejected[(name, reason.split(":")[0])] += 1
                        stats.reject(pair, name, record)
                    else:
                        duplicates.accept(pair)
                        novelty.accept(pair)
                        pair.update(verdict[1])
                        stats.accept(pair, verdict[2], record)
                        summary.accepted += 1
                        yield Pair(**pair)
                pending[key] -= 1
                if pending[key] <= 0:
                    del pending[key]
                    duplicates.forget(key)

        with open(rejected_tmp, "w", encoding="utf-8") as rejected_out:
            folder.write_rows(PAIRS, pairs(rejected_out))
        os.replace(rejected_tmp, folder.file(REJECTED))
    summary.novelty_comparisons = novelty.comparisons
    summary.novelty_candidates = sum(i.candidates for i in novelty.indexes.values())
    summary.report = write_report(
        run, stats, figures=figures, min_subgroup=config.min_subgroup, judge=judge_block(judge)
    )
    folder.update(
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
            **({"judge": summary.report["judge"]} if summary.report.get("judge") else {}),
        },
    )
    folder.finish_step(
        "curate",
        config=config_digest(config),
        results=state,
        pairs=file_digest(folder.file(PAIRS)),
    )
    return summary


def judge_block(judge: JudgeFilter) -> dict[str, Any] | None:
    """What the judge flagged and what that rejected, for the report and the card."""
    judged = sum(
        1 for j in judge.judgements.values() if any(getattr(j, c) for c in JudgeFilter.PROBLEMS)
    )
    if not judged:  # no judge pass, or one that gave no verdict (the offline backend)
        return None
    return {
        "judged": judged,
        "flagged": {JudgeFilter.PROBLEMS[c]: judge.flagged[c] for c in JudgeFilter.PROBLEMS},
        "reject": list(judge.config.judge_reject),
    }


def _with_responses(
    requests: Iterator[Request], responses: ResponseIndex, chunk: int = 4096
) -> Iterator[tuple[Request, Response | None]]:
    """Each request with its response (or None), looked up a chunk at a time."""
    batch: list[Request] = []
    for request in requests:
        batch.append(request)
        if len(batch) == chunk:
            yield from zip(batch, responses.get_many([r.id for r in batch]), strict=True)
            batch = []
    yield from zip(batch, responses.get_many([r.id for r in batch]), strict=True)


def config_digest(config: CurateConfig) -> str:
    """What decides curation's output besides the results: a changed config re-curates."""
    blob = json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
