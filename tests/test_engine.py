"""The engine with a scripted backend: grouping, retries, failures, exactly-once, resume."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from dermasynth_builder.backends import ContentError, FinalError, TransientError
from dermasynth_builder.engine import Engine, GenerateOptions, redact
from dermasynth_builder.paths import sample_root
from dermasynth_builder.plan import make_plan

from .fakes import FakeBackend

FAST = dict(retry_base_delay=0.0, retry_max_delay=0.0)


@pytest.fixture
def run(tmp_path):
    path = tmp_path / "run"
    make_plan([("hiba", sample_root("hiba")), ("pad_ufes_20", sample_root("pad_ufes_20"))], path)
    return path


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def planned_ids(run):
    return [r["id"] for r in lines(run / "requests.jsonl")]


def outcome_ids(run):
    return Counter(
        r["id"] for name in ("responses.jsonl", "failures.jsonl") for r in lines(run / name)
    )


def engine(run, backend, **options):
    return Engine(run, GenerateOptions(backend="offline", **{**FAST, **options}), backend=backend)


def test_one_call_per_image_and_every_id_once(run):
    fake = FakeBackend()
    progress = engine(run, fake).run_sync()
    assert len(fake.history) == 15 and all(len(c.requests) == 2 for c in fake.history)
    assert progress.responses == 30 and progress.failures == 0
    assert outcome_ids(run) == Counter(planned_ids(run))
    rows = lines(run / "responses.jsonl")
    # answers map to requests by position in the schema, never by an echoed id
    assert all(r["answer"] == f"answer {r['id']}" for r in rows)
    selfish = [r for r in rows if r["self_instruct"]]
    assert all(r["question"] == "my own question?" and r["instruction"] for r in selfish)
    # a call's usage is split over its requests and adds up exactly
    assert sum(r["usage"]["input_tokens"] for r in rows) == 15 * 600
    info = json.loads((run / "run.json").read_text())["generation"]
    assert info["counts"] == {"planned": 30, "responses": 30, "failures": 0, "calls": 15}


def test_one_question_per_request_reproduces_the_paper(run):
    fake = FakeBackend()
    engine(run, fake, one_question_per_request=True).run_sync()
    assert len(fake.history) == 30 and all(len(c.requests) == 1 for c in fake.history)


def test_transient_errors_are_retried_then_succeed(run):
    fake = FakeBackend()
    fake.enqueue(
        TransientError("429", retry_after=0.0, rate_limited=True),
        TransientError("503"),
        image_id=first_image(run),
    )
    progress = engine(run, fake).run_sync()
    assert progress.transient_retries == 2 and progress.failures == 0
    assert len(fake.history) == 17
    attempts = {r["image_id"]: r["attempts"] for r in lines(run / "responses.jsonl")}
    assert attempts[first_image(run)] == 3
    assert set(attempts.values()) == {1, 3}


def first_image(run):
    return lines(run / "requests.jsonl")[0]["image_id"]


def test_exhausted_attempts_fail_with_the_last_error(run):
    fake = FakeBackend()
    fake.enqueue(
        *[TransientError(f"HTTP 500 try {i}") for i in range(3)], image_id=first_image(run)
    )
    progress = engine(run, fake, max_attempts=3).run_sync()
    failures = lines(run / "failures.jsonl")
    assert progress.failures == 2 and len(failures) == 2
    assert {f["reason"] for f in failures} == {"HTTP 500 try 2"}
    assert {f["kind"] for f in failures} == {"transient"} and failures[0]["attempts"] == 3
    assert outcome_ids(run) == Counter(planned_ids(run))


def test_content_errors_are_bounded_and_final_errors_not_retried(run):
    fake = FakeBackend()
    requests = lines(run / "requests.jsonl")
    first, last = requests[0]["image_id"], requests[-1]["image_id"]
    fake.enqueue(
        ContentError("finish reason MAX_TOKENS"),
        ContentError("invalid JSON"),
        ContentError("invalid JSON"),
        image_id=first,
    )
    fake.enqueue(FinalError("finish reason SAFETY"), image_id=last)
    progress = engine(run, fake, max_content_attempts=3).run_sync()
    failures = lines(run / "failures.jsonl")
    assert Counter(f["kind"] for f in failures) == {"content": 2, "final": 2}
    assert progress.content_retries == 2
    assert outcome_ids(run) == Counter(planned_ids(run))


def test_hung_call_times_out_and_is_retried(run):
    fake = FakeBackend()
    fake.enqueue("hang")
    progress = engine(run, fake, timeout=0.2, concurrency=4).run_sync()
    assert progress.transient_retries == 1 and progress.failures == 0


def test_resume_does_only_the_rest_and_ignores_a_torn_line(run):
    engine(run, FakeBackend()).run_sync()
    responses = run / "responses.jsonl"
    kept = responses.read_text().splitlines(keepends=True)[:11]
    responses.write_text("".join(kept) + kept[11 - 1][:40])  # 11 whole lines and a torn one
    fake = FakeBackend()
    progress = engine(run, fake).run_sync()
    assert progress.done_before == 11 and progress.responses == 19
    assert outcome_ids(run) == Counter(planned_ids(run))
    # the half-finished image is asked only its missing question
    assert sorted(len(c.requests) for c in fake.history)[0] == 1
    again = FakeBackend()
    engine(run, again).run_sync()
    assert again.history == [] and outcome_ids(run) == Counter(planned_ids(run))


def test_retry_failed_moves_ids_from_failures_to_responses(run):
    fake = FakeBackend()
    fake.enqueue(FinalError("HTTP 400 INVALID_ARGUMENT: bad image"), image_id=first_image(run))
    engine(run, fake).run_sync()
    assert len(lines(run / "failures.jsonl")) == 2
    nothing = FakeBackend()
    engine(run, nothing).run_sync()
    assert nothing.history == []  # failures are final until asked
    retry = FakeBackend()
    engine(run, retry, retry_failed=True).run_sync()
    assert len(retry.history) == 1
    assert lines(run / "failures.jsonl") == []
    assert outcome_ids(run) == Counter(planned_ids(run))


def test_secrets_are_redacted(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "sk-very-secret-123")
    assert redact("bad key sk-very-secret-123 given") == "bad key [redacted] given"


def test_offline_backend_completes_a_plan_without_network(run):
    progress = Engine(run, GenerateOptions(backend="offline")).run_sync()
    assert progress.responses == 30
    rows = lines(run / "responses.jsonl")
    assert {r["model"] for r in rows} == {"offline"}
    info = json.loads((run / "run.json").read_text())["generation"]
    assert info["usage"]["offline"]["image_tokens"] > 0 and info["estimated_cost_usd"] > 0
