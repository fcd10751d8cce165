"""The OpenAI-compatible backend through the engine against a fake server on 127.0.0.1."""

from __future__ import annotations

import email.utils
import json
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from dermasynth_builder.backends import BackendConfigError, ContentError
from dermasynth_builder.backends.base import Call, parse_answers
from dermasynth_builder.backends.openai_compat import (
    SCHEMA_HINT,
    OpenAIBackend,
    extract_json,
    retry_after,
)
from dermasynth_builder.cli import cli
from dermasynth_builder.engine import Engine, GenerateOptions
from dermasynth_builder.paths import sample_root
from dermasynth_builder.plan import make_plan
from dermasynth_builder.run import Request
from tests.support.fake_openai import FakeOpenAI

KEY = "sk-test-5c2e8a41f09d"
MODEL = "fake-vlm"
FAST = {"retry_base_delay": 0.01, "retry_max_delay": 0.05, "timeout": 5.0}
ALL = ("hiba", "pad_ufes_20", "derm12345", "bcn20000", "scin")


@pytest.fixture(autouse=True)
def _local_only(monkeypatch):
    """A proxy from the environment must never see requests meant for 127.0.0.1."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def server():
    with FakeOpenAI() as fake:
        yield fake


def plan(tmp_path, limit=None, sources=("hiba", "pad_ufes_20")):
    run = tmp_path / "run"
    make_plan([(s, sample_root(s)) for s in sources], run, limit=limit)
    return run


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def engine(run, fake, suffix="/v1", **options):
    opts = {"backend": "openai", "model": MODEL, "base_url": fake.url + suffix, **FAST, **options}
    return Engine(run, GenerateOptions(**opts))


def generate(run, fake, **options):
    return engine(run, fake, **options).run_sync()


def cli_generate(run, fake, *extra):
    args = ["generate", str(run), "--backend", "openai", "--base-url", fake.url + "/v1"]
    args += ["--model", MODEL, "--retry-base-delay", "0.01", *extra]
    return CliRunner().invoke(cli, args)


def n_calls(run):
    """One call per planned image (two questions each, whatever the plan now holds)."""
    return len({(r["source"], r["image_id"]) for r in lines(run / "requests.jsonl")})


def test_answers_parse_and_map_by_property_name(server, tmp_path):
    run = plan(tmp_path, sources=ALL)
    progress = generate(run, server)
    requests = {r["id"]: r for r in lines(run / "requests.jsonl")}
    assert progress.responses == len(requests) and progress.failures == 0
    rows = lines(run / "responses.jsonl")
    assert sorted(r["id"] for r in rows) == sorted(requests)
    for row in rows:
        # the fake answers "Answer to: <words of the qN line>": the mapping is by property name
        words = requests[row["id"]]["question"].lower().split()[:3]
        assert " ".join(words).rstrip("?,.:") in row["answer"].lower(), (row["answer"], words)
        assert row["backend"] == "openai" and row["model"] == MODEL
        assert row["finish_reason"] == "STOP" and row["usage"]["input_tokens"] > 0
    assert any(r["self_instruct"] and r["question"] != r["instruction"] for r in rows)
    assert len(server.log) == n_calls(run)
    assert {e["path"] for e in server.log} == {"/v1/chat/completions"}
    for entry in server.log:
        body = entry["body"]
        system, user = body["messages"]
        assert system["role"] == "system" and system["content"].startswith("You are")
        image, text = user["content"]
        assert image["type"] == "image_url" and text["type"] == "text"
        assert "q1:" in text["text"] and SCHEMA_HINT not in text["text"]
        spec = body["response_format"]
        assert spec["type"] == "json_schema" and spec["json_schema"]["strict"] is True
        schema = spec["json_schema"]["schema"]
        assert schema["required"] == list(schema["properties"]) == ["q1", "q2"]
        assert body["max_tokens"] == 2048 and body["temperature"] == 0.4 and body["seed"] == 0
        assert body["model"] == MODEL and entry["auth"] is None  # no key set: none sent
    info = json.loads((run / "run.json").read_text())["generation"]
    assert info["backend"] == "openai" and info["counts"]["responses"] == len(requests)


def test_model_comes_from_the_response(tmp_path):
    run = plan(tmp_path, limit=1, sources=("hiba",))
    with FakeOpenAI(served_model="Qwen/Qwen2.5-VL-7B-Instruct") as fake:
        generate(run, fake)
    assert {r["model"] for r in lines(run / "responses.jsonl")} == {"Qwen/Qwen2.5-VL-7B-Instruct"}


def test_image_is_a_jpeg_data_url_within_max_image_side(server, tmp_path):
    run = plan(tmp_path)
    generate(run, server, max_image_side=128)
    sizes = [size for e in server.log for size in e["image_sizes"]]
    assert len(sizes) == 15 and {m for e in server.log for m in e["image_mimes"]} == {"image/jpeg"}
    assert max(max(s) for s in sizes) == 128  # the 240 px sample images were downscaled
    url = server.log[0]["body"]["messages"][1]["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,/9j/")  # base64 of the JPEG magic FF D8 FF


@pytest.mark.parametrize(
    ("suffix", "path"),
    [("/v1", "/v1/chat/completions"), ("/v1/", "/v1/chat/completions"), ("", "/chat/completions")],
)
def test_base_url_is_used_as_given(server, tmp_path, suffix, path):
    run = plan(tmp_path, limit=1, sources=("hiba",))
    assert generate(run, server, suffix=suffix).responses == 2
    assert [e["path"] for e in server.log] == [path]


def test_key_is_sent_only_when_set_and_never_lands_in_the_run_folder(tmp_path, monkeypatch):
    run = plan(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeOpenAI(api_key=KEY) as fake:
        fake.enqueue("status", code=400, message=f"echoing the key {KEY} back")
        result = cli_generate(run, fake)
        assert result.exit_code == 1, result.output  # one call failed for good
        assert KEY not in result.output
        assert {e["auth"] for e in fake.log} == {"Bearer"} and fake.stats["ok"] == 14
        assert KEY not in json.dumps(fake.log, default=str)  # the fake never keeps it either
        for path in run.rglob("*"):
            assert KEY not in path.read_text(), path
        assert "[redacted]" in (run / "failures.jsonl").read_text()
        # a wrong key stops the run at the first answer (401), one line, exit 2: no retry
        # storm, nothing recorded as failed, and the key is not written either
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-000000")
        result = cli_generate(run, fake, "--retry-failed")
        assert result.exit_code == 2 and fake.stats["auth_failed"] == 1, result.output
        errors = [x for x in result.output.splitlines() if x.startswith("error:")]
        assert len(errors) == 1 and "HTTP 401" in errors[0] and "Traceback" not in result.output
        assert lines(run / "failures.jsonl") == []  # the failure given another round: pending
        assert "sk-wrong-key" not in result.output


@pytest.mark.parametrize("header", [{"retry_after": 1.0}, {"retry_after_ms": 1000}])
def test_retry_after_is_honoured(server, tmp_path, header):
    run = plan(tmp_path, limit=1, sources=("hiba",))
    server.enqueue("status", code=429, **header)
    progress = generate(run, server)
    assert progress.responses == 2 and server.stats["error_429"] == 1
    first, second = server.log
    assert second["time"] - first["time"] >= 1.0  # the server's delay, not our 0.01 s backoff


def test_retry_after_parses_seconds_milliseconds_and_dates():
    assert retry_after({"retry-after": "7"}) == 7.0
    assert retry_after({"retry-after-ms": "250", "retry-after": "7"}) == 0.25
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28.0 <= (retry_after({"retry-after": soon}) or 0) <= 30.0
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert retry_after({"retry-after": past}) == 0.0
    assert retry_after({"retry-after": "soon-ish"}) is None and retry_after({}) is None


def test_length_is_a_content_retry_then_success(server, tmp_path):
    run = plan(tmp_path, limit=1, sources=("hiba",))
    server.enqueue("length")
    progress = generate(run, server)
    assert progress.responses == 2 and progress.content_retries == 1
    assert lines(run / "responses.jsonl")[0]["attempts"] == 2
    assert [e["outcome"] for e in server.log] == ["length", "ok"]


@pytest.mark.parametrize(
    ("script", "kind", "reason"),
    [
        ([("content_filter", {})], "final", "finish reason content_filter"),
        ([("refusal", {})], "final", "model refused"),
        ([("status", {"code": 400, "message": "bad image"})], "final", "HTTP 400: bad image"),
        ([("length", {})] * 3, "content", "finish reason length"),
        ([("bad_json", {})] * 3, "content", "invalid JSON"),
        ([("bad_json", {"text": '{"q1": {"answer": "x"}}'})] * 3, "content", "fails the schema"),
        ([("empty", {})] * 3, "content", "empty answer"),
        ([("not_json", {})] * 3, "transient", "non-JSON response"),
        ([("status", {"code": 503})] * 3, "transient", "HTTP 503"),
    ],
)
def test_bad_outcomes_end_in_failures_with_reason(server, tmp_path, script, kind, reason):
    run = plan(tmp_path, limit=1, sources=("hiba",))
    for name, kw in script:
        server.enqueue(name, **kw)
    progress = generate(run, server, max_attempts=3, max_content_attempts=3)
    failures = lines(run / "failures.jsonl")
    assert progress.failures == 2 and len(failures) == 2
    assert {f["kind"] for f in failures} == {kind}
    assert reason in failures[0]["reason"], failures[0]["reason"]
    assert len(server.log) == len(script)


@pytest.mark.parametrize(
    "script",
    [
        [("drop", {}), ("status", {"code": 500}), ("status", {"code": 504})],
        [("status", {"code": 408}), ("not_json", {}), ("status", {"code": 502})],
        [("hang", {"seconds": 30})],
        [("bad_json", {}), ("empty", {})],
    ],
)
def test_recoverable_outcomes_are_retried(server, tmp_path, script):
    run = plan(tmp_path, limit=1, sources=("hiba",))
    for name, kw in script:
        server.enqueue(name, **kw)
    progress = generate(run, server, timeout=1.0)
    assert progress.responses == 2 and progress.failures == 0
    assert lines(run / "responses.jsonl")[0]["attempts"] == len(script) + 1


def test_fallback_when_the_server_rejects_response_format(tmp_path):
    run = plan(tmp_path)
    with FakeOpenAI(supports_response_format=False) as fake:
        eng = engine(run, fake, concurrency=1)
        progress = eng.run_sync()
        assert progress.responses == 30 and progress.failures == 0
        assert eng.backend.supports_schema is False  # type: ignore[attr-defined]
        # one rejection, retried at once without response_format; never asked again
        assert fake.stats["response_format_rejected"] == 1 and len(fake.log) == 16
        assert "response_format" in fake.log[0]["body"]
        for entry in fake.log[1:]:
            assert "response_format" not in entry["body"] and entry["outcome"] == "ok"
            text = entry["body"]["messages"][1]["content"][1]["text"]
            assert SCHEMA_HINT in text and '"required":["q1","q2"]' in text
    rows = lines(run / "responses.jsonl")
    requests = {r["id"]: r for r in lines(run / "requests.jsonl")}
    assert sorted(r["id"] for r in rows) == sorted(requests)
    assert all(r["attempts"] == 1 for r in rows)  # the fallback is not an engine retry
    for row in rows:  # the fenced JSON inside prose was found and mapped by property name
        words = requests[row["id"]]["question"].lower().split()[:3]
        assert " ".join(words).rstrip("?,.:") in row["answer"].lower()


def test_fallback_under_concurrency_answers_every_id_once(tmp_path):
    run = plan(tmp_path, sources=ALL)
    with FakeOpenAI(supports_response_format=False) as fake:
        progress = generate(run, fake, concurrency=16)
        rejected = fake.stats["response_format_rejected"]
        # only the first wave is turned away
        assert 1 <= rejected <= 16 and fake.stats["ok"] == n_calls(run)
    n = len(lines(run / "requests.jsonl"))
    assert progress.responses == n and progress.failures == 0
    ids = Counter(r["id"] for r in lines(run / "responses.jsonl"))
    assert set(ids.values()) == {1} and len(ids) == n


def test_a_bare_422_is_believed_only_when_the_fallback_gets_through(server, tmp_path):
    run = plan(tmp_path, limit=2, sources=("hiba",))
    # call 1: 422 not naming response_format, then the same 422 without it -> not the schema
    server.enqueue("status", code=422, message="unknown field: seed", times=2)
    eng = engine(run, server, concurrency=1)
    progress = eng.run_sync()
    assert progress.failures == 2 and progress.responses == 2
    assert eng.backend.supports_schema is True  # type: ignore[attr-defined]
    assert ["response_format" in e["body"] for e in server.log] == [True, False, True]
    # a 422 that the schemaless retry gets past does switch the schema off
    server.log.clear()
    server.enqueue("status", code=422, message="Unprocessable Entity")
    eng = engine(run, server, concurrency=1, retry_failed=True)
    assert eng.run_sync().responses == 2
    assert eng.backend.supports_schema is False  # type: ignore[attr-defined]
    assert ["response_format" in e["body"] for e in server.log] == [True, False]


def test_exactly_once_across_responses_and_failures(tmp_path):
    run = plan(tmp_path, sources=ALL)
    planned = {r["id"] for r in lines(run / "requests.jsonl")}
    with FakeOpenAI(error_rates={429: 0.1, 500: 0.1, 503: 0.05}, seed=7) as fake:
        fake.enqueue("content_filter", times=2)
        fake.enqueue("drop")
        progress = generate(run, fake, one_question_per_request=True, max_attempts=10)
        assert fake.stats["error_500"] > 0 and fake.stats["error_429"] > 0
    assert progress.failures == 2 and progress.responses == len(planned) - 2
    responses = Counter(r["id"] for r in lines(run / "responses.jsonl"))
    failures = Counter(f["id"] for f in lines(run / "failures.jsonl"))
    assert set(responses.values()) == set(failures.values()) == {1}
    assert set(responses) | set(failures) == planned and not set(responses) & set(failures)
    # a second round answers the failed ids and still writes every id exactly once
    with FakeOpenAI() as fake:
        progress = generate(run, fake, one_question_per_request=True, retry_failed=True)
        assert len(fake.log) == 2
    responses = Counter(r["id"] for r in lines(run / "responses.jsonl"))
    assert set(responses.values()) == {1} and set(responses) == planned
    assert lines(run / "failures.jsonl") == []


def test_missing_base_url_is_a_one_line_error(tmp_path):
    run = plan(tmp_path, limit=1, sources=("hiba",))
    with pytest.raises(BackendConfigError, match="--base-url"):
        Engine(run, GenerateOptions(backend="openai", model=MODEL))
    with pytest.raises(BackendConfigError, match="http://"):
        Engine(run, GenerateOptions(backend="openai", model=MODEL, base_url="127.0.0.1:8000/v1"))
    result = CliRunner().invoke(
        cli, ["generate", str(run), "--backend", "openai", "--model", MODEL]
    )
    assert result.exit_code == 2 and "--base-url" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["generate", str(run), "--backend", "openai"])
    assert result.exit_code == 2 and "--model" in result.output


def _req(question: str, self_instruct: bool = False) -> Request:
    return Request("r", "hiba", "i", "i.jpg", "q", "t", question, self_instruct=self_instruct)


@pytest.mark.parametrize(
    "text",
    [
        '{"q1": {"answer": "A brown macule."}}',
        'Sure!\n```json\n{"q1": {"answer": "A brown macule."}}\n```\nAnything else?',
        '```\n{"q1": {"answer": "A brown macule."}}\n```',
        '<think>maybe {"q1": {"answer": "wrong"}}</think>{"q1": {"answer": "A brown macule."}}',
        'Using {braces} in prose: {"q1": {"answer": "A brown macule."}} -- done {}',
    ],
)
def test_lenient_parsing_finds_the_json(text):
    call = Call("c", Path("unused.jpg"), [_req("Describe it.")])
    assert parse_answers(call, extract_json(text))[0].answer == "A brown macule."


def test_lenient_parsing_still_reports_broken_json():
    call = Call("c", Path("unused.jpg"), [_req("Describe it.")])
    with pytest.raises(ContentError, match="invalid JSON"):
        parse_answers(call, extract_json('Here: {"q1": {"answer": "cut off'))


def test_prompt_schema_fallback_is_plain_json():
    backend = OpenAIBackend(MODEL, "", base_url="http://127.0.0.1:9/v1")
    requests = [_req("a?"), _req("b", self_instruct=True)]
    call = Call("c", Path("unused.jpg"), requests)
    body = backend.payload(call, "data:image/jpeg;base64,AA==", schema=False)
    assert [m["role"] for m in body["messages"]] == ["user"]  # no system text: no system message
    assert "response_format" not in body
    text = body["messages"][0]["content"][1]["text"]
    schema = json.loads(text.split(SCHEMA_HINT, 1)[1])
    assert "$defs" not in schema and "title" not in json.dumps(schema)
    assert schema["properties"]["q2"]["required"] == ["question", "answer"]
