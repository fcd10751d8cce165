"""``dermasynth package``: the Parquet release folder (one config per source) and its card."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from .common import UsageFailure, out


def _shard_size(value: str) -> str:
    from ..release import check_shard_size

    try:
        return check_shard_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "dest",
    required=True,
    type=click.Path(path_type=Path),
    help="The release folder to write (e.g. ./dermasynth).",
)
@click.option(
    "--max-image-side",
    type=click.IntRange(min=0),
    default=1024,
    show_default=True,
    help="Re-encode larger images to this longest side; 0 keeps the original bytes.",
)
@click.option(
    "--test-fraction",
    type=click.FloatRange(0, 0.9),
    default=0.0,
    show_default=True,
    help="Share of patients/lesions/cases put in a test split (grouped: no leaks).",
)
@click.option(
    "--num-proc",
    type=click.IntRange(min=1),
    default=None,
    help="Processes for building (images are read and encoded in parallel).",
)
@click.option(
    "--max-shard-size",
    default="500MB",
    show_default=True,
    callback=lambda ctx, param, value: _shard_size(value),
    help="Largest Parquet shard: a number of bytes with a unit (500MB, 1GB, 2GiB).",
)
def package(
    run: Path,
    dest: Path,
    max_image_side: int,
    test_fraction: float,
    num_proc: int | None,
    max_shard_size: str,
) -> None:
    """Package RUN/pairs.jsonl with their images as a Hugging Face dataset folder.

    Runs the hub_dataset builder per source and writes
    DIR/data/<config>/<split>-XXXXX-of-YYYYY.parquet plus DIR/README.md (the card, with
    YAML configs: one per source and `all`, the default). Stock `datasets` loads it offline:
    load_dataset("DIR", "scin").
    """
    from ..package import package as run_package
    from ..run import RunFolderError

    try:
        release = run_package(
            run,
            dest,
            max_image_side=max_image_side or None,
            test_fraction=test_fraction,
            num_proc=num_proc,
            max_shard_size=max_shard_size,
        )
    except RunFolderError as exc:
        raise UsageFailure(str(exc)) from None
    table = Table("config", "split", "rows", "files", title="release", title_justify="left")
    for config, splits in release.rows.items():
        for split, rows in splits.items():
            files = [f for f in release.files.get(config, []) if f.split("/")[-1].startswith(split)]
            table.add_row(config, split, f"{rows:,}", str(len(files)))
    out.print(table)
    out.print(f"release: {dest} (card: {dest / 'README.md'})")
