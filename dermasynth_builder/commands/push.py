"""``dermasynth push``: upload a release folder to the Hugging Face Hub."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from .common import UsageFailure, err, out


@click.command()
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--repo-id", required=True, metavar="ORG/NAME", help="The dataset repo on the Hub.")
@click.option("--private", is_flag=True, help="Create the repo as private.")
@click.option("--dry-run", is_flag=True, help="List what would be uploaded; upload nothing.")
@click.option("--message", default="DermaSynth release", show_default=True, help="Commit message.")
@click.option(
    "--allow-offline",
    is_flag=True,
    help="Push a release whose pairs the offline backend wrote (template text; refused otherwise).",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Further tries after a transient Hub error (5xx, 429, dropped connection).",
)
@click.option(
    "--retry-delay",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Seconds before the first retry; doubled each time (at most 60).",
)
def push(
    folder: Path,
    repo_id: str,
    private: bool,
    dry_run: bool,
    message: str,
    allow_offline: bool,
    retries: int,
    retry_delay: float,
) -> None:
    """Upload the release folder DIR (from `dermasynth package`) to a Hub dataset repo.

    Creates the repo if needed, then uploads with huggingface_hub (files the Hub already holds
    are not sent again). Transient Hub errors are retried with backoff. The token comes from
    HF_TOKEN or the login cache (`hf auth login`) and is never printed. HF_ENDPOINT selects
    another Hub. The uploaded card names ORG/NAME in its load calls (the local README is left as
    it is). A release made with the offline backend is refused unless --allow-offline is given:
    its answers are templates, not model output.
    """
    from huggingface_hub import constants

    from ..release import ReleaseError
    from ..release_push import PushFailed, push_plan, push_release

    try:
        plan = push_plan(folder, repo_id, allow_offline=allow_offline or dry_run)
    except ReleaseError as exc:
        raise UsageFailure(str(exc)) from None
    if dry_run:
        where = f"{constants.ENDPOINT}/datasets/{repo_id}" + (" (private)" if private else "")
        table = Table("file", "bytes", title=f"would upload to {where}", title_justify="left")
        for name, size in plan.files:
            table.add_row(name, f"{size:,}")
        out.print(table)
        out.print(
            f"{len(plan.files)} files, {plan.total / 2**20:,.1f} MiB; dry run: nothing uploaded"
        )
        if plan.offline and not allow_offline:
            err.print(
                "warning: made with the offline backend (template answers): a real push is "
                "refused unless --allow-offline is given"
            )
        return

    def retrying(attempt: int, text: str, wait: float) -> None:
        err.print(f"transient Hub error (try {attempt}): {text}; retrying in {wait:.1f} s")

    try:
        result = push_release(
            plan,
            private=private,
            message=message,
            retries=retries,
            retry_delay=retry_delay,
            on_retry=retrying,
        )
    except ReleaseError as exc:
        raise UsageFailure(str(exc)) from None
    except PushFailed as exc:
        err.print(f"error: {exc}")
        sys.exit(1)
    out.print(f"pushed {result.files} files ({result.total / 2**20:,.1f} MiB) to {result.url}")
    out.print(f"commit: {result.commit}")
    out.print(f'load it: load_dataset("{repo_id}")  # config "all"; or name one source')
