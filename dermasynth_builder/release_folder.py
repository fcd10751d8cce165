"""The ``--out`` folder of `package`: recognise our own release, stage a new one, swap it in.

`package` must never delete or overwrite what it did not write. A release it writes carries a
marker (``.dermasynth-release.json``) listing its files; ``--out`` may only be absent, empty, or
such a release with nothing added. The new release is built whole in a hidden sibling
``.<name>.partial-<pid>`` and swapped in with two renames (the old release goes to
``.<name>.old-<pid>`` and is then removed), so a kill leaves the old release, the new one, or,
between the renames, no ``--out`` plus siblings that the next run removes before it builds afresh.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .release import ForeignContentError, ReleaseError

MARKER = ".dermasynth-release.json"
FORMAT = 1
_ADVICE = "choose an empty or new folder for --out"


def resolve_out(out: Path) -> Path:
    """The resolved release folder: a symlink is followed so the swap replaces its target."""
    out = Path(out).resolve()
    if not out.name:
        raise ReleaseError(f"--out {out}: a release needs a folder of its own; {_ADVICE}")
    return out


def sibling(out: Path, kind: str, pid: int | None = None) -> Path:
    """Our hidden staging (``partial``) or outgoing (``old``) folder beside ``out``."""
    return out.parent / f".{out.name}.{kind}-{os.getpid() if pid is None else pid}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # ours are leftovers of an earlier call: nothing of this call exists yet
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def clean_leftovers(out: Path) -> list[Path]:
    """Remove the staging and outgoing siblings of ``out`` that killed runs left behind.

    Only folders named exactly like ours for this ``out`` and whose process is gone are touched;
    a live process's staging is left alone (a concurrent `package`)."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(?:partial|old)-(\d+)")
    removed = []
    if not out.parent.is_dir():
        return removed
    for entry in sorted(out.parent.iterdir()):
        match = pattern.fullmatch(entry.name)
        if match and entry.is_dir() and not entry.is_symlink() and not _alive(int(match[1])):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of a release this tool wrote, or None (absent, unreadable or not ours)."""
    path = folder / MARKER
    if path.is_symlink() or not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(marker, dict) or not isinstance(marker.get("files"), list):
        return None
    if marker.get("format") != FORMAT:
        return None
    return marker


def foreign_entry(folder: Path) -> str | None:
    """The first entry of ``folder`` that its release marker does not list (None: all ours).

    A folder is named with a trailing ``/`` and not entered when no listed file lies in it."""
    marker = read_marker(folder)
    listed = {str(f) for f in marker["files"]} if marker else set()
    dirs = {"/".join(f.split("/")[:i]) for f in listed for i in range(1, f.count("/") + 1)}

    def walk(path: Path, prefix: str) -> str | None:
        for entry in sorted(os.scandir(path), key=lambda e: e.name):
            rel = prefix + entry.name
            if not prefix and entry.name == MARKER and marker is not None:
                continue
            if entry.is_dir(follow_symlinks=False):
                if rel not in dirs:
                    return rel + "/"
                found = walk(Path(entry.path), rel + "/")
                if found:
                    return found
            elif not (entry.is_file(follow_symlinks=False) and rel in listed):
                return rel
        return None

    return walk(folder, "")


def check_out(out: Path) -> None:
    """Refuse (one line, naming the first foreign entry) an ``out`` we may not replace."""
    if not os.path.lexists(out):
        return
    if out.is_symlink() or not out.is_dir():
        raise ForeignContentError(f"--out {out} is not a folder; {_ADVICE}")
    try:
        entry = foreign_entry(out)
    except OSError as exc:
        message = f"--out {out} cannot be read ({exc.strerror}); {_ADVICE}"
        raise ForeignContentError(message) from None
    if entry is not None:
        raise ForeignContentError(
            f"--out {out} holds {entry!r}, which no earlier release of `dermasynth package` "
            f"wrote; nothing was changed: {_ADVICE}"
        )


def write_marker(folder: Path, run: Path) -> None:
    """List every file of the finished ``folder``: written last, it marks the release complete."""
    names = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    files = sorted(n for n in names if n not in (MARKER, f"{MARKER}.tmp"))
    marker = {"format": FORMAT, "run": str(run.resolve()), "files": files}
    tmp = folder / f"{MARKER}.tmp"
    tmp.write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MARKER)


@contextlib.contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A fresh hidden folder beside ``out`` for building; it is removed however the block ends."""
    root = sibling(out, "partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        root.mkdir()
    except OSError as exc:
        raise ReleaseError(f"cannot create {root}: {exc.strerror or exc}") from None
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def swap_in(new: Path, out: Path) -> None:
    """Replace ``out`` (absent, empty, or our release) by the finished release ``new``.

    The old one is renamed aside first and checked again there, so a file added to ``out``
    while the release was being built is never deleted: the old folder goes back instead."""
    if not os.path.lexists(out):
        os.rename(new, out)
        return
    old = sibling(out, "old")
    os.rename(out, old)
    try:
        check_out(old)
        os.rename(new, out)
    except BaseException as exc:
        os.rename(old, out)
        if isinstance(exc, ForeignContentError):
            check_out(out)  # the same refusal, naming ``out`` rather than the aside name
        raise
    shutil.rmtree(old, ignore_errors=True)
