"""Benchmark `dermasynth generate` against the fake Gemini server, each in its own process
(issue 14), side by side in one run: this code and the code of ``--baseline-ref`` (what it
printed before; checked out with `git archive` into a temporary folder), on the same images,
plan, cap and server latency. Every number comes from the `dermasynth generate` process's own
resource usage (its CPU and that of its children: image workers and --workers processes) and
from what the fake server accepted.

Prints:
  (a) client CPU ms per call, default model (original bytes) and tile model (every image
      decoded, downscaled, re-encoded)                               (target <= 10 ms)
  (b) accepted calls/min as a fraction of a 2,000/min cap            (target >= 0.95)
  (c) the same at a 10,000/min cap with --workers, and what limits it
  (d) (a) and (b) for the baseline code, side by side
  (e) pairs/min vs the paper's sequential loop (one call per question, full-size image)

    python bench/generate.py [--images 1500] [--latency 0.3] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
from dermasynth_builder.options import DEFAULT_MODEL
from dermasynth_builder.plan import make_plan
from tests.support import scale

REPO = Path(__file__).resolve().parents[1]

KEY = "bench-key"
TILE_MODEL = "gemini-2.0-flash"


class Server:
    """The fake Gemini server in a process of its own (so its CPU is not the client's)."""

    def __init__(self, rpm: int | None, latency: float):
        cmd = [sys.executable, "-m", "tests.support.fake_gemini", "--port", "0", "--no-image-data"]
        cmd += ["--latency", str(latency), "--latency-jitter", str(latency / 3)]
        if rpm:
            cmd += ["--rpm", str(rpm)]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        self.url = re.search(r"http://[\d.:]+", line).group(0)

    def stop(self) -> dict:
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=60)
        return json.loads(out.strip().splitlines()[-1])


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def generate(run: Path, model: str, rpm: int, latency: float, code: Path, *extra: str) -> dict:
    """One `dermasynth generate` process (from the package in ``code``) against a fresh fake
    server capped at ``rpm``; the client is told the same cap."""
    server = Server(rpm, latency)
    env = {
        **os.environ,
        "GEMINI_API_KEY": KEY,
        "GOOGLE_GEMINI_BASE_URL": server.url,
        "PYTHONPATH": str(code),
    }
    cmd = [sys.executable, "-m", "dermasynth_builder", "generate", str(run), "--model", model]
    cmd += ["--rpm", str(rpm), "--concurrency", "64", *extra]
    cpu_before, started = children_cpu(), time.perf_counter()
    try:
        done = subprocess.run(cmd, env=env, cwd=code, stdout=subprocess.DEVNULL, text=True)
    finally:
        stats = server.stop()
    wall = time.perf_counter() - started
    cpu = children_cpu() - cpu_before
    assert done.returncode == 0, f"generate failed ({done.returncode})"
    info = json.loads((run / "run.json").read_text())["generation"]
    calls = stats["ok"]
    return {
        "pairs": info["counts"]["responses"],
        "calls": calls,
        "wall": wall,
        "cpu": cpu,
        "ms_per_call": cpu / max(1, calls) * 1000,
        "fraction": stats["accepted_per_minute"] / rpm,
        "rejected": stats["rpm_429"],
        "bytes_per_pair": stats["image_bytes"] / max(1, info["counts"]["responses"]),
    }


def sequential(run: Path, root: Path, n: int, latency: float) -> float:
    """Pairs/min of the paper's loop: one call per question, the full image, one at a time."""
    from google import genai
    from google.genai import types

    server = Server(None, latency)
    try:
        client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=server.url))
        config = types.GenerateContentConfig(response_mime_type="application/json")
        requests = [json.loads(x) for x in (run / "requests.jsonl").read_text().splitlines()][:n]
        started = time.perf_counter()
        for req in requests:
            part = types.Part.from_bytes(
                data=(root / req["image_path"]).read_bytes(), mime_type="image/jpeg"
            )
            prompt = f"{req['context']}\n\n{req['question']}"
            client.models.generate_content(model=TILE_MODEL, contents=[part, prompt], config=config)
        return len(requests) / (time.perf_counter() - started) * 60
    finally:
        server.stop()


