"""``dermasynth judge``: a second model checks every kept pair; curate then rejects by it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..backends import BACKENDS, BackendConfigError
from ..options import DEFAULT_MODEL
from .common import UsageFailure, err, generate_options, out, progress_bar


@click.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out",
    "judge_dir",
    type=click.Path(path_type=Path),
    help="The judge's own run folder (default: RUN/judge).",
)
@click.option(
    "--backend",
    type=click.Choice(list(BACKENDS)),
    default="gemini",
    show_default=True,
    help="Who judges: gemini, openai (an OpenAI-compatible server), or offline (no model: "
    "no verdicts, for dry runs and tests).",
)
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="The judge model.")
@click.option("--base-url", help="Server URL for --backend openai, e.g. http://127.0.0.1:8000/v1.")
@click.option("--rpm", type=float, help="Requests-per-minute limit (your quota).")
@click.option("--tpm", type=float, help="Tokens-per-minute limit (your quota).")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Calls in flight.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=6,
    show_default=True,
    help="Attempts per call before its pairs are recorded as not judged.",
)
@click.option("--temperature", type=float, default=0.0, show_default=True, help="Sampling.")
@click.option(
    "--max-output-tokens",
    type=click.IntRange(min=16),
    default=512,
    show_default=True,
    help="Room for the verdict lines of one call.",
)
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds per call.")
def judge(run: Path, judge_dir: Path | None, **generate: object) -> None:
    """Ask a judge model to check each kept pair of RUN against its image and record.

    Three checks per pair: the answer contradicts the record's label; it states case facts its
    question does not give; it gives individual or unsafe medical advice. The judge runs through
    the generate engine (same limits, retries, resume, exactly once): stop and rerun at will.
    Verdicts go to RUN/judgements.jsonl; run `dermasynth curate RUN` next to add them to the
    pairs as columns (judge_label, judge_facts, judge_advice) and reject flagged pairs as the
    curate config's `judge_reject` says (all three checks by default).

    \b
    Example:
      dermasynth judge runs/first --model gemini-3.5-flash --rpm 1000
      dermasynth curate runs/first
    """
    from ..judge import CHECKS, PROBLEMS, JudgeError, run_judge
    from ..run import RunFolderError

    options = generate_options(generate)
    with progress_bar("judging") as update:
        try:
            summary = run_judge(
                run,
                judge_dir,
                options,
                on_progress=lambda p: update(p.planned - p.remaining, p.planned),
            )
        except (JudgeError, RunFolderError, BackendConfigError) as exc:
            raise UsageFailure(str(exc)) from None
    if summary.moved_aside:
        err.print(f"the verdicts on earlier pairs were moved to {summary.moved_aside}")
    flagged = ", ".join(f"{summary.problems[c]} {PROBLEMS[c]}" for c in CHECKS)
    out.print(
        f"judged {summary.judged} of {summary.pairs} pairs ({summary.failed} failed): {flagged}"
    )
    out.print(
        f"verdicts -> {run / 'judgements.jsonl'}; run `dermasynth curate {run}` to apply them"
    )
    if summary.failed:
        sys.exit(1)
