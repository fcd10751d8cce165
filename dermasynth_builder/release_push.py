"""Publish a release folder to the Hugging Face Hub: checks, the card with the real repo id, and
an upload that retries transient Hub errors.

`dermasynth push` parses its options and calls `push_release` (or `push_plan` for a dry run).
User errors raise `ReleaseError` (one line, exit 2); a Hub that stays unreachable or keeps
answering 5xx raises `PushFailed` once the retries are spent (one line, exit 1).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .release import ReleaseError

__all__ = ["PushFailed", "PushPlan", "push_plan", "push_release", "transient"]

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_TRANSPORT_ERRORS = (
    ("httpx2", ("TransportError",)),
    ("httpx", ("TransportError",)),
    ("requests.exceptions", ("ConnectionError", "Timeout")),
)


class PushFailed(Exception):
    """The upload did not complete (the Hub or the network failed): one line, exit 1."""


@dataclass(slots=True)
class PushPlan:
    """What a push sends: the files (relative path, bytes) and the card with the real repo id."""

    folder: Path
    repo_id: str
    files: list[tuple[str, int]]
    card: str
    offline: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(size for _, size in self.files)


@dataclass(slots=True)
class PushResult:
    url: str
    commit: str
    files: int
    total: int
    attempts: int


def release_files(folder: Path) -> list[tuple[str, int]]:
    """What an upload sends: every file but hidden ones (the release marker, caches)."""
    files = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            files.append((rel.as_posix(), path.stat().st_size))
    return files


def check_repo_id(repo_id: str) -> None:
    """ORG/NAME as the Hub accepts it, else one line (``../x`` is not a repo id)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ReleaseError(f"--repo-id {repo_id!r}: expected ORG/NAME")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        reason = str(exc).splitlines()[0].split(":")[0].rstrip(".")
        raise ReleaseError(f"--repo-id {repo_id!r} is not a valid Hub repo id ({reason})") from None


def push_plan(folder: Path, repo_id: str, *, allow_offline: bool = False) -> PushPlan:
    """Check ``folder`` and ``repo_id`` and prepare the upload; refuse an offline-backend release
    unless ``allow_offline`` (its answers are templates, no model saw the images)."""
    from .card import fill_repo_id, is_offline_card

    folder = Path(folder)
    if not (folder / "README.md").is_file() or not (folder / "data").is_dir():
        raise ReleaseError(
            f"{folder} is not a release folder (no README.md and data/): "
            "run `dermasynth package RUN --out DIR` first"
        )
    check_repo_id(repo_id)
    card = (folder / "README.md").read_text(encoding="utf-8")
    plan = PushPlan(folder, repo_id, release_files(folder), fill_repo_id(card, repo_id), False)
    if is_offline_card(card):
        plan.offline = True
        refusal = (
            f"{folder} was made with the offline backend (template answers, no model saw the "
            "images): not pushed; pass --allow-offline to publish it anyway"
        )
        if not allow_offline:
            raise ReleaseError(refusal)
    return plan


def transient(exc: BaseException) -> bool:
    """Worth another try: a 5xx/429/408 answer, a dropped or refused connection, a timeout."""
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return status in RETRY_STATUS
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    # the HTTP client huggingface_hub talks through: httpx2 (hub 2.x), httpx (1.x), requests
    # (0.x); whichever it is, it is imported by now
    for module, names in _TRANSPORT_ERRORS:
        loaded = sys.modules.get(module)
        kinds = tuple(getattr(loaded, name) for name in names if hasattr(loaded, name))
        if kinds and isinstance(exc, kinds):
            return True
    return False


def _one_line(exc: BaseException, token: str | None) -> str:
    from .engine import redact  # the engine is heavy: only on this error path

    lines = str(exc).strip().splitlines()
    text = redact(lines[0] if lines else type(exc).__name__)
    if token:
        text = text.replace(token, "[redacted]")
    return text


def with_retries(
    call: Callable[[], Any],
    *,
    retries: int,
    delay: float,
    token: str | None = None,
    what: str = "upload",
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, str, float], None] | None = None,
) -> tuple[Any, int]:
    """``call()`` with up to ``retries`` more tries after a transient error, waiting ``delay``,
    then twice as long each time (at most 60 s). Returns (result, attempts made). A 401/403 is a
    `ReleaseError` (the token); any other Hub error, or a transient one that outlasts the
    retries, is `PushFailed` with one redacted line."""
    from huggingface_hub.errors import HfHubHTTPError

    attempt = 0
    while True:
        attempt += 1
        try:
            return call(), attempt
        except Exception as exc:  # noqa: BLE001 - classified below, never shown as a traceback
            status = getattr(getattr(exc, "response", None), "status_code", None)
            text = _one_line(exc, token)
            if isinstance(exc, HfHubHTTPError) and status in (401, 403):
                raise ReleaseError(f"the Hub refused the token ({status}): {text}") from None
            if not transient(exc):
                raise PushFailed(f"{what} failed: {text}") from None
            if attempt > retries:
                tries = f"{attempt} {'try' if attempt == 1 else 'tries'}"
                raise PushFailed(f"{what} failed after {tries}: {text}") from None
            wait = min(60.0, delay * 2 ** (attempt - 1))
            if on_retry is not None:
                on_retry(attempt, text, wait)
            sleep(wait)


def push_release(
    plan: PushPlan,
    *,
    private: bool = False,
    message: str = "DermaSynth release",
    retries: int = 5,
    retry_delay: float = 2.0,
    on_retry: Callable[[int, str, float], None] | None = None,
) -> PushResult:
    """Create the dataset repo if needed and upload the release in one commit, the card naming
    the real repo id. Files the Hub already holds are not sent again on a retry."""
    from huggingface_hub import CommitOperationAdd, HfApi, get_token

    token = get_token()
    if not token:
        raise ReleaseError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    api = HfApi(token=token)
    repo_id, folder = plan.repo_id, plan.folder

    def create() -> Any:
        return api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)

    def commit() -> Any:
        operations = [
            CommitOperationAdd(path_in_repo=name, path_or_fileobj=os.fspath(folder / name))
            for name, _ in plan.files
            if name != "README.md"
        ]
        operations.append(CommitOperationAdd("README.md", plan.card.encode("utf-8")))
        return api.create_commit(
            repo_id=repo_id, repo_type="dataset", operations=operations, commit_message=message
        )

    kw = {"retries": retries, "delay": retry_delay, "token": token, "on_retry": on_retry}
    url, first = with_retries(create, what="creating the repo", **kw)
    done, second = with_retries(commit, what="upload", **kw)
    return PushResult(
        url=str(url),
        commit=str(getattr(done, "oid", done)),
        files=len(plan.files),
        total=plan.total,
        attempts=first + second - 1,
    )