def checkout(ref: str, dest: Path) -> Path:
    """The package as of ``ref`` (git archive), importable from ``dest``."""
    archive = dest.with_suffix(".tar")
    with open(archive, "wb") as fh:
        what = ["dermasynth_builder", "templates"]
        subprocess.run(["git", "archive", ref, *what], cwd=REPO, stdout=fh, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest


def fresh_plan(roots: dict[str, Path], run: Path) -> Path:
    make_plan(list(roots.items()), run, fresh=True)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1500)
    parser.add_argument("--latency", type=float, default=0.3, help="median server latency, s")
    parser.add_argument("--rpm", type=int, default=2000, help="the cap of (a), (b), (d)")
    parser.add_argument("--high-rpm", type=int, default=10000, help="the cap of (c)")
    parser.add_argument("--workers", type=int, default=2, help="--workers for (c)")
    parser.add_argument("--baseline-ref", default="36f32ce", help="git ref of (d)")
    parser.add_argument("--sequential-requests", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dermasynth-gen-") as tmp:
        tmp_path = Path(tmp)
        # 1024 px at JPEG quality 95, like the BCN20000 originals (~200 KB each)
        n_high = args.images * 2
        roots = scale.build(tmp_path / "src", {"bcn20000": n_high}, image_size=1024, quality=95)
        small = scale.build(
            tmp_path / "src-small", {"bcn20000": args.images}, image_size=1024, quality=95
        )
        base = checkout(args.baseline_ref, tmp_path / "baseline")
        planned = make_plan(list(small.items()), tmp_path / "probe")
        print(
            f"{args.images:,} images of 1024 px (JPEG q95), two questions each; fake server in "
            f"its own process, {args.latency * 1000:.0f} ms median latency; baseline: "
            f"{args.baseline_ref}"
        )
        del planned
        results = {}
        for label, model, code in (
            ("ours, default model", DEFAULT_MODEL, REPO),
            ("ours, tile model", TILE_MODEL, REPO),
            ("baseline, default model", DEFAULT_MODEL, base),
            ("baseline, tile model", TILE_MODEL, base),
        ):
            run = fresh_plan(small, tmp_path / f"run-{len(results)}")
            results[label] = generate(run, model, args.rpm, args.latency, code)
        run = fresh_plan(roots, tmp_path / "run-high")
        high = generate(
            run, DEFAULT_MODEL, args.high_rpm, args.latency, REPO, "--workers", str(args.workers)
        )
        run = fresh_plan(roots, tmp_path / "run-high-1")
        high_one = generate(run, DEFAULT_MODEL, args.high_rpm, args.latency, REPO)
        seq = sequential(tmp_path / "probe", small["bcn20000"], args.sequential_requests, 0.3)
    for label, r in results.items():
        print(
            f"{label}: {r['pairs']:,} pairs in {r['calls']:,} calls, {r['wall']:.1f} s wall, "
            f"{r['cpu']:.1f} s CPU, {r['rejected']} turned away with 429, "
            f"{r['bytes_per_pair'] / 1024:.1f} KiB of image per pair"
        )
    ours, ours_tile = results["ours, default model"], results["ours, tile model"]
    base_mr, base_tile = results["baseline, default model"], results["baseline, tile model"]
    print()
    print(
        f"(a) client CPU per call: {ours['ms_per_call']:.1f} ms default model, "
        f"{ours_tile['ms_per_call']:.1f} ms tile model (target <= 10 ms)"
    )
    print(
        f"(b) accepted calls/min / the {args.rpm:,}/min cap: {ours['fraction']:.3f} default model,"
        f" {ours_tile['fraction']:.3f} tile model (target >= 0.95)"
    )
    for label, r, extra in (
        (f"--workers {args.workers}", high, ""),
        ("one process", high_one, ""),
    ):
        print(
            f"(c) {args.high_rpm:,}/min cap, {label}: {r['fraction']:.3f} of the cap "
            f"({r['fraction'] * args.high_rpm:,.0f} calls/min), {r['ms_per_call']:.1f} ms CPU "
            f"per call, {r['cpu'] / r['wall']:.2f} cores busy in the client{extra}"
        )
    print(
        f"(d) baseline {args.baseline_ref}: CPU per call {base_mr['ms_per_call']:.1f} ms default "
        f"model, {base_tile['ms_per_call']:.1f} ms tile model; fraction of the cap "
        f"{base_mr['fraction']:.3f} / {base_tile['fraction']:.3f}; ours / baseline CPU per call "
        f"{ours['ms_per_call'] / base_mr['ms_per_call']:.2f} / "
        f"{ours_tile['ms_per_call'] / base_tile['ms_per_call']:.2f}"
    )
    ours_rate = ours["pairs"] / ours["wall"] * 60
    print(
        f"(e) {ours_rate:,.0f} pairs/min vs {seq:,.0f} pairs/min for the sequential loop = "
        f"{ours_rate / seq:.1f}x"
    )


if __name__ == "__main__":
    main()
