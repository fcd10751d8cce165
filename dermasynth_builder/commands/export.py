"""``dermasynth export``: a release as LLaVA or ShareGPT (LLaMA-Factory) JSON with image files."""

from __future__ import annotations

from pathlib import Path

import click

from .common import UsageFailure, out


@click.command()
@click.argument("release", type=click.Path(path_type=Path))
@click.option(
    "--format", "fmt", required=True, type=click.Choice(["llava", "sharegpt"]), help="Layout."
)
@click.option(
    "--out",
    "dest",
    required=True,
    type=click.Path(path_type=Path),
    help="A new or empty folder for the JSON and the images.",
)
@click.option(
    "--per",
    type=click.Choice(["image", "pair"]),
    default="image",
    show_default=True,
    help="One conversation per image (all its pairs) or one per pair.",
)
def export(release: Path, fmt: str, dest: Path, per: str) -> None:
    """Export the release folder RELEASE (from `dermasynth package`) for other trainers.

    Writes DIR/<split>.json and DIR/images/<source>/<image_id>.<ext> (each image once). llava:
    [{"id", "image", "conversations": [{"from": "human", "value": "<image>\\n..."}, ...]}].
    sharegpt: [{"messages": [{"role", "content"}], "images": [...]}] plus the
    dataset_info.json LLaMA-Factory reads (dataset names dermasynth_<split>).
    """
    from ..export import export as run_export
    from ..run import RunFolderError

    try:
        summary = run_export(release, fmt, dest, per=per)
    except RunFolderError as exc:
        raise UsageFailure(str(exc)) from None
    for split, n in summary.conversations.items():
        out.print(f"{split}: {n:,} conversations, {summary.images[split]:,} images")
    out.print(f"{fmt} export: {dest} ({', '.join(summary.files)})")
