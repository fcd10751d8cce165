"""What the paper's 92k pairs cost on today's models: token counts from offline dry runs of a
paper-scale plan, times the dated prices in dermasynth_builder/model_profiles.yaml, for every
current model at each media resolution, online and batch.

The dry runs count input tokens the way each model bills them: Gemini 3.x a fixed count per image
set by media resolution (low 280, medium 560, high 1120, ultra_high 2240), Gemini 2.x 258 per
768 px tile; text at ~4 characters a token, the system instruction included. Since a 3.x image
costs the same tokens whatever its pixels, the other resolutions change only the image tokens:
one dry run gives the text tokens, and each resolution adds calls x its tokens per image.
Offline answers are shorter than a real model's, so output is taken at an assumed
``--answer-tokens`` per answer plus ``--thought-tokens`` per call (thinking bills as output;
the real figure depends on the thinking level and the model: measure it on a small run).

    python bench/cost.py [--scale 1.0] [--answer-tokens 250] [--thought-tokens 100]
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
from dermasynth_builder.options import DEFAULT_MODEL
from dermasynth_builder.plan import make_plan
from dermasynth_builder.pricing import MEDIA_RESOLUTIONS, cost, load_profiles
from tests.support import scale

PAPER_MODEL = "gemini-2.0-flash"


def dry_run(run: Path, model: str, one_question: bool, resolution: str | None = None) -> dict:
    for name in ("responses.jsonl", "failures.jsonl"):
        (run / name).unlink(missing_ok=True)
    options = GenerateOptions(
        backend="offline",
        model=model,
        media_resolution=resolution,
        one_question_per_request=one_question,
        concurrency=64,
    )
    with Engine(run, options) as engine:
        engine.run_sync()
    info = json.loads((run / "run.json").read_text())["generation"]
    total = info["usage"]["offline"]
    return {
        "pairs": info["counts"]["responses"],
        "calls": info["counts"]["calls"],
        "input": total["input_tokens"],
        "image": total["image_tokens"],
        "usd": info["estimated_cost_usd"],
    }


def usd(value: float | None) -> str:
    return "unknown" if value is None else f"{value:,.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--answer-tokens", type=int, default=250)
    parser.add_argument("--thought-tokens", type=int, default=100)
    args = parser.parse_args()
    counts = {k: max(1, int(v * args.scale)) for k, v in scale.PAPER_SCALE.items()}
    profiles = load_profiles()
    with tempfile.TemporaryDirectory(prefix="dermasynth-cost-") as tmp:
        started = time.perf_counter()
        roots = scale.build(Path(tmp) / "sources", counts)
        run = Path(tmp) / "run"
        make_plan(list(roots.items()), run)
        ours = dry_run(run, DEFAULT_MODEL, one_question=False, resolution="high")
        paper_way = dry_run(run, DEFAULT_MODEL, one_question=True, resolution="high")
        tiles = dry_run(run, PAPER_MODEL, one_question=False)
    print(
        f"dry runs of {ours['pairs']:,} pairs from {sum(counts.values()):,} images "
        f"({time.perf_counter() - started:.0f} s); output assumed {args.answer_tokens} tokens "
        f"per answer + {args.thought_tokens} thought tokens per call"
    )
    print(
        f"one call per image: {ours['calls']:,} calls; text input {ours['input'] - ours['image']:,}"
        f" tokens; the dry run itself priced {DEFAULT_MODEL} at high: ${usd(ours['usd'])}"
    )
    print()
    print("| model | media resolution | calls | input tokens | USD online | USD batch |")
    print("|---|---|---|---|---|---|")
    per_image = profiles.media_resolution_tokens
    for label, usage, one_question in (
        ("", ours, False),
        (" (one call per question)", paper_way, True),
    ):
        text = usage["input"] - usage["image"]
        output = usage["pairs"] * args.answer_tokens + usage["calls"] * args.thought_tokens
        models = profiles.current() if not one_question else [DEFAULT_MODEL]
        for model in models:
            profile = profiles.find(model)
            for resolution in MEDIA_RESOLUTIONS:
                tokens = text + usage["calls"] * per_image[resolution]
                online = cost(profile, tokens, output)
                batch = cost(profile, tokens, output, batch=True)
                print(
                    f"| {model}{label} | {resolution} | {usage['calls']:,} | {tokens:,} | "
                    f"{usd(online)} | {usd(batch)} |"
                )
    profile = profiles.find(PAPER_MODEL)
    output = tiles["pairs"] * args.answer_tokens  # 2.0 Flash does not think
    print(
        f"| {PAPER_MODEL} (the paper's; shut down) | 768 px tiles | {tiles['calls']:,} | "
        f"{tiles['input']:,} | {usd(cost(profile, tiles['input'], output))} | "
        f"{usd(cost(profile, tiles['input'], output, batch=True))} |"
    )
    print(
        "| OpenAI-compatible local server (vLLM, Ollama) | - | "
        f"{ours['calls']:,} | - | 0 (your hardware) | 0 (your hardware) |"
    )


if __name__ == "__main__":
    main()
