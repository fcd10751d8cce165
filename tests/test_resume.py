"""Crash safety: a generate process killed with SIGKILL, again and again, then finished, leaves
every planned request id in exactly one of responses.jsonl or failures.jsonl."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

from dermasynth_builder.plan import make_plan
from tests.support import scale
from tests.support.fake_gemini import FakeGemini

KEY = "test-key-resume-5521"


def count_lines(path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_kill_9_and_restart_keeps_every_id_exactly_once(tmp_path):
    roots = scale.build(tmp_path / "sources", {"hiba": 150, "pad_ufes_20": 150}, image_size=96)
    run = tmp_path / "run"
    make_plan(list(roots.items()), run)
    planned = [json.loads(x)["id"] for x in (run / "requests.jsonl").read_text().splitlines()]
    assert len(planned) > 400  # two requests per image, less any the plan leaves out
    errors = {429: 0.20, 500: 0.03, 503: 0.02}
    fake = FakeGemini(
        latency=0.03,
        latency_jitter=0.02,
        retry_after=0.1,
        seed=5,
        error_rates=errors,
        keep_image_data=False,
    )
    env = {**os.environ, "GEMINI_API_KEY": KEY}
    cmd = [
        sys.executable,
        "-m",
        "dermasynth_builder",
        "generate",
        str(run),
        "--concurrency",
        "16",
        "--retry-base-delay",
        "0.02",
        "--max-attempts",
        "10",
    ]
    with fake:
        env["GOOGLE_GEMINI_BASE_URL"] = fake.url
        for target in (80, 250, 420):  # kill at rising numbers of written lines
            proc = subprocess.Popen(
                cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + 120
            while count_lines(run / "responses.jsonl") < target and proc.poll() is None:
                assert time.monotonic() < deadline, "generate made no progress"
                time.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
        final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode in (0, 1), final.stderr
    assert fake.stats["error_429"] > 50 and fake.stats["error_500"] > 0
    outcomes = Counter()
    for name in ("responses.jsonl", "failures.jsonl"):
        for line in (run / name).read_text().splitlines():
            outcomes[json.loads(line)["id"]] += 1  # every line is whole JSON
    assert outcomes == Counter(planned), "some id is missing or written twice"
    info = json.loads((run / "run.json").read_text())["generation"]
    assert info["counts"]["responses"] + info["counts"]["failures"] == len(planned)
    for path in run.iterdir():
        assert KEY not in path.read_text()
