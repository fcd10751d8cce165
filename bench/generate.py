"""Benchmark `dermasynth generate` against the fake Gemini server: today's media-resolution path
(Gemini 3.x, the original image bytes) side by side with the old tile path (Gemini 2.0 Flash,
every image decoded, downscaled to 768 px and re-encoded), and with the paper's method (a
sequential loop, one call per question, each sending the full-size image).

Each path runs as its own `dermasynth generate` process against its own fake server (same
images, same plan, same cap) and is measured from the process's own resource usage.
Prints:
  (a) calls/min the server accepted as a fraction of its RPM cap, per path  (target >= 0.95)
  (b) pairs/min, ours (media resolution) vs the sequential loop              (target >= 15x)
  (c) image tokens and bytes per pair, per path vs that baseline
  (d) client CPU ms per call (user + system CPU of the generate process / calls), per path,
      and the media-resolution path as a fraction of the tile path          (issue 14: <= 10 ms)

    python bench/generate.py [--images 1500] [--latency 0.3] [--rpm 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from google import genai
from google.genai import types

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
from dermasynth_builder.images import image_tokens
from dermasynth_builder.options import DEFAULT_MODEL
from dermasynth_builder.plan import make_plan
from tests.support import scale
from tests.support.fake_gemini import FakeGemini

KEY = "bench-key"
TILE_MODEL = "gemini-2.0-flash"


def image_bytes(entries: list[dict]) -> int:
    """Image bytes the server received in ``entries`` (the fake logs the base64 length)."""
    size = 0
    for entry in entries:
        for part in entry["body"]["contents"][0]["parts"]:
            data = (part.get("inlineData") or {}).get("data", "")
            if data.startswith("<"):
                size += int(data[1:].split()[0]) * 3 // 4
    return size


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_path(run: Path, model: str, args: argparse.Namespace) -> dict:
    """One `dermasynth generate` process for ``model`` against a fresh fake server."""
    fake = FakeGemini(
        latency=args.latency,
        latency_jitter=args.latency / 3,
        rpm_limit=args.rpm,
        keep_image_data=False,
    )
    with fake:
        env = {**os.environ, "GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": fake.url}
        cmd = [sys.executable, "-m", "dermasynth_builder", "generate", str(run)]
        cmd += ["--model", model, "--rpm", str(args.rpm), "--concurrency", "64"]
        cpu_before, started = children_cpu(), time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        cpu = children_cpu() - cpu_before
        log = list(fake.log)
        accepted = fake.accepted_per_minute()
        rejected = fake.stats["rpm_429"]
    info = json.loads((run / "run.json").read_text())["generation"]
    pairs = info["counts"]["responses"]
    usage = next(iter(info["usage"].values()))
    return {
        "model": model,
        "pairs": pairs,
        "calls": len(log),
        "wall": wall,
        "cpu": cpu,
        "accepted": accepted,
        "rejected": rejected,
        "image_tokens": usage["image_tokens"],
        "image_bytes": image_bytes(log),
    }


def baseline(run: Path, root: Path, n: int) -> dict:
    """The reference pipeline: for each question, one call with the full-size image, in turn."""
    with FakeGemini(latency=0.3, latency_jitter=0.1, keep_image_data=False) as fake:
        client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fake.url))
        config = types.GenerateContentConfig(response_mime_type="application/json")
        requests = [json.loads(x) for x in (run / "requests.jsonl").read_text().splitlines()][:n]
        started = time.perf_counter()
        for req in requests:
            data = (root / req["image_path"]).read_bytes()
            prompt = f"{req['context']}\n\n{req['question']}"
            part = types.Part.from_bytes(data=data, mime_type="image/jpeg")
            client.models.generate_content(model=TILE_MODEL, contents=[part, prompt], config=config)
        wall = time.perf_counter() - started
        log = list(fake.log)
    tokens = sum(image_tokens(w, h) for e in log for w, h in e["image_sizes"])
    return {
        "pairs": len(requests),
        "wall": wall,
        "image_tokens": tokens,
        "image_bytes": image_bytes(log),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1500)
    parser.add_argument("--latency", type=float, default=0.3, help="median server latency, s")
    parser.add_argument("--rpm", type=int, default=2000, help="the server's requests/min cap")
    parser.add_argument("--baseline-requests", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dermasynth-gen-") as tmp:
        tmp_path = Path(tmp)
        # 1024 px at JPEG quality 95, like the BCN20000 originals (~200 KB each)
        roots = scale.build(
            tmp_path / "sources", {"bcn20000": args.images}, image_size=1024, quality=95
        )
        runs = {}
        for name in ("tile", "mr"):
            runs[name] = tmp_path / f"run-{name}"
            make_plan(list(roots.items()), runs[name])  # the same plan twice
        planned = len((runs["mr"] / "requests.jsonl").read_text().splitlines())
        print(
            f"{args.images:,} images of 1024 px (JPEG q95), {planned:,} requests; server: "
            f"{args.latency * 1000:.0f} ms median latency, cap {args.rpm:,} requests/min"
        )
        tile = run_path(runs["tile"], TILE_MODEL, args)
        mr = run_path(runs["mr"], DEFAULT_MODEL, args)
        base = baseline(runs["mr"], roots["bcn20000"], args.baseline_requests)
    for label, r in (("tile path", tile), ("media resolution", mr)):
        print(
            f"{label} ({r['model']}): {r['pairs']:,} pairs in {r['calls']:,} calls, "
            f"{r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU; {r['rejected']} calls turned away "
            "with 429"
        )
    print(
        f"baseline: {base['pairs']} pairs in {base['pairs']} sequential calls, {base['wall']:.1f} s"
    )
    print()
    print(
        f"(a) accepted calls/min as a fraction of the {args.rpm:,}/min cap: tile path "
        f"{tile['accepted'] / args.rpm:.3f}, media resolution {mr['accepted'] / args.rpm:.3f} "
        "(target >= 0.95)"
    )
    ours_rate = mr["pairs"] / mr["wall"] * 60
    base_rate = base["pairs"] / base["wall"] * 60
    print(
        f"(b) {ours_rate:,.0f} pairs/min vs {base_rate:,.0f} pairs/min sequential = "
        f"{ours_rate / base_rate:.1f}x (target >= 15x)"
    )
    per_base = (base["image_tokens"] / base["pairs"], base["image_bytes"] / base["pairs"])
    for label, r in (("tile path", tile), ("media resolution", mr)):
        tokens, size = r["image_tokens"] / r["pairs"], r["image_bytes"] / r["pairs"]
        print(
            f"(c) {label}: image tokens per pair {tokens:.0f} vs {per_base[0]:.0f} = "
            f"{tokens / per_base[0]:.3f}; image bytes per pair {size / 1024:.1f} KiB vs "
            f"{per_base[1] / 1024:.1f} KiB = {size / per_base[1]:.3f}"
        )
    tile_ms = tile["cpu"] / tile["calls"] * 1000
    mr_ms = mr["cpu"] / mr["calls"] * 1000
    print(
        f"(d) client CPU per call: tile path {tile_ms:.1f} ms, media resolution {mr_ms:.1f} ms "
        f"= {mr_ms / tile_ms:.2f} of the tile path (issue 14 target <= 10 ms)"
    )


if __name__ == "__main__":
    main()
