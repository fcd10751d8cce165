"""``dermasynth eval``: score a model on a run's held-out labelled images; compare eval folders."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from ..backends import BACKENDS, BackendConfigError
from ..options import DEFAULT_MODEL
from .common import UsageFailure, err, generate_options, progress_bar
from .common import out as console


@click.command("eval")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="The eval folder to write.")
@click.option(
    "--compare", is_flag=True, help="Print earlier eval folders (PATHS) side by side instead."
)
@click.option(
    "--backend",
    type=click.Choice(list(BACKENDS)),
    default="gemini",
    show_default=True,
    help="Who answers: gemini, openai (any OpenAI-compatible server: vLLM, Ollama, a "
    "fine-tuned model), or offline (no model: scores at chance, for dry runs and tests).",
)
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Model name.")
@click.option(
    "--thinking",
    help="Thinking control (as for generate): a level, a token budget, or 'model'; "
    "default: the model profile's.",
)
@click.option(
    "--media-resolution",
    type=click.Choice(["low", "medium", "high", "ultra_high"]),
    help="Gemini 3.x: tokens per image; default: the model profile's.",
)
@click.option("--base-url", help="Server URL for --backend openai, e.g. http://127.0.0.1:8000/v1.")
@click.option("--seed", type=int, default=0, show_default=True, help="Benchmark seed.")
@click.option(
    "--options",
    "n_options",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Diagnosis options per question, the label and distractors from the source's labels "
    "(0: every label of the source).",
)
@click.option(
    "--release",
    type=click.Path(path_type=Path),
    help="A release folder whose test split joins the benchmark (default: the release "
    "`package` last wrote from RUN, if it is still there).",
)
@click.option("--no-release", is_flag=True, help="Leave every release's test split out.")
@click.option(
    "--test-fraction",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Without the release at hand: the --test-fraction you packaged with (those groups "
    "join the benchmark).",
)
@click.option(
    "--split-seed", type=int, default=0, show_default=True, help="The --split-seed of package."
)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many images per source.")
@click.option(
    "--open-question",
    is_flag=True,
    help="Also ask one open question per image, scored with the agreement scorer.",
)
@click.option("--rpm", type=float, help="Requests-per-minute limit (your quota).")
@click.option("--tpm", type=float, help="Tokens-per-minute limit (your quota).")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Calls in flight at once.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=6,
    show_default=True,
    help="Attempts per question before it counts as failed.",
)
@click.option("--retry-failed", is_flag=True, help="Ask the questions in failures.jsonl again.")
@click.option(
    "--temperature",
    type=float,
    default=0.0,
    show_default=True,
    help="Sampling temperature (0: the most reproducible answers).",
)
@click.option(
    "--max-output-tokens",
    type=click.IntRange(min=16),
    default=1024,
    show_default=True,
    help="Cap on the tokens of one answer.",
)
@click.option(
    "--max-image-side",
    type=click.IntRange(min=64),
    default=768,
    show_default=True,
    help="Downscale images past this longest side before sending them.",
)
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds per call.")
@click.option(
    "--retry-base-delay",
    type=float,
    default=1.0,
    show_default=True,
    help="First backoff delay in seconds (doubles per retry, with jitter).",
)
def eval_command(
    paths: tuple[Path, ...],
    out: Path | None,
    compare: bool,
    seed: int,
    n_options: int,
    test_fraction: float,
    split_seed: int,
    limit: int | None,
    open_question: bool,
    release: Path | None,
    no_release: bool,
    **generate: object,
) -> None:
    """Score a model on RUN's held-out labelled images into the eval folder --out.

    The benchmark is the official test images `plan` left out plus the release's test split
    (of the release `package` wrote from RUN, or --release), asked as multiple choice
    (diagnosis, with options from the source's labels, shuffled) and benign / malignant /
    indeterminate, seeded and reproducible. Prompts carry no label. Any
    backend answers through the generate engine (same limits, retries, resume): stop and rerun
    at will. Writes eval.json, eval.md and confusion figures.

    \b
    Examples:
      dermasynth eval runs/first --out evals/gemini-flash
      dermasynth eval runs/first --out evals/dermatollama --backend openai \\
          --base-url http://127.0.0.1:8000/v1 --model dermatollama
      dermasynth eval --compare evals/gemini-flash evals/base evals/dermatollama
    """
    from ..eval import BenchmarkOptions, EvalError, compare_rows, run_eval
    from ..eval.report import OFF_FORM
    from ..run import RunFolderError

    if compare:
        if not paths:
            raise UsageFailure("--compare needs one or more eval folders")
        try:
            header, rows = compare_rows(list(paths))
        except (EvalError, KeyError, ValueError) as exc:
            raise UsageFailure(str(exc)) from None
        table = Table(title="eval", title_justify="left")
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i < 2 else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    if len(paths) != 1 or out is None:
        raise UsageFailure("usage: dermasynth eval RUN --out EVAL  (or --compare EVAL ...)")
    options = generate_options(generate)
    bench = BenchmarkOptions(
        seed=seed,
        n_options=n_options,
        test_fraction=test_fraction,
        split_seed=split_seed,
        limit=limit,
        open_question=open_question,
        release="" if no_release else (str(release) if release else None),
    )
    if open_question:
        try:
            from ..agreement import score_answer  # noqa: F401
        except ImportError:
            raise UsageFailure("--open-question needs dermasynth_builder.agreement") from None
    with progress_bar("evaluating") as update:
        try:
            report = run_eval(
                paths[0],
                out,
                bench,
                options,
                on_progress=lambda p: update(p.planned - p.remaining, p.planned),
            )
        except (EvalError, RunFolderError, BackendConfigError) as exc:
            raise UsageFailure(str(exc)) from None
    console.print(_results_table(report))
    err.print(f"wrote {out / 'eval.md'} and {out / 'eval.json'}")
    if report.get("off_form"):
        err.print(OFF_FORM.format(n=report["off_form"]).replace("**", ""))
    failed = sum(r["failed"] for r in report["results"])
    if failed:
        err.print(f"{failed} questions got no answer: rerun with --retry-failed to ask them again")
        sys.exit(1)


def _results_table(report: dict) -> Table:
    table = Table(title=f"eval: {report['model']} ({report['backend']})", title_justify="left")
    for name in ("source", "task", "n", "accuracy", "macro-F1", "chance", "unparsed", "failed"):
        table.add_column(name, justify="left" if name in ("source", "task") else "right")
    for r in report["results"]:
        table.add_row(
            r["source"],
            r["task"],
            str(r["n"]),
            f"{100 * r['accuracy']:.1f}%",
            f"{r['macro_f1']:.3f}",
            f"{100 * r['chance']:.1f}%",
            str(r["unparsed"]),
            str(r["failed"]),
        )
    return table
