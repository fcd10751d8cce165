"""``dermasynth curate``: filter and flag the generated pairs, and write the report."""

from __future__ import annotations

from pathlib import Path

import click
from pydantic import ValidationError
from rich.table import Table

from .common import UsageFailure, out


@click.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, path_type=Path),
    help="A YAML file overriding thresholds and word lists (see CurateConfig).",
)
@click.option("--no-figures", is_flag=True, help="Skip the PNG figures (faster).")
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="Processes for the per-pair checks, beside the main one (0: none). Default: one per "
    "core, up to 4, when there are 5,000 responses or more. The files do not depend on it.",
)
def curate(run: Path, config_path: Path | None, no_figures: bool, workers: int | None) -> None:
    """Validate, filter and flag RUN/responses.jsonl; never calls a model.

    Writes RUN/pairs.jsonl (accepted), RUN/rejected.jsonl (each with the filter and reason),
    RUN/report.json, RUN/report.md and RUN/figures/*.png. Filters: schema, length, refusal,
    leakage (answers citing their context), grounding (case facts the question does not
    give), reveals_diagnosis, judge (after `dermasynth judge`), duplicate answers for the same
    image, and self-instruct novelty (ROUGE-L >= 0.7 against kept model-written questions of
    the same source). Flags: label_consistent and malignancy_consistent. Reruns give the same
    files. --config keys: the fields of CurateConfig (README, "Curating").
    """
    from ..curate import curate as run_curate  # matplotlib and friends: only when curating
    from ..curate.config import CurateConfig
    from ..run import RunFolderError

    try:
        config = CurateConfig.load(config_path)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        raise UsageFailure(f"{config_path}: {where}: {first['msg']}") from None
    except (ValueError, TypeError) as exc:  # not YAML, or not a mapping of keys
        raise UsageFailure(f"{config_path}: {str(exc).splitlines()[0]}") from None
    try:
        summary = run_curate(run, config, figures=not no_figures, workers=workers)
    except (RunFolderError, OSError) as exc:
        raise UsageFailure(str(exc).splitlines()[0]) from None
    table = Table("filter", "reason", "rejected", title="rejections", title_justify="left")
    for (name, reason), n in sorted(summary.rejected.items(), key=lambda kv: -kv[1]):
        table.add_row(name, reason, f"{n:,}")
    if summary.rejected:
        out.print(table)
    out.print(
        f"{summary.responses:,} responses: [bold]{summary.accepted:,}[/] pairs kept, "
        f"{sum(summary.rejected.values()):,} rejected -> {run / 'pairs.jsonl'}"
    )
    out.print(f"report: {run / 'report.md'}")
