"""Batch mode through the real google-genai client against the fake server's Batch and Files
endpoints: inline and file input, item errors, cancel, status, a kill while a job runs,
transient failures of create, poll, upload and download, and a merge linear in its items."""

from __future__ import annotations

import ast
import inspect
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from click.testing import CliRunner

from dermasynth_builder import batch as batch_module
from dermasynth_builder import batch_jobs
from dermasynth_builder.backends import gemini_batch, make_backend
from dermasynth_builder.backends.offline import OfflineBackend
from dermasynth_builder.batch import BatchError, BatchOptions, BatchRunner, load_jobs
from dermasynth_builder.cli import cli
from dermasynth_builder.engine import GenerateOptions
from dermasynth_builder.options import DEFAULT_MODEL
from dermasynth_builder.paths import sample_root
from dermasynth_builder.plan import make_plan
from dermasynth_builder.pricing import load_profiles
from tests.support.fake_gemini import FakeGemini

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


def job_requests(server):
    """What the batch requests asked for (generationConfig, per-part media resolution)."""
    return server.batch_requests


def planned(run):
    return Counter(r["id"] for r in lines(run / "requests.jsonl"))


def batch(run, sleep=None, **kw):
    """A runner that waits for nothing: the fake advances a job on each poll, and ``sleep``
    (a list) collects the pauses it asked for instead."""
    options = GenerateOptions(backend="gemini", mode="batch", poll_interval=0.01)
    kw.setdefault("retry_base_delay", 0.001)
    wait = (lambda s: None) if sleep is None else sleep.append
    return BatchRunner(
        run, options, BatchOptions(poll_interval=0.01, **kw), say=lambda s: None, sleep=wait
    )


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
    # the batch price of the model's profile (half the standard one), thought tokens included
    usage = info["usage"][DEFAULT_MODEL]
    price = load_profiles().find(DEFAULT_MODEL).batch
    full = (usage["input_tokens"] * price.input + usage["output_tokens"] * price.output) / 1e6
    assert info["estimated_cost_usd"] == pytest.approx(full, abs=1e-6)
    assert price.input == load_profiles().find(DEFAULT_MODEL).standard.input / 2
    # media resolution and thinking travel in every batch request, as online
    request = job_requests(server)[0]
    assert request["generationConfig"]["mediaResolution"] == "MEDIA_RESOLUTION_HIGH"
    thinking = request["generationConfig"]["thinkingConfig"]
    assert thinking in ({"thinkingLevel": "LOW"}, {"thinking_level": "LOW"})
    # the fake bills LOW thinking at 48 thought tokens per call: they are in the output tokens
    assert usage["output_tokens"] >= 15 * 48 and usage["image_tokens"] == 15 * 1120
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
        sleep=lambda s: None,
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
    with batch(run) as runner:
        runner.submit(runner.engine.pending_calls())
        runner.wait_and_merge()  # the job failed: its requests stay pending, nothing written
    assert lines(run / "failures.jsonl") == [] and lines(run / "responses.jsonl") == []
    server.batch_fail = False
    batch(run).run_all()
    assert server.stats["batch_create"] == 2
    assert lines(run / "failures.jsonl") == [] and outcomes(run) == planned(run)


def test_status_and_cancel(run, server):
    server.batch_steps = 1000  # the job stays pending
    with batch(run) as runner:
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
    with batch(run) as runner:
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


def test_a_503_on_a_poll_is_retried_and_the_run_goes_on(run, server):
    server.batch_faults.add("get", 503, retry_after=7)
    slept = []
    info = batch(run, sleep=slept).run_all()
    assert server.stats["fault_get"] == 1 and server.stats["batch_create"] == 1
    assert outcomes(run) == planned(run) and info["counts"]["failures"] == 0
    assert max(slept) >= 7  # never sooner than the server's Retry-After


@pytest.mark.parametrize("inline", [True, False])
@pytest.mark.parametrize("after", [False, True])
def test_a_503_on_create_is_retried_without_a_second_job(run, server, inline, after):
    # after=True: the job was created, only the reply was lost; the retry must find it
    server.batch_faults.add("create", 503, after=after)
    batch(run, **({} if inline else {"inline_limit": 0})).run_all()
    assert server.stats["fault_create"] == 1
    assert len(server.batches) == 1 and server.stats["batch_create"] == 1
    assert server.stats["file_upload"] == (0 if inline else 1)  # a retried upload reuses its file
    assert outcomes(run) == planned(run)


