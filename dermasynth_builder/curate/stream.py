"""Reading responses in plan order without holding them: an index of where each line starts.

Curation must take responses in plan order (requests.jsonl) so its stateful filters decide the
same way on every rerun, while responses.jsonl is in completion order. Holding every response
to reorder them costs ~9 KB a response (11 GB at 1.2M); this index keeps 16 bytes a response
(a 64-bit hash of the id and the line's byte offset, in two sorted arrays) and reads each line
back when its request comes up. Equal hashes are resolved by reading the lines and comparing
ids, so the lookup is exact; when an id occurs twice the later line wins, as before.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..run import Response, RunFolderError, SchemaError


def _key(request_id: str) -> int:
    """A 64-bit key for an id (Python's string hash: stable within one process, which is all
    the index lives for)."""
    return hash(request_id)


class ResponseIndex:
    """responses.jsonl by id, read back one line at a time (open it with ``with``)."""

    def __init__(self, path: Path, on_response: Callable[[Response], None] | None = None):
        self.path = path
        hashes, offsets = array("q"), array("q")
        if path.is_file():
            with open(path, "rb") as fh:
                offset = 0
                for lineno, raw in enumerate(fh, 1):
                    start, offset = offset, offset + len(raw)
                    if not raw.endswith(b"\n"):
                        break  # torn tail: the writer died mid-line
                    try:
                        data = json.loads(raw)
                    except (json.JSONDecodeError, UnicodeDecodeError):
                        raise RunFolderError(
                            f"{path}, line {lineno}: not a JSON object (edited or damaged?)"
                        ) from None
                    response = _response(data, path, lineno)
                    hashes.append(_key(response.id))
                    offsets.append(start)
                    if on_response is not None:
                        on_response(response)
        keys = np.frombuffer(hashes, dtype=np.int64) if hashes else np.zeros(0, np.int64)
        places = np.frombuffer(offsets, dtype=np.int64) if offsets else np.zeros(0, np.int64)
        order = np.argsort(keys, kind="stable")  # equal hashes stay in file order
        self.hashes, self.offsets = keys[order], places[order]
        self.count = int(len(np.unique(self.hashes)))  # distinct ids (up to 64-bit collisions)
        # held open for the lookups; closed by close() / the with block
        self._fh = open(path, "rb") if path.is_file() else None  # noqa: SIM115

    def get(self, request_id: str) -> Response | None:
        """The response to ``request_id`` (its last line), or None."""
        return self.get_many([request_id])[0]

    def get_many(self, request_ids: list[str]) -> list[Response | None]:
        """The responses to ``request_ids``, in order (one vectorised search for them all)."""
        if self._fh is None or not request_ids:
            return [None] * len(request_ids)
        keys = np.fromiter((_key(i) for i in request_ids), np.int64, len(request_ids))
        lows = np.searchsorted(self.hashes, keys, "left").tolist()
        highs = np.searchsorted(self.hashes, keys, "right").tolist()
        out: list[Response | None] = []
        for request_id, lo, hi in zip(request_ids, lows, highs, strict=True):
            found = None
            for i in range(lo, hi):
                self._fh.seek(int(self.offsets[i]))
                data = json.loads(self._fh.readline())
                if data.get("id") == request_id:
                    found = data
            out.append(None if found is None else _response(found, self.path, None))
        return out

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> ResponseIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _response(data: dict, path: Path, lineno: int | None) -> Response:
    try:
        return Response.from_dict(data)
    except SchemaError as exc:
        where = f", line {lineno}" if lineno else ""
        raise RunFolderError(f"{path}{where}: {exc}") from None
