"""Wire shapes of the fake Batch/Files API, and its scripted failures.

``Faults`` lets a test make the next create, get (poll), list, cancel, upload or download fail
with an HTTP status, optionally *after* doing the work (a create that succeeded server-side
but whose reply was lost). Stdlib only.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

Page = tuple[str, str]  # pageSize, pageToken as sent
OPS = frozenset("create get list cancel upload download".split())
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Fault:
    code: int
    after: bool
    retry_after: float | None
    message: str


class Faults:
    """Per-operation FIFO of scripted failures (thread-safe)."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Fault]] = {op: deque() for op in OPS}
        self._lock = threading.Lock()

    def add(
        self,
        op: str,
        code: int = 503,
        *,
        times: int = 1,
        after: bool = False,
        retry_after: float | None = None,
        message: str = "",
    ) -> None:
        """Fail the next ``times`` ``op`` requests with ``code`` (``after``: do the work first)."""
        if op not in OPS:
            raise ValueError(f"unknown operation {op!r}; expected one of {sorted(OPS)}")
        message = message or f"Fake {op} failure (scripted {code})."
        with self._lock:
            self._queues[op].extend([Fault(code, after, retry_after, message)] * times)

    def take(self, op: str) -> Fault | None:
        with self._lock:
            queue = self._queues[op]
            return queue.popleft() if queue else None


def faulty(op: str) -> Callable[[F], F]:
    """Let ``self.faults`` fail this handler of a ``BatchFiles`` (counted as ``fault_<op>``)."""

    def wrap(method: F) -> F:
        @functools.wraps(method)
        def inner(self: Any, *args: Any, **kw: Any) -> Any:
            fault = self.faults.take(op)
            if fault is None:
                return method(self, *args, **kw)
            if fault.after:
                method(self, *args, **kw)
            self._count(f"fault_{op}")
            return self._error(fault.code, fault.message, fault.retry_after)

        return inner  # type: ignore[return-value]

    return wrap


def stamp(at: float) -> str:
    """RFC 3339 UTC with microseconds, as the real API writes (pydantic parses it)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1e6):06d}Z"


def status(code: int, message: str, name: str) -> dict[str, Any]:
    return {"code": code, "message": message, "status": name}


def paged(field: str, items: list[dict[str, Any]], page: Page) -> dict[str, Any]:
    """Offset pagination; the token is the next offset, as an opaque string."""
    size, token = (int(v) if v.isdigit() else 0 for v in page)
    end = token + size if size > 0 else len(items)
    out: dict[str, Any] = {field: items[token:end]}
    if end < len(items):
        out["nextPageToken"] = str(end)
    return out


def jsonl_items(data: bytes) -> list[tuple[Any, Any, str | None]]:
    """Input lines ``{"key", "request"}`` as (metadata, request, problem) like inline items."""
    items: list[tuple[Any, Any, str | None]] = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            items.append(({"key": None}, None, f"Invalid JSON on input line {number}."))
            continue
        if not isinstance(row, dict):
            items.append(({"key": None}, None, f"Input line {number} is not an object."))
            continue
        items.append(({"key": row.get("key")}, row.get("request"), None))
    return items


def item_key(item: dict[str, Any]) -> Any:
    meta = item.get("metadata")
    return meta.get("key") if isinstance(meta, dict) else None


def output_line(item: dict[str, Any], error_key: str) -> dict[str, Any]:
    """An output JSONL line: ``{"key", "response"}`` or ``{"key", <error_key>: Status}``."""
    line: dict[str, Any] = {"key": item_key(item)}
    if "response" in item:
        line["response"] = item["response"]
    else:
        line[error_key] = item["error"]
    return line
