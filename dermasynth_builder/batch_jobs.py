"""The batch job ledger (``RUN/batch_jobs.json``) and the retry policy for provider calls.

Kept apart from the runner so ``dermasynth status`` and ``cancel`` can read the ledger and
reach the provider (with the same retries) without importing the engine.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .backends import Backend, BackendConfigError, FinalError, TransientError
from .backends.batch_api import TERMINAL, BatchAPI
from .run.jsonl import write_json_atomic

JOBS = "batch_jobs.json"
T = TypeVar("T")


class BatchError(Exception):
    """A batch step that cannot go on now (a provider outage outlasting the retries, a
    rejected job): a one-line message; the jobs keep running and a rerun re-attaches."""


@dataclass(slots=True)
class BatchOptions:
    poll_interval: float = 10.0
    max_poll_interval: float = 300.0
    inline_limit: int | None = None  # None: the provider's own limits
    file_limit: int | None = None
    # retries of each provider call (create, poll, download, list, cancel) on transient errors
    retry_attempts: int = 8
    retry_base_delay: float = 2.0
    retry_max_delay: float = 120.0


def load_jobs(run: Path) -> list[dict[str, Any]]:
    path = run / JOBS
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def save_jobs(run: Path, jobs: list[dict[str, Any]]) -> None:
    write_json_atomic(run / JOBS, jobs)


def round_counts(jobs: Iterable[dict[str, Any]]) -> Counter[str]:
    """How many jobs have carried each request id: one pass over every job's ids, so a merge
    that needs it for each of its items stays linear."""
    return Counter(i for job in jobs for ids in job["calls"].values() for i in ids)


def open_batch_api(backend: Backend) -> BatchAPI:
    """The backend's batch API, or a one-line refusal when it has none."""
    if not backend.supports_batch:
        raise BackendConfigError(f"the {backend.name} backend has no batch API")
    return backend.batch_api()  # type: ignore[attr-defined]  # declared by supports_batch


class Retrier:
    """Retry one provider call on ``TransientError``: exponential backoff with jitter, never
    sooner than the server's requested delay, at most ``retry_attempts`` tries in all."""

    def __init__(
        self,
        options: BatchOptions,
        say: Callable[[str], None] = print,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.options = options
        self.say = say
        self.sleep = sleep
        self.rng = random.Random()

    def __call__(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn(*args)
            except TransientError as exc:
                self.pause(attempt, exc, what)
            except FinalError as exc:
                raise BatchError(f"{what}: {exc}") from None

    def delay(self, attempt: int, retry_after: float | None) -> float:
        o = self.options
        delay = min(o.retry_max_delay, o.retry_base_delay * 2 ** (attempt - 1))
        delay *= self.rng.uniform(0.5, 1.5)
        if retry_after is not None:
            delay = max(delay, retry_after * self.rng.uniform(1.0, 1.25))
        return delay

    def pause(self, attempt: int, exc: TransientError, what: str) -> None:
        """Sleep before try ``attempt + 1``, or give up with a one-line ``BatchError``."""
        if attempt >= self.options.retry_attempts:
            raise BatchError(
                f"{what}: {exc} (gave up after {attempt} attempts; the jobs keep running: "
                "rerun the same command to re-attach)"
            )
        delay = self.delay(attempt, exc.retry_after)
        self.say(f"{what}: {exc}; retrying in {delay:.1f} s")
        self.sleep(delay)


def refresh_jobs(jobs: list[dict[str, Any]], api: BatchAPI, retry: Retrier) -> None:
    """Update the state of every unfinished job from the provider (for ``status``)."""
    for job in jobs:
        if job["name"] and not job["merged"] and job["state"] not in TERMINAL:
            job["state"] = retry(f"polling {job['name']}", api.poll, job["name"]).state


def cancel_jobs(jobs: list[dict[str, Any]], api: BatchAPI, retry: Retrier) -> list[str]:
    """Cancel every unfinished job; returns their names (for ``cancel``)."""
    cancelled = []
    for job in jobs:
        if job["name"] and not job["merged"] and job["state"] not in TERMINAL:
            retry(f"cancelling {job['name']}", api.cancel, job["name"])
            cancelled.append(job["name"])
    return cancelled
