"""``RunFolder``: the one owner of a run folder's files, lock, plan fingerprint and step state.

Every step reads and writes the folder through this class and the row types of ``schema``.
Step completion lives in ``run.json``'s ``steps`` and is written last and atomically: a step
clears its own mark (and those of the steps after it) before it changes anything, so a step
killed half-way is never taken as done.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from .fingerprint import file_digest, what_changed
from .jsonl import (
    TMP_SUFFIX,
    RunFolderError,
    iter_jsonl,
    read_json,
    write_json_atomic,
    write_jsonl_atomic,
)
from .lock import locked
from .schema import (
    Failure,
    Judgement,
    Pair,
    Rejected,
    Request,
    Response,
    Row,
    SchemaError,
    SourceRecord,
)
from .sink import ResultSink

RUN_JSON = "run.json"
RECORDS = "records.jsonl"
SKIPPED = "skipped.jsonl"
# Official test images the plan left out: never pairs by default; the eval benchmark's images.
HELDOUT = "heldout.jsonl"
REQUESTS = "requests.jsonl"
RESPONSES = "responses.jsonl"
FAILURES = "failures.jsonl"
PAIRS = "pairs.jsonl"
REJECTED = "rejected.jsonl"
JUDGEMENTS = "judgements.jsonl"  # `dermasynth judge`: a verdict per kept pair; curate reads it
STEPS = ("plan", "generate", "curate", "package")
# What steps after the plan made: moved aside together by a fresh plan, never mixed with another.
RESULTS = (
    RESPONSES,
    FAILURES,
    PAIRS,
    REJECTED,
    JUDGEMENTS,
    "unmatched.jsonl",
    "report.json",
    "report.md",
)
RESULT_DIRS = ("figures", "batch", "judge", "cache")
RESULT_STATE = ("batch_jobs.json",)
FORMAT = 2

T = TypeVar("T", bound=Row)


class RunFolder:
    """A run folder on disk; cheap to create, reads nothing until asked."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    # -- run.json ------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.file(RUN_JSON).is_file()

    def info(self) -> dict[str, Any]:
        path = self.file(RUN_JSON)
        if not path.is_file():
            raise RunFolderError(
                f"{self.path} is not a run folder: {RUN_JSON} not found (run `dermasynth plan`)"
            )
        info = read_json(path)
        if not isinstance(info, dict):
            raise RunFolderError(f"{path}: not a run.json (a JSON object was expected)")
        return info

    def write_info(self, data: dict[str, Any]) -> None:
        write_json_atomic(self.file(RUN_JSON), data)

    def update(self, **sections: Any) -> dict[str, Any]:
        """Merge top-level ``sections`` into ``run.json`` atomically; returns the new content."""
        data = self.info()
        data.update(sections)
        self.write_info(data)
        return data

    # -- the lock ------------------------------------------------------------------------
    @contextmanager
    def lock(self, verb: str) -> Iterator[RunFolder]:
        """Hold the folder exclusively; a second process gets a one-line ``RunLockedError``.
        Temp files an earlier killed writer left behind are removed once the lock is held."""
        if self.path.exists() and not self.path.is_dir():
            raise RunFolderError(f"{self.path} is a file, not a run folder; name a folder")
        with locked(self.path, verb):
            for tmp in self.path.glob(f"*{TMP_SUFFIX}"):
                tmp.unlink(missing_ok=True)
            yield self

    # -- typed rows ------------------------------------------------------------------------
    def _rows(self, name: str, cls: type[T]) -> Iterator[T]:
        for lineno, row in enumerate(iter_jsonl(self.file(name)), 1):
            try:
                yield cls.from_dict(row)
            except SchemaError as exc:
                raise RunFolderError(f"{self.file(name)}, line {lineno}: {exc}") from None

    def records(self) -> Iterator[SourceRecord]:
        for row in iter_jsonl(self.file(RECORDS)):
            yield SourceRecord.from_dict(row)

    def records_by_image(self) -> dict[tuple[str, str], SourceRecord]:
        return {(r.source, r.image_id): r for r in self.records()}

    def heldout(self) -> Iterator[SourceRecord]:
        """Records of the official test images the plan left out (none if it kept them)."""
        for row in iter_jsonl(self.file(HELDOUT)):
            yield SourceRecord.from_dict(row)

    def requests(self) -> Iterator[Request]:
        if not self.file(REQUESTS).is_file():
            raise RunFolderError(f"{self.file(REQUESTS)} not found: run `dermasynth plan` first")
        return self._rows(REQUESTS, Request)

    def responses(self) -> Iterator[Response]:
        return self._rows(RESPONSES, Response)

    def failures(self) -> Iterator[Failure]:
        return self._rows(FAILURES, Failure)

    def pairs(self) -> Iterator[Pair]:
        return self._rows(PAIRS, Pair)

    def rejected(self) -> Iterator[Rejected]:
        return self._rows(REJECTED, Rejected)

    def judgements(self) -> Iterator[Judgement]:
        """The judge's verdicts (none when `dermasynth judge` has not run)."""
        if not self.file(JUDGEMENTS).is_file():
            return iter(())
        return self._rows(JUDGEMENTS, Judgement)

    def write_records(self, records: Iterable[SourceRecord]) -> int:
        return write_jsonl_atomic(self.file(RECORDS), (r.to_dict() for r in records))

    def write_heldout(self, records: Iterable[SourceRecord]) -> int:
        return write_jsonl_atomic(self.file(HELDOUT), (r.to_dict() for r in records))

    def write_skipped(self, rows: Iterable[dict[str, Any]]) -> int:
        return write_jsonl_atomic(self.file(SKIPPED), rows)

    def write_requests(self, requests: Iterable[Request]) -> int:
        return write_jsonl_atomic(self.file(REQUESTS), (r.to_dict() for r in requests))

    def write_rows(self, name: str, rows: Iterable[Row]) -> int:
        """Replace a whole file of rows (curate's pairs and rejected, an import's responses)."""
        return write_jsonl_atomic(self.file(name), (r.to_dict() for r in rows))

    def write_plain(self, name: str, rows: Iterable[dict[str, Any]]) -> int:
        """A side file with no row type of its own (an import's unmatched pairs)."""
        return write_jsonl_atomic(self.file(name), rows)

    # -- results -------------------------------------------------------------------------
    def sink(self) -> ResultSink:
        """The exactly-once writer of responses and failures (online and batch alike)."""
        return ResultSink(self.file(RESPONSES), self.file(FAILURES))

    def finished_ids(self) -> set[str]:
        return {r["id"] for name in (RESPONSES, FAILURES) for r in iter_jsonl(self.file(name))}

    def has_results(self) -> bool:
        for name in RESULTS:
            path = self.file(name)
            if path.is_file() and path.stat().st_size:
                return True
        return self.file("batch_jobs.json").is_file()

    def results_state(self) -> dict[str, int]:
        """Sizes of the result files: what a later step consumed, to tell if it is stale."""
        out = {}
        for name in (RESPONSES, FAILURES, JUDGEMENTS):
            path = self.file(name)
            out[name] = path.stat().st_size if path.is_file() else 0
        return out

    def move_results_aside(self) -> Path:
        """Move every result of the current plan into ``replaced-<UTC time>/``; returns it."""
        dest = self.path / time.strftime("replaced-%Y%m%dT%H%M%SZ", time.gmtime())
        n = 1
        while dest.exists():
            n += 1
            dest = dest.with_name(f"{dest.name.split('.')[0]}.{n}")
        dest.mkdir(parents=True)
        for name in (*RESULTS, *RESULT_DIRS, *RESULT_STATE):
            src = self.file(name)
            if src.exists():
                shutil.move(str(src), str(dest / name))
        return dest

    # -- the plan fingerprint ---------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any] | None:
        return self.info().get("fingerprint") if self.exists() else None

    def check_plan(self, templates: Path | None = None) -> dict[str, Any]:
        """The run's info after checking that its plan is whole and still current: the requests
        file is the one the plan wrote, and the templates it was made with are unchanged."""
        info = self.info()
        fp = info.get("fingerprint")
        steps = info.get("steps", {})
        if fp is None or "plan" not in steps:
            raise RunFolderError(
                f"{self.path}: the plan is missing or unfinished (made by an older version, or "
                "killed while planning); run `dermasynth plan` again"
            )
        digest = steps["plan"].get("requests_sha256")
        if digest and file_digest(self.file(REQUESTS)) != digest:
            raise RunFolderError(
                f"{self.file(REQUESTS)} changed since it was planned; plan again with --fresh"
            )
        if templates is not None and fp.get("templates"):
            current = {
                name: file_digest(templates / name) if (templates / name).is_file() else None
                for name in fp["templates"]
            }
            if current != fp["templates"]:
                change = what_changed({"templates": fp["templates"]}, {"templates": current})
                raise RunFolderError(
                    f"{self.path}: {change} since the plan; plan again with --fresh "
                    "(a resumed run must not mix two prompt versions)"
                )
        return info

    # -- step state ------------------------------------------------------------------------
    def step(self, name: str) -> dict[str, Any] | None:
        """The completion mark of a step, or None when it has not finished since it last began."""
        if not self.exists():
            return None
        return self.info().get("steps", {}).get(name)

    def start_step(self, name: str) -> None:
        """Clear the marks of ``name`` and every later step before ``name`` changes anything."""
        later = STEPS[STEPS.index(name) :]
        data = self.info()
        steps = data.get("steps", {})
        if any(s in steps for s in later):
            data["steps"] = {k: v for k, v in steps.items() if k not in later}
            self.write_info(data)

    def finish_step(self, name: str, **facts: Any) -> None:
        """Mark ``name`` done (last, atomically) with the plan digest it worked from."""
        data = self.info()
        fp = data.get("fingerprint") or {}
        data.setdefault("steps", {})[name] = {"plan": fp.get("digest"), **facts}
        self.write_info(data)

    def require_step(self, name: str, verb: str) -> dict[str, Any]:
        """The mark of ``name``, which must be done and from the current plan."""
        info = self.info()
        mark = info.get("steps", {}).get(name)
        current = (info.get("fingerprint") or {}).get("digest")
        if mark is None:
            raise RunFolderError(
                f"{self.path}: `dermasynth {name}` has not finished; run it before `{verb}`"
            )
        if mark.get("plan") != current:
            raise RunFolderError(
                f"{self.path}: `{name}` ran on an older plan; run `dermasynth {name}` again"
            )
        return mark


def read_run(run: Path) -> dict[str, Any]:
    """``run.json`` of the folder ``run`` (kept for callers that only need the info)."""
    return RunFolder(run).info()


def update_run(run: Path, **sections: Any) -> dict[str, Any]:
    return RunFolder(run).update(**sections)
