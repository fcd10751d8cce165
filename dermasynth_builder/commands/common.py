"""What every verb shares: the consoles, the exit-code convention and progress bars."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ..sources import ReadResult, SourceFormatError, get_source

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class UsageFailure(click.ClickException):
    """A bad input the user must fix: printed as one line, exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        err.print(Text.assemble(("error: ", "bold red"), self.format_message()))


def warn(message: str) -> None:
    """One warning line on stderr."""
    err.print(Text.assemble(("warning: ", "bold yellow"), message))


@contextmanager
def progress_bar(label: str, total: int | None = None) -> Iterator[Callable[..., None]]:
    """A transient progress bar on stderr (silent when stderr is not a terminal).

    Yields ``update(done, total=None)``.
    """
    if not err.is_terminal:
        yield lambda done, total=None: None
        return
    columns = (
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(label, total=total)

        def update(done: int, total: int | None = None) -> None:
            if total is not None:
                progress.update(task, completed=done, total=total)
            else:
                progress.update(task, completed=done)

        yield update


def read_source(name: str, root: Path, show: bool = True) -> ReadResult:
    """Read one source with a progress bar; a broken folder becomes a usage error (exit 2)."""
    try:
        if not show:
            return get_source(name).read(root)
        with progress_bar(f"reading {name}") as update:
            return get_source(name).read(root, progress=update)
    except SourceFormatError as exc:
        message = str(exc)
        message = message if message.startswith(f"{name}:") else f"{name}: {message}"
        raise UsageFailure(message) from None


def require_key(backend: type) -> None:
    """A backend that needs an API key gets it checked before any folder is written."""
    import os

    if backend.needs_key and not any(os.environ.get(k) for k in backend.key_env):
        raise UsageFailure(
            f"--backend {backend.name} needs an API key: set {' or '.join(backend.key_env)} "
            "(or use --backend offline for a dry run)"
        )
