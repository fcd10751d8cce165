"""``generate --workers N`` (issue 14): the pending calls shared out over N processes that share
the RPM budget (counted by the fake server), every id exactly once across a kill -9 of one
worker and of the parent, and one progress display."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from dermasynth_builder.plan import make_plan
from tests.support import scale
from tests.support.fake_gemini import FakeGemini

KEY = "test-key-workers-4410"


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def count_lines(path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def planned(run):
    return Counter(r["id"] for r in lines(run / "requests.jsonl"))


def outcomes(run):
    return Counter(r["id"] for n in ("responses.jsonl", "failures.jsonl") for r in lines(run / n))


def command(run, fake, *extra):
    env = {**os.environ, "GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": fake.url}
    cmd = [sys.executable, "-m", "dermasynth_builder", "generate", str(run)]
    return cmd + ["--retry-base-delay", "0.02", "--max-attempts", "10", *extra], env


@pytest.fixture
def run(tmp_path):
    roots = scale.build(tmp_path / "sources", {"hiba": 60, "pad_ufes_20": 60}, image_size=96)
    path = tmp_path / "run"
    make_plan(list(roots.items()), path)
    return path


def test_workers_share_the_rpm_cap_and_write_each_id_once(run):
    # 60 requests per 6 s window at the server = 600/min; the workers share --rpm 540 in all
    with FakeGemini(rpm_limit=60, window_seconds=6.0, keep_image_data=False) as fake:
        cmd, env = command(run, fake, "--workers", "2", "--rpm", "540", "--progress-every", "0.5")
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        calls = fake.stats["ok"]
        assert fake.stats["rpm_429"] == 0  # the cap held in total
    assert done.returncode == 0, done.stderr
    assert outcomes(run) == planned(run)
    assert calls == len({(r["source"], r["image_id"]) for r in lines(run / "requests.jsonl")})
    progress = [x for x in done.stderr.splitlines() if x.startswith("generate: ")]
    total = sum(planned(run).values())
    assert progress[-1].startswith(f"generate: {total:,}/{total:,} done")  # one display


def children(pid: int, recursive: bool = False) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    stat = fh.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    if recursive:
        for child in list(found):
            found += children(child, True)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_worker_and_a_killed_parent_lose_and_repeat_nothing(run):
    fake = FakeGemini(latency=0.05, latency_jitter=0.03, keep_image_data=False)
    with fake:
        cmd, env = command(run, fake, "--workers", "2", "--concurrency", "8")
        # 1) kill -9 one worker mid-run: the parent finishes the run without it
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while count_lines(run / "responses.jsonl") < 40:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.01)
        workers = children(proc.pid)
        assert len(workers) >= 2
        os.kill(workers[0], signal.SIGKILL)
        assert proc.wait(timeout=180) == 0, proc.stderr.read()
        assert outcomes(run) == planned(run)
        # 2) a fresh start, kill -9 the parent mid-run: its workers exit too; a rerun finishes
        for name in ("responses.jsonl", "failures.jsonl"):
            (run / name).unlink()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while count_lines(run / "responses.jsonl") < 40:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.01)
        workers = children(proc.pid, recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        while any(alive(pid) for pid in workers):  # they notice within 0.2 s and exit
            assert time.monotonic() < deadline, "workers outlived their parent"
            time.sleep(0.01)
        half = outcomes(run)
        assert set(half.values()) == {1} and 0 < sum(half.values()) < sum(planned(run).values())
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    assert outcomes(run) == planned(run)


def test_ctrl_c_stops_the_workers_and_keeps_what_is_done(run):
    with FakeGemini(latency=0.05, keep_image_data=False) as fake:
        cmd, env = command(run, fake, "--workers", "2", "--concurrency", "4")
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while count_lines(run / "responses.jsonl") < 20:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.01)
        workers = children(proc.pid, recursive=True)
        proc.send_signal(signal.SIGINT)
        stderr = proc.communicate(timeout=60)[1].decode()
        assert proc.returncode == 130, stderr
        assert "Traceback" not in stderr and "interrupted" in stderr
        while any(alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "workers outlived the interrupt"
            time.sleep(0.01)
        half = outcomes(run)
        assert set(half.values()) == {1}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    assert outcomes(run) == planned(run)
