"""The checks that look at one pair alone, run in worker processes beside curation's main loop.

Most of curation's time goes to checks that need nothing but the pair and its record: the
schema, length, refusal, leakage, grounding and reveals-diagnosis filters and the agreement
flags. Those run here, a chunk of pairs at a time, in ``workers`` processes, while the main
process reads the next responses and applies what needs order and memory (judge, duplicates,
novelty, the report) and writes every row. Chunks come back in the order they went out and the
verdicts are the ones the same checks give in one process, so the files do not depend on the
number of workers. Workers are spawned (they inherit no descriptor, so never the run folder's
lock), read the records themselves (keeping only the fields the checks read), and exit when
their parent dies.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..records import SourceRecord
from .config import CurateConfig
from .filters import (
    DuplicateFilter,
    Filter,
    GroundingFilter,
    LeakageFilter,
    LengthFilter,
    RecordLookup,
    RefusalFilter,
    RevealsDiagnosisFilter,
    SchemaFilter,
)
from .flags import LabelChecker, flags_for
from .grounding import record_facts

# (filter name, reason) for a rejected pair, else (None, flags, the flags that apply, the
# answer's normal form for the duplicate filter)
Verdict = tuple[str, str] | tuple[None, dict[str, bool | None], tuple[str, ...], str]
CHUNK = 256  # pairs per message to a worker
MIN_PARALLEL = 5000  # fewer responses than this: starting workers costs more than it saves


class StatelessChecks:
    """The stateless head of the filter chain, in chain order, and the flags."""

    def __init__(self, config: CurateConfig, records: RecordLookup):
        self.chain: list[Filter] = [
            SchemaFilter(config),
            LengthFilter(config),
            RefusalFilter(config),
            LeakageFilter(config),
            GroundingFilter(config, records),
            RevealsDiagnosisFilter(config, records),
        ]
        self.config = config
        self.checker = LabelChecker(config.synonyms)

    def __call__(self, pair: dict[str, Any]) -> Verdict:
        for f in self.chain:
            reason = f.check(pair)
            if reason is not None:
                return f.name, reason
        c = self.config
        flags, applies = flags_for(pair, self.checker, c.diagnosis_types, c.malignancy_types)
        return None, flags, applies, DuplicateFilter.normal(pair["answer"])


def default_workers() -> int:
    """One worker per core, up to four (the main loop keeps a core busy too)."""
    return min(os.cpu_count() or 1, 4)


def check_all(
    items: Iterable[tuple[Any, dict[str, Any] | None]],
    config: CurateConfig,
    records: dict[tuple[str, str], SourceRecord],
    run: Path,
    workers: int,
) -> Iterator[tuple[Any, dict[str, Any] | None, Verdict | None]]:
    """Each (tag, pair) with the pair's verdict (None for no pair), in the order given.

    ``workers`` > 0 checks in that many spawned processes, each reading ``run``'s records; 0
    checks here with ``records``."""
    if workers <= 0:
        checks = StatelessChecks(config, records)
        for tag, pair in items:
            yield tag, pair, None if pair is None else checks(pair)
        return
    ctx = multiprocessing.get_context("spawn")
    try:
        pool = ctx.Pool(workers, initializer=_start, initargs=(str(run), config, os.getpid()))
    except OSError as exc:  # no process or semaphore to be had: check here instead
        warnings.warn(f"curate: no worker processes ({exc}); checking in one", stacklevel=2)
        yield from check_all(items, config, records, run, 0)
        return
    with pool:
        window: deque = deque()  # chunks in flight, oldest first: bounded, so memory is too
        for chunk in _chunks(items, CHUNK):
            pairs = [pair for _, pair in chunk if pair is not None]
            window.append((chunk, pool.apply_async(_check_chunk, (pairs,))))
            if len(window) >= 4 * workers:
                yield from _merge(*window.popleft())
        while window:
            yield from _merge(*window.popleft())


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _merge(chunk: list[tuple[Any, dict[str, Any] | None]], result: Any) -> Iterator[tuple]:
    verdicts = iter(result.get())
    for tag, pair in chunk:
        yield tag, pair, None if pair is None else next(verdicts)


_CHECKS: StatelessChecks | None = None  # a worker's checks, built once by _start


def _start(run: str, config: CurateConfig, parent: int) -> None:
    global _CHECKS
    from ..run import RunFolder

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    facts = {(r.source, r.image_id): record_facts(r) for r in RunFolder(Path(run)).records()}
    _CHECKS = StatelessChecks(config, facts)

    def watch() -> None:  # a parent killed with -9 cannot stop its pool: leave on our own
        while os.getppid() == parent:
            threading.Event().wait(1.0)
        os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


def _check_chunk(pairs: list[dict[str, Any]]) -> list[Verdict]:
    assert _CHECKS is not None
    return [_CHECKS(pair) for pair in pairs]