def test_503s_on_upload_and_download_are_retried(run, server):
    server.batch_faults.add("upload", 503)
    server.batch_faults.add("download", 503, times=2)
    batch(run, inline_limit=0).run_all()
    assert server.stats["fault_upload"] == 1 and server.stats["fault_download"] == 2
    assert server.stats["file_upload"] == 1 and server.stats["file_download"] == 1
    assert server.stats["batch_create"] == 1 and outcomes(run) == planned(run)
    assert not list((run / "batch").glob("*"))  # inputs and downloaded results cleaned up


def test_resubmitting_the_same_file_reuses_the_upload(run, server):
    server.batch_fail = True  # three rounds of the same calls, so the same input bytes
    batch(run, inline_limit=0).run_all()
    assert server.stats["batch_create"] == 3 and server.stats["file_upload"] == 1


def test_an_outage_longer_than_the_retries_stops_in_one_line_and_a_rerun_reattaches(run, server):
    server.batch_faults.add("get", 503, times=3)
    with pytest.raises(BatchError, match=r"polling batches/\S+: HTTP 503 .*gave up after 3"):
        batch(run, retry_attempts=3).run_all()
    batch(run).run_all()
    assert server.stats["batch_create"] == 1 and outcomes(run) == planned(run)


class Counted(list):
    """A list of request ids that counts how many elements are looked at."""

    visits = 0

    def __iter__(self):
        Counted.visits += len(self)
        return super().__iter__()

    def __contains__(self, item):
        Counted.visits += len(self)
        return super().__contains__(item)


def test_merging_is_linear_in_the_items(run, server):
    server.batch_fail, server.batch_steps = True, 0  # a failed job: every item matched back
    with batch(run) as runner:
        runner.submit(runner.engine.pending_calls())
        job = runner.jobs[0]
        job["calls"] = {key: Counted(ids) for key, ids in job["calls"].items()}
        old = [
            {
                **{"display_name": f"old-{n}", "name": f"batches/old-{n}", "merged": True},
                "calls": {f"c{n}-{i}": Counted([f"a{n}-{i}", f"b{n}-{i}"]) for i in range(2000)},
            }
            for n in range(5)
        ]
        runner.jobs[:0] = old  # earlier rounds of a large run
        total = sum(len(ids) for j in runner.jobs for ids in j["calls"].values())
        Counted.visits = 0
        runner.wait_and_merge()
    assert job["merged"] and len(job["calls"]) == 15
    # the rounds are counted once per merge (one pass over every id), plus one save of the
    # ledger; matching each of the 15 items against every job would look at 15 x total ids
    assert Counted.visits <= 3 * total


def test_the_runner_uses_only_public_interfaces():
    for module in (batch_module, batch_jobs, gemini_batch):
        tree = ast.parse(inspect.getsource(module))
        private = [
            ast.unparse(node)
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id == "self")
        ]
        assert private == [], module.__name__
    runner = inspect.getsource(batch_module)
    assert "engine._" not in runner and ".client" not in runner and "google" not in runner


def test_a_backend_without_batch_is_refused():
    with pytest.raises(batch_jobs.BackendConfigError, match="no batch API"):
        batch_jobs.open_batch_api(OfflineBackend("system"))


def test_status_and_cancel_helpers_retry(run, server):
    server.batch_steps = 1000
    with batch(run) as runner:
        runner.submit(runner.engine.pending_calls())
    api = batch_jobs.open_batch_api(make_backend("gemini", "", GenerateOptions().model_dump()))
    retry = batch_jobs.Retrier(BatchOptions(retry_base_delay=0.001), say=lambda s: None)
    jobs = load_jobs(run)
    server.batch_faults.add("get", 503)
    server.batch_faults.add("cancel", 500)
    batch_jobs.refresh_jobs(jobs, api, retry)
    assert jobs[0]["state"] == "JOB_STATE_PENDING"
    assert batch_jobs.cancel_jobs(jobs, api, retry) == [jobs[0]["name"]]
    assert server.stats["fault_cancel"] == 1 and server.stats["batch_cancel"] == 1
