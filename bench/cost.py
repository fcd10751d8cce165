"""What the paper's 92k pairs cost per mode: token counts from offline dry runs of a
paper-scale plan, times the published prices in dermasynth_builder/prices.yaml.

The dry run counts input tokens the way Gemini 2.x bills them (258 per 768 px tile, text at
~4 characters a token, the system instruction included). Offline answers are shorter than a real
model's, so output tokens are also shown at an assumed 250 tokens per answer.

    python bench/cost.py [--scale 1.0] [--answer-tokens 250]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
from dermasynth_builder.engine import Engine, GenerateOptions
from dermasynth_builder.plan import make_plan
from dermasynth_builder.pricing import cost, load_prices
from tests.support import scale


def dry_run(run: Path, one_question: bool) -> dict[str, int]:
    for name in ("responses.jsonl", "failures.jsonl"):
        (run / name).unlink(missing_ok=True)
    options = GenerateOptions(
        backend="offline", one_question_per_request=one_question, concurrency=64
    )
    Engine(run, options).run_sync()
    usage = json.loads((run / "run.json").read_text())["generation"]
    total = usage["usage"]["offline"]
    return {
        "pairs": usage["counts"]["responses"],
        "calls": usage["counts"]["calls"],
        "input": total["input_tokens"],
        "output": total["output_tokens"],
        "image": total["image_tokens"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--answer-tokens", type=int, default=250)
    args = parser.parse_args()
    counts = {k: max(1, int(v * args.scale)) for k, v in scale.PAPER_SCALE.items()}
    prices = load_prices()
    with tempfile.TemporaryDirectory(prefix="dermasynth-cost-") as tmp:
        started = time.perf_counter()
        roots = scale.build(Path(tmp) / "sources", counts)
        run = Path(tmp) / "run"
        make_plan(list(roots.items()), run)
        ours = dry_run(run, one_question=False)
        paper = dry_run(run, one_question=True)
    print(
        f"dry runs of {ours['pairs']:,} pairs from {sum(counts.values()):,} images "
        f"({time.perf_counter() - started:.0f} s)"
    )
    print(
        f"one call per image: {ours['calls']:,} calls, {ours['input']:,} input tokens "
        f"({ours['image']:,} image), {ours['output']:,} output tokens (offline answers)"
    )
    print(
        f"one call per question: {paper['calls']:,} calls, {paper['input']:,} input tokens "
        f"({paper['image']:,} image)"
    )
    print()
    print(
        f"| mode | model | calls | input tokens | USD (dry-run output) | USD ({args.answer_tokens} "
        "output tokens per answer) |"
    )
    print("|---|---|---|---|---|---|")
    for label, usage, batch in (
        ("online, one call per image", ours, False),
        ("batch, one call per image", ours, True),
        ("online, one call per question (the paper's way)", paper, False),
    ):
        for model in ("gemini-2.0-flash", "gemini-2.5-flash"):
            assumed = usage["pairs"] * args.answer_tokens
            a = cost(prices, model, usage["input"], usage["output"], batch=batch)
            b = cost(prices, model, usage["input"], assumed, batch=batch)
            print(
                f"| {label} | {model} | {usage['calls']:,} | {usage['input']:,} | "
                f"{a:,.2f} | {b:,.2f} |"
            )
    print(
        "| OpenAI-compatible local server (vLLM, Ollama) | an open vision model | "
        f"{ours['calls']:,} | - | 0 (your hardware) | 0 (your hardware) |"
    )


if __name__ == "__main__":
    main()
