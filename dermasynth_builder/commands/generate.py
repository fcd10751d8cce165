"""``dermasynth generate``: answer the planned requests with a model, resumably."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from pydantic import ValidationError

from ..backends import BACKENDS, BackendConfigError, backend_class
from ..options import DEFAULT_MODEL, GenerateOptions
from .common import UsageFailure, err, generate_options, out
from .generate_console import LiveProgress, print_summary, usd


@click.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "--backend",
    type=click.Choice(list(BACKENDS)),
    default="gemini",
    show_default=True,
    help="gemini: Google's API via google-genai; openai: an OpenAI-compatible server "
    "(vLLM, Ollama, LM Studio; needs --base-url and --model); offline: deterministic "
    "answers from the metadata, no network (dry runs, demo, tests).",
)
@click.option(
    "--model",
    default=DEFAULT_MODEL,
    show_default=True,
    help="Model name (for offline: the model whose prices the dry run estimates). "
    "gemini-2.0-flash reproduces the paper where an endpoint still serves it.",
)
@click.option(
    "--media-resolution",
    type=click.Choice(["low", "medium", "high", "ultra_high"]),
    help="Gemini 3.x: tokens per image (280/560/1120/2240); default: the model profile's (high).",
)
@click.option(
    "--thinking",
    help="Thinking control: a level (minimal, low, medium, high) for Gemini 3.x, a token "
    "budget for 2.5, or 'model' to send none; default: the profile's (low for 3.x).",
)
@click.option("--base-url", help="Server URL for --backend openai, e.g. http://127.0.0.1:8000/v1.")
@click.option("--rpm", type=float, help="Requests-per-minute limit (your quota).")
@click.option("--tpm", type=float, help="Tokens-per-minute limit (your quota).")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Calls in flight at once.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes making the calls, for quotas past one core (~2,000+/min); they share "
    "--rpm, --tpm and --concurrency, so the caps hold in total.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=6,
    show_default=True,
    help="Attempts per call before its requests go to failures.jsonl.",
)
@click.option(
    "--max-content-attempts",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Of those, attempts for answers cut off or failing the schema (batch: job rounds).",
)
@click.option(
    "--retry-failed", is_flag=True, help="Give the requests in failures.jsonl another round."
)
@click.option(
    "--one-question-per-request",
    is_flag=True,
    help="One call per question, as the paper did (default: one call per image).",
)
@click.option(
    "--max-image-side",
    type=click.IntRange(min=64),
    help="Downscale images past this longest side before upload. Default: the profile's "
    "(768 px, one tile, for 2.x; 3.x models get the original bytes up to 3072 px).",
)
@click.option(
    "--temperature",
    type=click.FloatRange(0, 2),
    default=0.4,
    show_default=True,
    help="Sampling temperature: lower is more literal, higher more varied phrasing.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Sampling seed sent to the model."
)
@click.option(
    "--max-output-tokens",
    type=click.IntRange(min=16),
    default=2048,
    show_default=True,
    help="Cap on the answer tokens of one call (all its questions); an answer cut off by it "
    "is retried as a content failure.",
)
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds per call.")
@click.option(
    "--retry-base-delay",
    type=float,
    default=1.0,
    show_default=True,
    help="First backoff delay in seconds (doubles per retry, with jitter).",
)
@click.option(
    "--max-connection-failures",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Stop the run after this many failures to reach the server in a row.",
)
@click.option(
    "--progress-every",
    type=click.FloatRange(min=0.01),
    default=30.0,
    show_default=True,
    help="Seconds between progress lines when stderr is not a terminal (logs, nohup, SLURM).",
)
@click.option(
    "--image-cache-mb",
    type=click.IntRange(min=0),
    default=2048,
    show_default=True,
    help="Disk for images prepared (downscaled, re-encoded) for this run, under "
    "RUN/cache/images; removed when every request has its outcome.",
)
@click.option(
    "--prices",
    type=click.Path(exists=True, path_type=Path),
    help="A YAML price table (model: {input, output} in USD per 1M tokens) laid over the "
    "bundled model profiles.",
)
@click.option(
    "--mode",
    type=click.Choice(["online", "batch"]),
    default="online",
    show_default=True,
    help="online: calls now, with limits and retries; batch: the Gemini Batch API "
    "(half the price, results within 24 h; restart to re-attach).",
)
@click.option(
    "--poll-interval",
    type=float,
    default=30.0,
    show_default=True,
    help="Batch mode: first wait between job polls (grows to 5 min).",
)
def generate(run: Path, **kwargs: object) -> None:
    """Generate answers for RUN/requests.jsonl into RUN/responses.jsonl and RUN/failures.jsonl.

    Safe to stop and restart at any time (even kill -9): it re-reads what is done and does
    only the rest. Every planned request ends in exactly one of the two files. The API key
    comes from GEMINI_API_KEY or GOOGLE_API_KEY (GOOGLE_GEMINI_BASE_URL changes the endpoint),
    or OPENAI_API_KEY for --backend openai, and is never printed or written. Exit code 1 if
    any request failed.

    \b
    Examples:
      dermasynth generate runs/first --rpm 2000 --tpm 4000000
      dermasynth generate runs/first --backend offline      # dry run: tokens and cost
      dermasynth generate runs/first --mode batch           # half price; rerun re-attaches
      dermasynth generate runs/first --backend openai --base-url http://127.0.0.1:8000/v1 \\
          --model Qwen/Qwen2.5-VL-7B-Instruct
    """
    options = generate_options(kwargs, check_key=False)  # the engine says which key
    summary = run_generate(run, options)
    if summary["counts"]["failures"]:
        sys.exit(1)


def run_generate(run: Path, options: GenerateOptions) -> dict:
    """Generate with a live progress bar and a final summary; returns run.json's generation."""
    if options.mode == "batch":
        return run_batch(run, options)
    from ..backends import StopRun
    from ..engine import Engine
    from ..run import RunFolderError

    try:
        engine = Engine(run, options, on_progress=None)
    except (BackendConfigError, RunFolderError) as exc:
        raise UsageFailure(_one_line(exc)) from None
    for warning in engine.warnings:
        err.print(f"warning: {warning}")
    started = time.monotonic()
    with engine, LiveProgress(engine, options.progress_every) as update:
        engine.on_progress = update
        try:
            counters = engine.run_sync(finish=False)
        except KeyboardInterrupt:
            err.print("interrupted: finished requests are saved; rerun the same command to resume")
            sys.exit(130)
        except StopRun as exc:
            raise UsageFailure(
                f"generate stopped: {_one_line(exc)} (answered requests are saved, nothing "
                "else was recorded; fix this and rerun the same command)"
            ) from None
        return print_summary(engine, counters, time.monotonic() - started)


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}"
    return str(exc)


