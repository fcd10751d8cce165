"""Batch mode: the plan through a backend's batch job API (half the price, results within 24 h).

The runner talks only to the backend's ``BatchAPI`` (submit, find, poll, download, cancel) and
writes only through the engine's result sink, so every id lands exactly once, as online. Job
names are saved in ``RUN/batch_jobs.json`` before anything else happens: a restarted process
re-attaches to its jobs instead of submitting again, and a job whose name was never saved (a
kill, or a create whose reply was lost) is found again by its display name. Every call to the
provider is retried on transient errors with backoff, never sooner than the server asks.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .backends import Call, CallResult, FinalError, TransientError
from .backends.batch_api import CANCELLED, TERMINAL, BatchAPI, RemoteJob
from .batch_jobs import (
    BatchError,
    BatchOptions,
    Retrier,
    load_jobs,
    open_batch_api,
    round_counts,
    save_jobs,
)
from .engine import Engine
from .options import GenerateOptions
from .records import SourceRecord
from .run import Request

__all__ = [
    "TERMINAL",
    "BatchError",
    "BatchOptions",
    "BatchRunner",
    "load_jobs",
    "open_batch_api",
    "round_counts",
    "save_jobs",
]


class _Chunk:
    """One job's worth of input lines, streamed to a file (never all held in memory)."""

    def __init__(self, path: Path):
        self.path = path
        self.handle = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self.size = 0
        self.calls: dict[str, list[str]] = {}
        self.digest = hashlib.sha256()

    def add(self, call: Call, line: str) -> None:
        self.handle.write(line + "\n")
        self.size += len(line) + 1
        self.calls[call.call_id] = [r.id for r in call.requests]
        self.digest.update(call.call_id.encode())

    def close(self) -> None:
        self.handle.close()


