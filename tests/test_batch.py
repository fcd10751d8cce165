"""Batch mode through the real google-genai client against the fake server's Batch and Files
endpoints: inline and file input, item errors, cancel, status, and a kill while a job runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from click.testing import CliRunner

from dermasynth_builder.batch import BatchOptions, BatchRunner, load_jobs
from dermasynth_builder.cli import cli
from dermasynth_builder.engine import GenerateOptions
from dermasynth_builder.paths import sample_root
from dermasynth_builder.plan import make_plan
from dermasynth_builder.testing.fake_gemini import FakeGemini

KEY = "test-key-batch-88213"


@pytest.fixture
def run(tmp_path):
    path = tmp_path / "run"
    make_plan([("hiba", sample_root("hiba")), ("pad_ufes_20", sample_root("pad_ufes_20"))], path)
    return path


@pytest.fixture
def server(monkeypatch):
    with FakeGemini(api_key=KEY, batch_steps=3) as fake:
        monkeypatch.setenv("GEMINI_API_KEY", KEY)
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
        yield fake


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def outcomes(run):
    return Counter(r["id"] for n in ("responses.jsonl", "failures.jsonl") for r in lines(run / n))


def planned(run):
    return Counter(r["id"] for r in lines(run / "requests.jsonl"))


def batch(run, **kw):
    options = GenerateOptions(backend="gemini", mode="batch", poll_interval=0.01)
    return BatchRunner(run, options, BatchOptions(poll_interval=0.01, **kw), say=lambda s: None)


def test_inline_batch_answers_every_request_once(run, server):
    info = batch(run).run_all()
    assert outcomes(run) == planned(run) and info["counts"]["failures"] == 0
    assert server.stats["batch_create"] == 1 and server.stats["file_upload"] == 0
    job = next(iter(server.batches.values()))
    assert job["source"] == "inline" and job["requests"] == 15
    rows = lines(run / "responses.jsonl")
    assert all(r["batch"] and r["answer"] for r in rows)
    jobs = load_jobs(run)
    assert jobs[0]["merged"] and jobs[0]["name"].startswith("batches/")
    # half price: the same usage online would cost twice as much
    online = info["usage"]["gemini-2.0-flash"]
    full = (online["input_tokens"] * 0.10 + online["output_tokens"] * 0.40) / 1e6
    assert info["estimated_cost_usd"] == pytest.approx(full / 2, abs=1e-6)
    again = batch(run).run_all()  # nothing left: no new job
    assert server.stats["batch_create"] == 1 and again["counts"]["responses"] == 30


def test_file_batches_under_a_size_limit(run, server):
    batch(run, inline_limit=0, file_limit=60_000).run_all()
    assert server.stats["file_upload"] >= 2 and server.stats["batch_create"] >= 2
    assert all(j["source"] == "file" for j in server.batches.values())
    assert outcomes(run) == planned(run)
    assert not list((run / "batch").glob("*.jsonl"))  # uploaded inputs are cleaned up


def test_item_errors_and_failed_jobs_end_in_failures(run, server):
    server.batch_error_rate = 0.5
    batch(run).run_all()
    failures = lines(run / "failures.jsonl")
    assert failures and all(f["reason"].startswith("batch: item error") for f in failures)
    assert outcomes(run) == planned(run)
    # --retry-failed resubmits just those
    server.batch_error_rate = 0.0
    runner = BatchRunner(
        run,
        GenerateOptions(backend="gemini", mode="batch", retry_failed=True),
        BatchOptions(poll_interval=0.01),
        say=lambda s: None,
    )
    runner.run_all()
    assert lines(run / "failures.jsonl") == [] and outcomes(run) == planned(run)


def test_failed_job_fails_its_requests_with_the_reason(run, server):
    server.batch_fail = True
    batch(run).run_all()
    failures = lines(run / "failures.jsonl")
    assert len(failures) == 30 and "JOB_STATE_FAILED" in failures[0]["reason"]
    # a failed job is transient: resubmitted, up to max_content_attempts (3) rounds in all
    assert server.stats["batch_create"] == 3 and failures[0]["kind"] == "transient"
    assert outcomes(run) == planned(run)


def test_a_failed_round_is_resubmitted_and_then_answered(run, server):
    server.batch_fail = True
    runner = batch(run)
    runner.submit(runner.engine.pending_calls())
    runner.wait_and_merge()  # the job failed: its requests stay pending, nothing written
    assert lines(run / "failures.jsonl") == [] and lines(run / "responses.jsonl") == []
    server.batch_fail = False
    batch(run).run_all()
    assert server.stats["batch_create"] == 2
    assert lines(run / "failures.jsonl") == [] and outcomes(run) == planned(run)


def test_status_and_cancel(run, server):
    server.batch_steps = 1000  # the job stays pending
    runner = batch(run)
    runner.submit(runner.engine.pending_calls())
    result = CliRunner().invoke(cli, ["status", str(run)])
    assert result.exit_code == 0 and "batches/" in result.output and "PENDING" in result.output
    result = CliRunner().invoke(cli, ["cancel", str(run)])
    assert result.exit_code == 0 and "cancelled 1 job" in result.output
    assert server.stats["batch_cancel"] == 1
    batch(run).run_all()  # the cancelled job's requests become failures, with the reason
    assert outcomes(run) == planned(run)
    assert "JOB_STATE_CANCELLED" in lines(run / "failures.jsonl")[0]["reason"]


def test_a_job_created_before_its_name_was_saved_is_found_by_display_name(run, server):
    runner = batch(run)
    runner.submit(runner.engine.pending_calls())
    jobs = load_jobs(run)
    jobs[0]["name"] = None  # as if killed right after create
    (run / "batch_jobs.json").write_text(json.dumps(jobs))
    batch(run).run_all()
    assert server.stats["batch_create"] == 1 and outcomes(run) == planned(run)


def test_kill_while_the_job_runs_then_reattach(run, tmp_path):
    fake = FakeGemini(api_key=KEY, batch_steps=10_000)
    env = {**os.environ, "GEMINI_API_KEY": KEY}
    cmd = [
        sys.executable,
        "-m",
        "dermasynth_builder",
        "generate",
        str(run),
        "--mode",
        "batch",
        "--poll-interval",
        "0.05",
    ]
    with fake:
        env["GOOGLE_GEMINI_BASE_URL"] = fake.url
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not any(j["name"] for j in load_jobs(run)) or fake.stats["batch_get"] < 3:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        fake.batch_steps = 2  # the job finishes soon
        final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    assert fake.stats["batch_create"] == 1  # re-attached, not submitted again
    assert outcomes(run) == planned(run)