def run_batch(run: Path, options: GenerateOptions) -> dict:
    """Batch mode: submit (or re-attach to) Gemini batch jobs, wait, merge the results."""
    if not backend_class(options.backend).supports_batch:
        batch_backends = ", ".join(n for n in BACKENDS if backend_class(n).supports_batch)
        raise UsageFailure(f"--mode batch needs a backend with a batch API ({batch_backends})")
    from ..batch import BatchOptions, BatchRunner
    from ..batch_jobs import BatchError
    from ..run import RunFolderError

    try:
        runner = BatchRunner(
            run,
            options,
            BatchOptions(poll_interval=options.poll_interval),
            say=lambda text: err.print(text),
        )
    except (BackendConfigError, RunFolderError) as exc:
        raise UsageFailure(_one_line(exc)) from None
    for warning in runner.engine.warnings:
        err.print(f"warning: {warning}")
    try:
        info = runner.run_all()
    except BatchError as exc:
        err.print(f"batch: {exc}; rerun the same command to re-attach to the jobs")
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted: the batch jobs keep running; rerun the same command to re-attach")
        sys.exit(130)
    counts = info["counts"]
    out.print(
        f"batch: {counts['responses']:,} responses, {counts['failures']:,} failures of "
        f"{counts['planned']:,} planned; estimated cost {usd(info['estimated_cost_usd'])} "
        "(batch price)"
    )
    return info
