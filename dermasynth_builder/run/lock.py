"""An exclusive lock on a run folder, so two processes never write one folder at once.

It is an advisory ``flock`` on ``RUN/.lock``: the kernel drops it when its process dies (even
by ``kill -9``), so a stale lock is simply taken over by the next process. The file keeps the
holder's pid and verb, only to name the holder in the refusal. Within one process the lock is
re-entrant (``dermasynth run`` holds it while each step takes it again).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .jsonl import RunFolderError

LOCK_FILE = ".lock"
_held: dict[str, tuple[int, int]] = {}  # resolved folder -> (fd, depth)


class RunLockedError(RunFolderError):
    """Another live process holds the run folder."""


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "another process"
    verb = f"`dermasynth {info['verb']}`" if info.get("verb") else "another process"
    return f"{verb} (pid {info.get('pid', '?')} on {info.get('host', '?')})"


@contextmanager
def locked(folder: Path, verb: str) -> Iterator[None]:
    """Hold the folder's lock for the block; raise ``RunLockedError`` at once if it is taken."""
    key = str(folder.resolve())
    if key in _held:
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
    else:
        _held[key] = (_acquire(folder, verb), 1)
    try:
        yield
    finally:
        fd, depth = _held[key]
        if depth > 1:
            _held[key] = (fd, depth - 1)
        else:  # the last holder in this process (in whatever order they let go)
            del _held[key]
            os.close(fd)  # closing the descriptor releases the flock


def _acquire(folder: Path, verb: str) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _flock(fd)
    except BlockingIOError:
        os.close(fd)
        raise RunLockedError(
            f"{folder} is in use by {_holder(path)}; wait for it to finish or stop it"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    note = json.dumps({"pid": os.getpid(), "verb": verb, "host": socket.gethostname()})
    os.ftruncate(fd, 0)
    os.pwrite(fd, note.encode(), 0)
    return fd


def _flock(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover - no flock; msvcrt locks a byte instead
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            raise BlockingIOError from None
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
