"""Benchmark `dermasynth plan` at the DermaSynth paper's scale (~45k images, ~92k requests).

Builds the five sources in a temp dir (bench/scale.py), then runs the real CLI in a subprocess and
prints wall time, peak RSS and requests/s against the targets (<= 60 s, <= 1 GiB). It runs the
plan twice, with the default recipe (2 requests/image) and the caption recipe (3 requests/image),
to show that memory does not grow with the request count (requests stream to disk).

    python bench/plan.py [--scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
from tests.support import scale
from tests.support.measure import run_cli

LIMIT_S, LIMIT_RSS = 60.0, 1 << 30


def run_plan(roots: dict[str, Path], out: Path, recipe: str) -> tuple[float, int, int]:
    args = ["plan", "--out", str(out), "--recipe", recipe]
    for name, root in roots.items():
        args += ["--source", f"{name}={root}"]
    wall, peak = run_cli(*args)
    requests = json.loads((out / "run.json").read_text())["plan"]["requests"]
    return wall, peak, requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of paper scale")
    args = parser.parse_args()
    counts = {k: max(1, int(v * args.scale)) for k, v in scale.PAPER_SCALE.items()}
    with tempfile.TemporaryDirectory(prefix="dermasynth-bench-") as tmp:
        tmp_path = Path(tmp)
        t0 = time.perf_counter()
        roots = scale.build(tmp_path / "sources", counts)
        size = scale.tree_bytes(tmp_path / "sources")
        print(
            f"built {sum(counts.values()):,} images ({size / 2**20:.0f} MiB) in "
            f"{time.perf_counter() - t0:.1f} s: {counts}"
        )
        os.sync()
        results = {}
        for recipe in ("default", "caption"):
            wall, peak, requests = run_plan(roots, tmp_path / f"run-{recipe}", recipe)
            results[recipe] = (wall, peak, requests)
            print(
                f"plan --recipe {recipe}: {requests:,} requests in {wall:.1f} s "
                f"({requests / wall:,.0f} requests/s), peak RSS {peak / 2**20:.0f} MiB"
            )
        wall, peak, requests = results["default"]
        print()
        print(
            f"default recipe: wall {wall:.1f} s = {wall / LIMIT_S:.2f} x the 60 s limit; "
            f"peak RSS {peak / 2**20:.0f} MiB = {peak / LIMIT_RSS:.2f} x the 1 GiB limit"
        )
        cap = results["caption"]
        print(
            f"requests x{cap[2] / requests:.2f} (caption vs default) -> peak RSS "
            f"x{cap[1] / peak:.2f}: memory does not follow the request count"
        )


if __name__ == "__main__":
    main()
