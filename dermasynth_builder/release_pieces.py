"""The pieces `package` splits a run's pairs and records into, one per builder run.

A piece is a file of pickled row lists (`Batches`), read back by the hub builder in a worker
process, or, for a serial build, a list kept in memory (`Memory`) and handed to the builder
directly: no files, nothing pickled.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

from .records import SourceRecord
from .run.folder import RECORDS, RunFolder
from .run.schema import Pair

__all__ = ["Batches", "Memory", "astuple", "split_records"]


def astuple(pair: Pair) -> tuple[Any, ...]:
    return tuple(getattr(pair, name) for name in pair._names)


def split_records(
    run: Path,
    piece_of: dict[tuple[str, str], str],
    pieces: dict[str, list[Path]],
    memory: dict[str, list] | None = None,
) -> None:
    """The records of each piece's images beside it (``<piece>.records``), or in ``memory``:
    each builder then reads only its own records, not the whole records.jsonl. Rows are pickled
    as parsed (the builder reads them as `SourceRecord` rows), or kept as `SourceRecord` rows."""
    path = RunFolder(run).file(RECORDS)
    with Batches() if memory is None else Memory(memory) as batches:
        for own in pieces.values():
            for piece in own:
                batches.touch(str(piece.with_suffix(".records")))
        name = {str(p): str(p.with_suffix(".records")) for own in pieces.values() for p in own}
        if not path.is_file():
            return
        with open(path, "rb") as fh:
            for raw in fh:
                if not raw.endswith(b"\n"):
                    continue
                row = json.loads(raw)
                piece = piece_of.get((row.get("source"), row.get("image_id")))
                if piece is not None:  # in memory, a typed record is the smaller
                    batches.add(name[piece], row if memory is None else SourceRecord(**row))


class Batches:
    """Piece files written as a stream of pickled lists (the builder reads them back in one
    `pickle.load` per list): rows are parsed once, in `package`, not again by each builder."""

    SIZE = 512

    def __init__(self) -> None:
        self.pending: dict[str, list[Any]] = {}

    def add(self, path: str, row: Any) -> None:
        rows = self.pending.setdefault(path, [])
        rows.append(row)
        if len(rows) >= self.SIZE:
            self.flush(path)

    def flush(self, path: str) -> None:
        with open(path, "ab") as fh:
            pickle.dump(self.pending.pop(path), fh, protocol=pickle.HIGHEST_PROTOCOL)

    def touch(self, path: str) -> None:
        Path(path).touch()

    def __enter__(self) -> Batches:
        return self

    def __exit__(self, *exc: object) -> None:
        for path in list(self.pending):
            self.flush(path)


class Memory(Batches):
    """The pieces as lists in a dict, for a serial build: no files, nothing pickled."""

    def __init__(self, store: dict[str, list[Any]]) -> None:
        super().__init__()
        self.store = store

    def add(self, path: str, row: Any) -> None:
        rows = self.store.get(path)
        if rows is None:
            rows = self.store[path] = []
        rows.append(row)

    def touch(self, path: str) -> None:
        self.store.setdefault(path, [])
