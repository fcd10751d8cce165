"""Benchmark `dermasynth generate` against the fake Gemini server, side by side with the paper's
method (a sequential loop, one call per question, each sending the full-size image).

Prints three ratios:
  (a) calls/min the server accepted as a fraction of its RPM cap        (target >= 0.95)
  (b) pairs/min, ours vs the sequential one-call-per-question loop       (target >= 15x)
  (c) image tokens and image bytes per pair, ours vs that baseline       (target <= 0.25)

    python bench/generate.py [--images 1500] [--latency 0.3] [--rpm 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from google import genai
from google.genai import types

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
from dermasynth_builder.images import image_tokens
from dermasynth_builder.plan import make_plan
from tests.support import scale
from tests.support.fake_gemini import FakeGemini

KEY = "bench-key"


def image_stats(entries: list[dict]) -> tuple[int, int]:
    """(image tokens, image bytes) the server received in ``entries``."""
    tokens = size = 0
    for entry in entries:
        tokens += sum(image_tokens(w, h) for w, h in entry["image_sizes"])
        for part in entry["body"]["contents"][0]["parts"]:
            data = (part.get("inlineData") or {}).get("data", "")
            if data.startswith("<"):
                size += int(data[1:].split()[0]) * 3 // 4
    return tokens, size


def baseline(run: Path, root: Path, fake: FakeGemini, n: int) -> tuple[int, float]:
    """The reference pipeline: for each question, one call with the full-size image, in turn."""
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fake.url))
    config = types.GenerateContentConfig(response_mime_type="application/json")
    requests = [json.loads(x) for x in (run / "requests.jsonl").read_text().splitlines()][:n]
    started = time.perf_counter()
    for req in requests:
        data = (root / req["image_path"]).read_bytes()
        prompt = f"{req['context']}\n\n{req['question']}"
        part = types.Part.from_bytes(data=data, mime_type="image/jpeg")
        client.models.generate_content(
            model="gemini-2.0-flash", contents=[part, prompt], config=config
        )
    return len(requests), time.perf_counter() - started


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
        run = tmp_path / "run"
        make_plan(list(roots.items()), run)
        pairs_planned = len((run / "requests.jsonl").read_text().splitlines())
        print(
            f"{args.images:,} images of 1024 px, {pairs_planned:,} requests; server: "
            f"{args.latency * 1000:.0f} ms median latency, cap {args.rpm:,} requests/min"
        )
        fake = FakeGemini(
            latency=args.latency,
            latency_jitter=args.latency / 3,
            rpm_limit=args.rpm,
            keep_image_data=False,
        )
        with fake:
            env = {**os.environ, "GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": fake.url}
            cmd = [
                sys.executable,
                "-m",
                "dermasynth_builder",
                "generate",
                str(run),
                "--rpm",
                str(args.rpm),
                "--concurrency",
                "64",
            ]
            started = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
            ours_wall = time.perf_counter() - started
            ours_log = list(fake.log)
            accepted = fake.accepted_per_minute()
            rejected = fake.stats["rpm_429"]
            pairs = len((run / "responses.jsonl").read_text().splitlines())
            n_base, base_wall = baseline(run, roots["bcn20000"], fake, args.baseline_requests)
            base_log = fake.log[len(ours_log) :]
    ours_rate = pairs / ours_wall * 60
    base_rate = n_base / base_wall * 60
    ours_tokens, ours_bytes = image_stats(ours_log)
    base_tokens, base_bytes = image_stats(base_log)
    print(
        f"ours: {pairs:,} pairs in {len(ours_log):,} calls, {ours_wall:.1f} s; "
        f"server turned away {rejected} calls with 429"
    )
    print(f"baseline: {n_base} pairs in {n_base} sequential calls, {base_wall:.1f} s")
    print()
    print(
        f"(a) accepted {accepted:,.0f} calls/min = {accepted / args.rpm:.3f} of the "
        f"{args.rpm:,}/min cap (target >= 0.95)"
    )
    print(
        f"(b) {ours_rate:,.0f} pairs/min vs {base_rate:,.0f} pairs/min sequential = "
        f"{ours_rate / base_rate:.1f}x (target >= 15x)"
    )
    print(
        f"(c) image tokens per pair {ours_tokens / pairs:.0f} vs {base_tokens / n_base:.0f} = "
        f"{(ours_tokens / pairs) / (base_tokens / n_base):.3f}; image bytes per pair "
        f"{ours_bytes / pairs / 1024:.1f} KiB vs {base_bytes / n_base / 1024:.1f} KiB = "
        f"{(ours_bytes / pairs) / (base_bytes / n_base):.3f} (target <= 0.25)"
    )


if __name__ == "__main__":
    main()
