"""The exactly-once result sink: every planned request id ends in one line of
``responses.jsonl`` or ``failures.jsonl``, never both, never twice.

Online and batch generation both write through it. It reads the ids already recorded when it
opens and drops any row whose id is among them, so a merge redone after a kill, or a response
arriving for an id that failed meanwhile, cannot duplicate a line. (Two processes are kept
apart by the run folder's lock, not here.)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .jsonl import JsonlAppender, iter_jsonl, write_jsonl_atomic
from .schema import Failure, Response


class ResultSink:
    def __init__(self, responses: Path, failures: Path):
        self.responses_path = responses
        self.failures_path = failures
        self.answered = {r["id"] for r in iter_jsonl(responses)}
        self.failed = {r["id"] for r in iter_jsonl(failures)} - self.answered
        self._responses: JsonlAppender | None = None
        self._failures: JsonlAppender | None = None

    @property
    def done(self) -> set[str]:
        return self.answered | self.failed

    def is_done(self, request_id: str) -> bool:
        return request_id in self.answered or request_id in self.failed

    def forget_failures(self) -> int:
        """Give every recorded failure another chance (``--retry-failed``): they are removed
        from failures.jsonl atomically before anything is appended. Returns how many."""
        if self._failures is not None:
            raise RuntimeError("forget_failures() must run before the sink is opened")
        if not self.failed:
            return 0
        keep = [r for r in iter_jsonl(self.failures_path) if r["id"] in self.answered]
        write_jsonl_atomic(self.failures_path, keep)
        n = len(self.failed)
        self.failed = set()
        return n

    def open(self) -> ResultSink:
        if self._responses is None:
            self._responses = JsonlAppender(self.responses_path)
            self._failures = JsonlAppender(self.failures_path)
        return self

    def close(self) -> None:
        for handle in (self._responses, self._failures):
            if handle is not None:
                handle.close()
        self._responses = self._failures = None

    def __enter__(self) -> ResultSink:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_responses(self, rows: Iterable[Response]) -> list[Response]:
        """Append the rows whose ids have no outcome yet; returns those written."""
        assert self._responses is not None, "open the sink first"
        written = []
        for row in rows:
            if self.is_done(row.id):
                continue
            self._responses.write(row.to_dict())
            self.answered.add(row.id)
            written.append(row)
        return written

    def add_failures(self, rows: Iterable[Failure]) -> list[Failure]:
        assert self._failures is not None, "open the sink first"
        written = []
        for row in rows:
            if self.is_done(row.id):
                continue
            self._failures.write(row.to_dict())
            self.failed.add(row.id)
            written.append(row)
        return written
