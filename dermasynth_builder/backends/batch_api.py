"""The batch capability: the few calls a backend with a batch job API implements.

The runner (``dermasynth_builder.batch``) owns everything else: the job ledger, rounds,
retries, the exactly-once merge. So a provider only turns calls into input lines and jobs,
and results back into ``CallResult``s. Every method that talks to the provider raises
``TransientError`` for what is worth retrying (429, 5xx, timeouts, dropped connections; with
the server's ``retry_after`` when it gave one) and ``FinalError`` for what is not; the runner
backs off and retries the transient ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..images import PreparedImage
from .base import Call, CallResult

# Job states, in the Gemini API's words (the runner and ``dermasynth status`` use them).
CANCELLED = "JOB_STATE_CANCELLED"
TERMINAL = frozenset(
    {
        "JOB_STATE_SUCCEEDED",
        "JOB_STATE_FAILED",
        CANCELLED,
        "JOB_STATE_EXPIRED",
        "JOB_STATE_PARTIALLY_SUCCEEDED",
    }
)


@dataclass(slots=True)
class RemoteJob:
    """A job as the provider last described it."""

    name: str
    state: str
    display_name: str | None = None
    input_file: str | None = None
    handle: Any = field(default=None, repr=False)  # the provider's own object, for download()

    @property
    def done(self) -> bool:
        return self.state in TERMINAL


class BatchAPI(ABC):
    """A provider's batch jobs: submit, find, poll, download, cancel (and the line format)."""

    #: the largest job (in bytes of input lines) sent inline, and the largest input file
    inline_limit: int
    file_limit: int

    @abstractmethod
    def encode(self, call: Call, image: PreparedImage) -> str:
        """One input line (JSON, no newline) asking the call, keyed by ``call.call_id``."""

    @abstractmethod
    def submit(self, path: Path, display_name: str, inline: bool) -> RemoteJob:
        """Create one job from the input lines in ``path``. A transient failure may still have
        created it server-side: the runner looks it up with ``find`` before trying again."""

    @abstractmethod
    def find(self, display_names: Collection[str]) -> list[RemoteJob]:
        """The provider's jobs with one of these display names, newest first."""

    @abstractmethod
    def poll(self, name: str) -> RemoteJob:
        """The job's current state (and, once done, what ``download`` needs)."""

    @abstractmethod
    def download(self, job: RemoteJob, into: Path) -> Iterator[tuple[str | None, Any]]:
        """The finished job's items as (key, raw item). All network I/O happens before this
        returns (``into`` may hold the downloaded file), so a retry redoes it whole."""

    @abstractmethod
    def outcome(self, call: Call, item: Any) -> CallResult | Exception:
        """One raw item as the call's result, or the ContentError, TransientError or
        FinalError it amounts to (no network)."""

    @abstractmethod
    def cancel(self, name: str) -> None:
        """Ask the provider to stop the job (its finished items may still be delivered)."""
