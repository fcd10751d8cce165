"""``dermasynth import-original``: the published DermaSynth pairs as a run folder with images."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from .common import UsageFailure, out, read_source
from .plan import parse_sources


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--source",
    "source_args",
    multiple=True,
    metavar="NAME=ROOT",
    help="A source and its folder, to find the images in; repeat for several sources.",
)
@click.option(
    "--out",
    "run",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The run folder to write (created if needed; not one made by `plan`).",
)
def import_original(file: Path, source_args: tuple[str, ...], run: Path) -> None:
    """Import the published DermaSynth pairs (text only) and join them to their images.

    FILE is JSON (a list of records, a dict of lists keyed by dataset name such as
    derm12345, bcn20000, pad-ufes-20, scin, scin_clinical, hiba, or {"data": [...]}),
    JSON Lines, Parquet (the Hub release) or CSV. Fields are found by name: an image id
    (image_id, image, img_id, isic_id, file_name, ...) or image_path, and question/answer
    pairs (q1_general_question + q1_general_response, question + answer, instruction +
    output, prompt + response, ...). JSON answers ({"answer": ...}, fenced or not) are
    unwrapped; {"question", "answer"} answers become self-instruct pairs.

    Ids are matched against the images read from each --source by id, file name (with or
    without extension) or image path; a record naming its dataset is looked up there only.
    Writes RUN/run.json, records.jsonl, requests.jsonl and responses.jsonl, ready for
    `dermasynth curate RUN`; pairs without an image go to RUN/unmatched.jsonl with the
    reason. The same inputs give byte-identical files. Exit code 1 if any pair is unmatched.

    \b
    Example:
      dermasynth import-original derma_synth_92k.json --source derm12345=~/data/derm12345 \\
          --source pad_ufes_20=~/data/PAD-UFES-20 --out runs/original
    """  # fmt: skip
    from ..importer import UNMATCHED, ImportInputError, import_pairs

    sources = parse_sources(source_args, sample=None)
    try:
        summary = import_pairs(file, sources, run, reader=lambda n, root: read_source(n, root))
    except (ImportInputError, OSError, UnicodeDecodeError) as exc:
        raise UsageFailure(f"{file}: {exc}" if str(file) not in str(exc) else str(exc)) from None
    out.print(f"read {file} ({summary.format}): {summary.pairs:,} pairs")
    if summary.moved_aside is not None:
        out.print(f"the earlier import's results were moved to {summary.moved_aside}")
    for layout, n in summary.layouts.most_common(5):
        out.print(f"  {n:,} records: {layout}")
    table = Table("source", "images read", "pairs matched", "images used", "unmatched",
                  title="imported pairs", title_justify="left")  # fmt: skip
    unmatched_by_source: dict[str, int] = {}
    for (source, _), n in summary.unmatched.items():
        unmatched_by_source[source] = unmatched_by_source.get(source, 0) + n
    names = list(summary.read) + sorted(set(unmatched_by_source) - set(summary.read))
    for name in names:
        read = f"{summary.read[name]:,}" if name in summary.read else "not given"
        table.add_row(name, read, f"{summary.matched[name]:,}", f"{summary.images[name]:,}",
                      f"{unmatched_by_source.get(name, 0):,}")  # fmt: skip
    out.print(table)
    if summary.matched_by:
        how = ", ".join(f"{k} {v:,}" for k, v in sorted(summary.matched_by.items()))
        out.print(f"matched by: {how}")
    if summary.unmatched:
        reasons = Table("source", "reason", "pairs", title="unmatched", title_justify="left")
        for (source, reason), n in sorted(summary.unmatched.items(), key=lambda kv: -kv[1]):
            reasons.add_row(source, reason, f"{n:,}")
        out.print(reasons)
    out.print(
        f"[bold]{summary.total_matched:,}[/] of {summary.pairs:,} pairs imported -> {run}; "
        f"{summary.total_unmatched:,} unmatched -> {run / UNMATCHED}"
    )
    if summary.total_unmatched:
        sys.exit(1)