class BatchRunner:
    """Submit, re-attach, poll and merge the batch jobs of one run folder."""

    def __init__(
        self,
        run: Path,
        options: GenerateOptions,
        batch: BatchOptions | None = None,
        say: Callable[[str], None] = print,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.options = options
        self.batch = batch or BatchOptions()
        self.say = say
        self.sleep = sleep
        self.engine = Engine(run, options)  # the same calls, prompts and sink as online
        try:
            self.api: BatchAPI = open_batch_api(self.engine.backend)
        except BaseException:
            self.engine.close()
            raise
        self.retry = Retrier(self.batch, say, sleep)
        self.run = self.engine.folder.path
        self.jobs = load_jobs(self.run)

    def close(self) -> None:
        """Release the run folder (the jobs keep running remotely)."""
        self.engine.close()

    def __enter__(self) -> BatchRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- submitting ------------------------------------------------------------------------
    def submit(self, calls: list[Call]) -> None:
        """Stream the calls into input files under the size limit and create one job per file;
        each job's name is saved as soon as it exists."""
        folder = self.run / "batch"
        folder.mkdir(exist_ok=True)
        limit = self.batch.file_limit if self.batch.file_limit is not None else self.api.file_limit
        chunk: _Chunk | None = None
        for call in calls:
            try:  # prepared once per image (shared by its calls), freed after its last line
                image = call.image_sync()
            except FinalError as exc:  # deleted or damaged since the plan: fail it now
                call.release()
                self.engine.write_failure(call, "final", str(exc), 0)
                continue
            self.engine.render_prompt(call)
            line = self.api.encode(call, image)
            call.release()
            call.prompt = ""
            if chunk is not None and chunk.size + len(line) > limit:
                self._create(chunk)
                chunk = None
            if chunk is None:
                chunk = _Chunk(folder / f"part-{len(self.jobs):05d}.jsonl")
            chunk.add(call, line)
        if chunk is not None:
            self._create(chunk)

    def _create(self, chunk: _Chunk) -> None:
        chunk.close()
        # the job's index keeps a later round of the same calls apart from this one
        display = f"dermasynth-{chunk.digest.hexdigest()[:12]}-{len(self.jobs)}"
        limit = self.batch.inline_limit
        inline = chunk.size <= (self.api.inline_limit if limit is None else limit)
        job: dict[str, Any] = {
            "display_name": display,
            "name": None,
            "state": "SUBMITTING",
            "merged": False,
            "calls": chunk.calls,
            "inline": inline,
            "input_file": None,
        }
        self.jobs.append(job)
        save_jobs(self.run, self.jobs)  # before creating: a kill now is found by display name
        remote = self._create_once(chunk.path, display, inline)
        job["name"], job["state"], job["input_file"] = remote.name, remote.state, remote.input_file
        save_jobs(self.run, self.jobs)
        chunk.path.unlink(missing_ok=True)
        self.say(
            f"submitted {remote.name}: {len(chunk.calls):,} calls "
            f"({'inline' if inline else 'file'}, {chunk.size / 2**20:,.1f} MiB)"
        )

    def _create_once(self, path: Path, display: str, inline: bool) -> RemoteJob:
        """Create the job, retrying transient failures. A failed create may have succeeded
        server-side, so before each retry the job is looked up by its display name."""
        attempt = 0
        while True:
            attempt += 1
            if attempt > 1:
                found = self._unknown(self.retry(f"looking up {display}", self.api.find, [display]))
                if found:
                    return found[0]
            try:
                return self.api.submit(path, display, inline)
            except TransientError as exc:
                self.retry.pause(attempt, exc, f"creating {display}")
            except FinalError as exc:
                raise BatchError(f"creating {display}: {exc}") from None

    def _unknown(self, remote: list[RemoteJob]) -> list[RemoteJob]:
        """The remote jobs not yet in the ledger (newest first)."""
        known = {j["name"] for j in self.jobs if j["name"]}
        return [r for r in remote if r.name not in known]

    def _reattach_unnamed(self) -> None:
        """A job whose creation was cut off before its name was saved: find it by display name,
        or, if it was never created, drop it (its calls are simply pending again)."""
        missing = [j for j in self.jobs if not j["name"]]
        if not missing:
            return
        names = [j["display_name"] for j in missing]
        remote = self._unknown(self.retry("listing batch jobs", self.api.find, names))
        for job in missing:
            match = next((r for r in remote if r.display_name == job["display_name"]), None)
            if match is not None:
                job["name"], job["state"] = match.name, match.state
                remote.remove(match)
        self.jobs = [j for j in self.jobs if j["name"]]
        save_jobs(self.run, self.jobs)

    # -- waiting and merging ---------------------------------------------------------------
    def wait_and_merge(self) -> None:
        """Poll the open jobs (backing off) and merge each one as it ends."""
        interval = self.batch.poll_interval
        while True:
            open_jobs = [j for j in self.jobs if not j["merged"]]
            if not open_jobs:
                return
            for job in open_jobs:
                remote = self.retry(f"polling {job['name']}", self.api.poll, job["name"])
                job["state"] = remote.state
                if remote.done:
                    self._merge(job, remote)  # redone after a kill: the sink drops repeats
            save_jobs(self.run, self.jobs)
            still = [f"{j['name']} {j['state']}" for j in self.jobs if not j["merged"]]
            if still:
                self.say(f"waiting {interval:.0f} s: {', '.join(still)}")
                self.sleep(interval)
                interval = min(self.batch.max_poll_interval, interval * 1.5)

    def _merge(self, job: dict[str, Any], remote: RemoteJob) -> None:
        """Record each finished item through the sink, which drops ids already recorded (a
        merge cut off by a kill is simply done again). As online, content failures (cut-off or
        invalid JSON) and transient ones (5xx, an expired or failed job) stay pending for the
        next round until ``max_content_attempts`` rounds have been spent. Linear in the items:
        the rounds per request and the requests by id are computed once per merge."""
        sink = self.engine.open_sink()
        calls: dict[str, list[str]] = job["calls"]
        wanted = {i for ids in calls.values() for i in ids}
        open_keys = {k for k, ids in calls.items() if not all(sink.is_done(i) for i in ids)}
        requests: dict[str, Request] = {}
        records: dict[tuple[str, str], SourceRecord] = {}
        items: Any = ()
        into = self.run / "batch" / f"{str(job['name']).rsplit('/', 1)[-1]}.results.jsonl"
        if open_keys:
            requests = {r.id: r for r in self.engine.folder.requests() if r.id in wanted}
            records = self.engine.records_by_image()
            what = f"downloading the results of {job['name']}"
            items = self.retry(what, self.api.download, remote, into)
        rounds = round_counts(self.jobs)
        seen: set[str] = set()
        for key, item in items:
            if key not in open_keys or key in seen:
                continue
            seen.add(key)
            call = self.engine.make_call([requests[i] for i in calls[key]], records)
            self._record(call, self.api.outcome(call, item), rounds)
        ended = f"job {job['name']} ended {job['state']} without it"
        for key in open_keys - seen:  # cancelled on purpose: final; failed or expired: retry
            call = self.engine.make_call([requests[i] for i in calls[key]], records)
            cancelled = job["state"] == CANCELLED
            self._record(call, FinalError(ended) if cancelled else TransientError(ended), rounds)
        into.unlink(missing_ok=True)
        job["merged"] = True
        self.say(f"merged {job['name']} ({job['state']})")

    def _record(self, call: Call, outcome: CallResult | Exception, rounds: Counter[str]) -> None:
        """Write one call's outcome through the engine (and so its exactly-once sink)."""
        spent = max(rounds[r.id] for r in call.requests)  # jobs that carried it so far
        if isinstance(outcome, CallResult):
            self.engine.write_success(call, outcome, spent, 0.0, batch=True)
            return
        final = isinstance(outcome, FinalError)
        if not final and spent < self.options.max_content_attempts:
            return  # still pending: the next round resubmits it
        transient = isinstance(outcome, TransientError)
        kind = "final" if final else "transient" if transient else "content"
        self.engine.write_failure(call, kind, f"batch: {outcome}", spent)

    # -- the whole mode --------------------------------------------------------------------
    def run_all(self) -> dict[str, Any]:
        """Re-attach to earlier jobs, then submit what is left, round after round, until every
        request is answered or has failed for good (at most ``max_content_attempts`` rounds
        each). Releases the run folder when done."""
        try:
            self._reattach_unnamed()
            while True:
                self.wait_and_merge()  # all jobs merged: nothing pending is inside a job
                calls = self.engine.pending_calls()
                if not calls:
                    return self.engine.finish()
                self.submit(calls)
        finally:
            self.close()
