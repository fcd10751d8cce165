"""JSON Lines and JSON files that survive a ``kill -9``: the run folder's low-level I/O.

Writers are append-only (with a flush per line) or write a temp file and ``os.replace`` it, so a
``kill -9`` leaves either the old file, the new file, or a torn last line that readers skip.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any


class RunFolderError(Exception):
    """The run folder is missing a file a step needs, is in use, or holds something else: the
    CLI prints the message as one line and exits 2."""


_SURROGATE = re.compile("[\ud800-\udfff]")


def dumps(obj: Any) -> str:
    """One canonical JSON line: sorted keys and no spaces, so equal inputs give equal bytes.

    A lone surrogate (which a server can send as ``\\ud800``) cannot be written as UTF-8; it
    becomes U+FFFD so one bad answer never stops a run (backends reject such answers first)."""
    text = json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATE.sub("\ufffd", text)
    return text


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the complete JSON lines of ``path``; a torn last line (a killed writer) is skipped.

    Any other line that is not a JSON object was damaged outside this tool: it stops the step
    with the file and line number (a ``RunFolderError``), never silently costs a row."""
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.endswith(b"\n"):
                return  # torn tail: the writer died mid-line
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                row = None
            if not isinstance(row, dict):
                raise RunFolderError(
                    f"{path}, line {lineno}: not a JSON object (was the file edited or damaged?)"
                )
            yield row


def read_json(path: Path) -> Any:
    """A JSON file this tool wrote; a damaged one is a one-line ``RunFolderError``."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunFolderError(f"{path}: not valid JSON ({exc}); was it edited or damaged?") from None


def repair_tail(path: Path) -> None:
    """Cut a torn last line so that appends start on a fresh line."""
    if not path.exists():
        return
    with open(path, "rb+") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        # walk back to the last newline
        pos = size - 1
        chunk = 4096
        while pos > 0:
            start = max(0, pos - chunk)
            fh.seek(start)
            data = fh.read(pos - start)
            idx = data.rfind(b"\n")
            if idx >= 0:
                fh.truncate(start + idx + 1)
                return
            pos = start
        fh.truncate(0)


class JsonlAppender:
    """Append-only JSONL writer that flushes (and optionally fsyncs) every line."""

    def __init__(self, path: Path, fsync: bool = False):
        repair_tail(path)
        self.path = path
        self.fsync = fsync
        self._fh: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, obj: dict[str, Any]) -> None:
        self._fh.write(dumps(obj) + "\n")
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


TMP_SUFFIX = ".tmp"


def write_jsonl_atomic(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Stream ``rows`` to a temp file and move it into place; returns the row count."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    count = 0
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(dumps(row) + "\n")
            count += 1
    os.replace(tmp, path)
    return count


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + TMP_SUFFIX)
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, ensure_ascii=False, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)
