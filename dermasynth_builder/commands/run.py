"""``dermasynth run`` (every step from a TOML file) and ``dermasynth demo`` (the bundled sample,
offline, end to end, then loaded back with stock ``datasets``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from pydantic import ValidationError

from ..options import GenerateOptions
from ..paths import sample_root
from ..sources import SOURCES
from .common import UsageFailure, err, out, read_source, warn
from .generate import run_generate

if TYPE_CHECKING:  # the pipeline reads curate's config: imported when a run starts
    from ..pipeline import RunConfig


def _hooks(config: RunConfig) -> dict:
    from ..curate import curate as run_curate
    from ..package import package as run_package
    from ..pipeline import curate_config
    from ..plan import PlanConflictError, make_plan

    def plan() -> None:
        try:
            summary = make_plan(
                list(config.sources.items()),
                config.run,
                seed=config.plan.seed,
                limit=config.plan.limit,
                recipe=config.plan.recipe,
                reader=lambda name, root: read_source(name, root),
                fresh=config.plan.fresh,
                include_official_test=config.plan.include_official_test,
            )
        except PlanConflictError as exc:  # said in the config's words, not plan's flags
            words = str(exc).replace("plan into a new --out", 'use a new run = "..."')
            raise PlanConflictError(
                words.replace("add --fresh", "set fresh = true under [plan]")
            ) from None
        if not summary.total_requests:
            raise PlanConflictError("the plan has no requests: no source gave a usable image")
        out.print(
            f"plan: {summary.total_requests:,} requests for "
            f"{sum(summary.records.values()):,} images"
        )

    def curate() -> None:
        summary = run_curate(config.run, curate_config(config))
        out.print(
            f"curate: {summary.accepted:,} pairs kept, {sum(summary.rejected.values()):,} rejected"
        )

    def package() -> None:
        p = config.package
        release = run_package(
            config.run,
            p.out,
            max_image_side=p.max_image_side or None,
            test_fraction=p.test_fraction,
            num_proc=p.num_proc,
            max_shard_size=p.max_shard_size,
        )
        rows = sum(sum(s.values()) for s in release.rows.values())
        pairs = sum(release.pairs.values())
        out.print(
            f"package: {rows:,} images ({pairs:,} pairs) in {len(release.rows)} configs -> {p.out}"
        )

    return {
        "plan": plan,
        "generate": lambda: run_generate(config.run, config.generate),
        "curate": curate,
        "package": package,
    }


def execute(config: RunConfig) -> int:
    """Run the pipeline; the exit code is 1 when some requests failed for good."""
    from ..pipeline import run_pipeline

    def report(step: str, status: str, seconds: float) -> None:
        out.print(f"[bold]{step}[/]: {status}" + (f" ({seconds:,.1f} s)" if seconds else ""))

    from ..run import RunFolder, RunFolderError

    try:
        run_pipeline(config, _hooks(config), report)
    except RunFolderError as exc:
        raise UsageFailure(str(exc)) from None
    info = RunFolder(config.run).info()
    failures = info.get("generation", {}).get("counts", {}).get("failures", 0)
    return 1 if failures else 0


@click.command("run")
@click.argument("config_path", metavar="CONFIG.toml", type=click.Path(exists=True, path_type=Path))
def run_command(config_path: Path) -> None:
    """Run plan, generate, curate and package from CONFIG.toml, skipping finished steps.

    Rerun the same command after an interruption: finished steps are skipped and generate
    resumes where it stopped. Relative paths are relative to the config file.

    \b
    Example CONFIG.toml:
      run = "runs/first"                     # the run folder
      [sources]
      pad_ufes_20 = "~/data/PAD-UFES-20"
      scin = "~/data/scin"
      [plan]
      seed = 0
      limit = 500                            # images per source (omit for all)
      fresh = false                          # true: move another plan's results aside
      [generate]
      backend = "gemini"                     # or "offline"
      model = "gemini-3.1-flash-lite"
      rpm = 2000
      [package]
      out = "dermasynth"
      test_fraction = 0.1
    """
    from ..pipeline import RunConfig

    try:
        config = RunConfig.load(config_path)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise UsageFailure(f"{config_path}: {where}: {first['msg']}") from None
    except (OSError, ValueError) as exc:
        raise UsageFailure(f"{config_path}: {exc}") from None
    from ..pipeline import config_problems, config_warnings

    problems = config_problems(config)
    if problems:
        for problem in problems[1:]:
            err.print(f"error: {config_path}: {problem}")
        raise UsageFailure(f"{config_path}: {problems[0]}")
    for warning in config_warnings(config):
        warn(f"{config_path}: {warning}")
    sys.exit(execute(config))


@click.command()
@click.option(
    "--out",
    "dest",
    type=click.Path(path_type=Path),
    default=Path("dermasynth"),
    show_default=True,
    help="Where to write the release folder.",
)
@click.option(
    "--run",
    "run_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="The run folder (default: OUT-run beside the release).",
)
def demo(dest: Path, run_dir: Path | None) -> None:
    """Everything on the bundled sample, offline: plan, generate (offline backend), curate,
    package into ./dermasynth, then load every config with stock `datasets` and show a pair."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before `datasets` is imported
    from ..pipeline import RunConfig

    dest = dest.expanduser()
    if dest.resolve() == Path.cwd().resolve() or not dest.resolve().name:
        raise UsageFailure(f"--out {dest}: name a folder for the release, e.g. --out dermasynth")
    for path in (dest, run_dir):
        if path is not None and path.exists() and not path.is_dir():
            raise UsageFailure(f"{path} is a file, not a folder: choose another path")
    dest = dest.resolve()
    from ..release_folder import check_out
    from ..run import RunFolderError

    try:
        check_out(dest)  # before any work: a folder we may not fill is refused at once
    except RunFolderError as exc:
        raise UsageFailure(str(exc)) from None

    config = RunConfig(
        run=run_dir or dest.with_name(dest.name + "-run"),
        sources={name: sample_root(name) for name in SOURCES},
        generate=GenerateOptions(backend="offline"),
        package={"out": dest, "test_fraction": 0.2},
    )
    code = execute(config)
    _show(dest)
    sys.exit(code)


def _show(dest: Path) -> None:
    import datasets
    from rich.table import Table

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    table = Table(
        "config",
        "splits",
        "rows",
        "image",
        title=f"load_dataset({str(dest)!r}, config)",
        title_justify="left",
    )
    example = None
    for name in datasets.get_dataset_config_names(str(dest)):
        ds = datasets.load_dataset(str(dest), name)
        first = ds["train"][0]
        example = example or first
        image = first["images"][0]  # one row per image; the image is stored once
        table.add_row(
            name,
            ", ".join(ds),
            f"{sum(len(s) for s in ds.values()):,}",
            f"{type(image).__name__} {image.size}",
        )
    out.print(table)
    if example:
        pair = example["pairs"][0]
        note = ""
        if pair["model"] == "offline":
            note = " [yellow]offline backend: template text from the metadata, no model saw it[/]"
        out.print(
            f"[bold]example pair[/] ({example['source']}, {example['image_id']}, "
            f"{pair['question_type']}):{note}"
        )
        out.print(f"  Q: {pair['question']}")
        out.print(f"  A: {pair['answer']}")
    out.print(f"Load it yourself: load_dataset({str(dest)!r}, 'scin')")
