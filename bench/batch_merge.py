"""Benchmark merging a failed batch job (every item matched back to its call) against the fake
Gemini server, at N and 2N images, side by side with the old per-item scan of the ledger.

Prints two ratios:
  (a) merge time at 2N images / at N images                     (linear: ~2; target <= 2.5)
  (b) the old per-item scan of every job / one count per merge  (the speed-up on 2N)

    python bench/batch_merge.py [--images 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
from dermasynth_builder.batch import BatchOptions, BatchRunner, round_counts
from dermasynth_builder.options import GenerateOptions
from dermasynth_builder.plan import make_plan
from tests.support import scale
from tests.support.fake_gemini import FakeGemini

KEY = "bench-key"


def merge_seconds(tmp: Path, images: int, fake: FakeGemini) -> tuple[float, list[dict[str, Any]]]:
    """Time the merge of one failed job over ``images`` images (and return the ledger)."""
    roots = scale.build(tmp / f"sources-{images}", {"bcn20000": images}, image_size=64)
    run = tmp / f"run-{images}"
    make_plan(list(roots.items()), run)
    options = GenerateOptions(backend="gemini", mode="batch", one_question_per_request=True)
    batch = BatchOptions(poll_interval=0.0)
    with BatchRunner(run, options, batch, say=lambda s: None, sleep=lambda s: None) as runner:
        runner.submit(runner.engine.pending_calls())
        started = time.perf_counter()
        runner.wait_and_merge()
        return time.perf_counter() - started, runner.jobs


def old_scan(jobs: list[dict[str, Any]]) -> int:
    """What the merge did before: for each item, scan every job for its first id."""
    total = 0
    for job in jobs:
        for ids in job["calls"].values():
            first = ids[0]
            total += sum(any(first in g for g in j["calls"].values()) for j in jobs)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    args = parser.parse_args()
    fake = FakeGemini(api_key=KEY, batch_steps=0, batch_fail=True, keep_image_data=False)
    with tempfile.TemporaryDirectory(prefix="dermasynth-batch-") as tmp, fake:
        os.environ.update(GEMINI_API_KEY=KEY, GOOGLE_GEMINI_BASE_URL=fake.url)
        small, _ = merge_seconds(Path(tmp), args.images, fake)
        large, jobs = merge_seconds(Path(tmp), 2 * args.images, fake)
        items = sum(len(j["calls"]) for j in jobs)
        started = time.perf_counter()
        old_scan(jobs)
        old = time.perf_counter() - started
        started = time.perf_counter()
        round_counts(jobs)
        new = time.perf_counter() - started
    print(f"merge of a failed job: {small:.2f} s at {args.images:,} images, {large:.2f} s at 2x")
    print(f"(a) merge time ratio 2N/N: {large / small:.2f} (linear ~2; target <= 2.5)")
    print(f"(b) matching {items:,} items, old scan / new count: {old / max(new, 1e-9):,.0f}x")


if __name__ == "__main__":
    main()
