"""What every verb shares: the consoles, the exit-code convention and progress bars."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource
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

if TYPE_CHECKING:
    from ..options import GenerateOptions

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


def generate_options(values: dict[str, Any], *, check_key: bool = True) -> GenerateOptions:
    """The model options a verb was given (generate, eval, judge), checked before any work:
    values, backend, its API key (``check_key``: before any folder is written) and a model
    name for backends that have no default. Each problem is one line."""
    import os

    from pydantic import ValidationError

    from ..backends import BackendConfigError, backend_class
    from ..options import GenerateOptions

    try:
        options = GenerateOptions(**values)
        backend = backend_class(options.backend)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UsageFailure(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}") from None
    except BackendConfigError as exc:
        raise UsageFailure(str(exc)) from None
    if check_key and backend.needs_key and not any(os.environ.get(k) for k in backend.key_env):
        raise UsageFailure(
            f"--backend {backend.name} needs an API key: set {' or '.join(backend.key_env)} "
            "(or use --backend offline for a dry run)"
        )
    model_source = click.get_current_context().get_parameter_source("model")
    if backend.needs_model and model_source is ParameterSource.DEFAULT:
        raise UsageFailure(
            f"--backend {options.backend} needs --model: the name your server serves"
        )
    return options
