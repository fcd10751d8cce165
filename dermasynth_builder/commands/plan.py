"""``dermasynth plan``: choose the questions for every image and write the run folder."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from ..paths import sample_root
from ..records import POLICY_SKIPS
from ..sources import SOURCES
from ..sources.registry import unknown_source
from .common import UsageFailure, out, progress_bar, read_source, warn


def parse_sources(values: tuple[str, ...], sample: bool | None) -> list[tuple[str, Path]]:
    """``NAME=ROOT`` pairs (or every bundled sample) as (name, path), in the order given.
    ``sample`` None: the verb has no --sample."""
    if sample:
        if values:
            raise click.UsageError("--sample plans the bundled sample: give no --source")
        return [(name, sample_root(name)) for name in SOURCES]
    if not values:
        hint = "" if sample is None else " (or --sample)"
        raise click.UsageError(f"give at least one --source NAME=ROOT{hint}")
    pairs: list[tuple[str, Path]] = []
    for value in values:
        name, sep, root = value.partition("=")
        if not sep or not root:
            raise click.UsageError(f"--source {value!r}: expected NAME=ROOT")
        if name not in SOURCES:
            raise click.UsageError(f"--source {value!r}: {unknown_source(name)}")
        if any(name == seen for seen, _ in pairs):
            raise click.UsageError(f"--source {name} given twice")
        pairs.append((name, Path(root).expanduser()))
    return pairs


@click.command()
@click.option(
    "--source",
    "source_args",
    multiple=True,
    metavar="NAME=ROOT",
    help="A source and its folder; repeat for several sources.",
)
@click.option("--sample", is_flag=True, help="Plan the five bundled sample sources.")
@click.option(
    "--out",
    "run",
    required=True,
    type=click.Path(path_type=Path),
    help="The run folder to write (created if needed).",
)
@click.option("--seed", default=0, show_default=True, help="Seed for question choices.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="At most N images per source (a seeded sample, stable as images come and go).",
)
@click.option(
    "--recipe",
    default="default",
    show_default=True,
    help="Recipe in templates/recipes: 'default' (one general + one source question "
    "per image, as in the paper) or 'caption' (adds a dense caption).",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="If RUN holds results of a different plan, move them to RUN/replaced-<time>/ "
    "and start over (without it, planning over them refuses).",
)
@click.option(
    "--include-official-test",
    is_flag=True,
    help="Also plan the images of a source's official test split (DERM12345, BCN20000). "
    "Without it they are left out of training data and their records go to RUN/heldout.jsonl.",
)
def plan(
    source_args: tuple[str, ...],
    sample: bool,
    run: Path,
    seed: int,
    limit: int | None,
    recipe: str,
    fresh: bool,
    include_official_test: bool,
) -> None:
    """Plan the requests: read each source, pick questions per image, render the prompts.

    Writes RUN/run.json, RUN/records.jsonl, RUN/heldout.jsonl, RUN/skipped.jsonl and
    RUN/requests.jsonl. The same inputs give byte-identical files; request ids are stable hashes.
    Official test images are left out unless --include-official-test; images without a
    diagnosis label get descriptive questions only.

    \b
    Example:
      dermasynth plan --source pad_ufes_20=~/data/PAD-UFES-20 --source scin=~/data/scin \\
          --out runs/first --limit 500
    """
    from ..plan import make_plan  # the prompt kit (Jinja, YAML banks): only when planning
    from ..prompts import TemplateError
    from ..run import RunFolderError

    sources = parse_sources(source_args, sample)
    with progress_bar("rendering prompts") as update:
        done = 0

        def tick() -> None:
            nonlocal done
            done += 1
            if done % 512 == 0:
                update(done)

        try:
            summary = make_plan(
                sources,
                run,
                seed=seed,
                limit=limit,
                recipe=recipe,
                reader=lambda name, root: read_source(name, root),
                on_record=tick,
                fresh=fresh,
                include_official_test=include_official_test,
            )
        except (TemplateError, RunFolderError) as exc:
            raise UsageFailure(str(exc)) from None
    table = Table(
        "source",
        "bank",
        "question type",
        "task",
        "requests",
        title="planned requests",
        title_justify="left",
    )
    for (source, bank, qtype, task), count in sorted(summary.requests.items()):
        table.add_row(source, bank, qtype, task, str(count))
    out.print(table)
    for name, root in sources:
        if summary.records.get(name) or summary.heldout.get(name):
            continue
        reasons = summary.skip_reasons.get(name) or {}
        top = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common(3))
        warn(
            f"{name}: no usable image ({top or 'no metadata rows'}); are the images unpacked "
            f"under {root}? See {run / 'skipped.jsonl'}"
        )
    for name in summary.records:
        line = f"{name}: {summary.records[name]} images, {summary.skipped[name]} skipped"
        if summary.heldout.get(name):
            line += f", {summary.heldout[name]} official test images left out (heldout.jsonl)"
        if summary.unlabelled.get(name):
            line += f", {summary.unlabelled[name]} unlabelled (descriptive questions only)"
        out.print(line)
    if summary.moved_aside is not None:
        out.print(f"the earlier plan's results were moved to {summary.moved_aside}")
    out.print(f"[bold]{summary.total_requests}[/] requests -> {run / 'requests.jsonl'}")
    if not summary.total_requests:
        raise UsageFailure("the plan has no requests: no source gave a usable image")
    skipped = sum(
        n for reasons in summary.skip_reasons.values() for r, n in reasons.items()
        if r not in POLICY_SKIPS
    )  # fmt: skip
    if skipped:  # exit 1: done, but some items were skipped (a policy skip is not a problem)
        out.print(f"{skipped:,} metadata rows skipped, with reasons: {run / 'skipped.jsonl'}")
        sys.exit(1)
