"""The Gemini backend through the real google-genai client against a fake server on 127.0.0.1."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from click.testing import CliRunner

from dermasynth_builder.backends import BackendConfigError
from dermasynth_builder.cli import cli
from dermasynth_builder.engine import Engine, GenerateOptions
from dermasynth_builder.images import prepare_image
from dermasynth_builder.options import DEFAULT_MODEL
from dermasynth_builder.paths import sample_root
from dermasynth_builder.plan import make_plan
from tests.support.fake_gemini import FakeGemini
from tests.support.synthetic import draw_lesion, encode_jpeg

KEY = "test-key-3b9f0c1d7e"
FAST = {"retry_base_delay": 0.01, "retry_max_delay": 0.05, "timeout": 5.0}


@pytest.fixture
def server(monkeypatch):
    with FakeGemini(api_key=KEY) as fake:
        monkeypatch.setenv("GEMINI_API_KEY", KEY)
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
        yield fake


def plan(tmp_path, limit=None, sources=("hiba", "pad_ufes_20")):
    run = tmp_path / "run"
    make_plan([(s, sample_root(s)) for s in sources], run, limit=limit)
    return run


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def generate(run, **options):
    return Engine(run, GenerateOptions(backend="gemini", **{**FAST, **options})).run_sync()


def test_answers_parse_and_map_by_property_name(server, tmp_path):
    run = plan(tmp_path)
    progress = generate(run)
    assert progress.responses == 30 and progress.failures == 0
    rows = lines(run / "responses.jsonl")
    requests = {r["id"]: r for r in lines(run / "requests.jsonl")}
    for row in rows:
        # the fake answers "Answer to: <words of the qN line>": the mapping is by property name
        words = requests[row["id"]]["question"].lower().split()[:3]
        assert " ".join(words).rstrip("?,.:") in row["answer"].lower(), (row["answer"], words)
        assert row["model"] == DEFAULT_MODEL and row["usage"]["image_tokens"] > 0
    assert len(server.log) == 15
    for entry in server.log:
        body = entry["body"]
        parts = body["contents"][0]["parts"]
        assert sum("inlineData" in p for p in parts) == 1  # the image goes once per call
        assert body["systemInstruction"]["parts"][0]["text"].startswith("You are")
        schema = body["generationConfig"]["responseSchema"]
        assert sorted(schema["properties"]) == ["q1", "q2"] and sorted(schema["required"]) == [
            "q1",
            "q2",
        ]
        assert body["generationConfig"]["responseMimeType"] == "application/json"
    info = json.loads((run / "run.json").read_text())["generation"]
    assert info["usage"][DEFAULT_MODEL]["input_tokens"] > 0 and info["estimated_cost_usd"] > 0


def test_images_are_rgb_and_downscaled_to_one_tile(tmp_path):
    big = tmp_path / "big.png"
    draw_lesion(1, 1024).convert("RGBA").save(big)
    data, w, h = prepare_image(big, 768)
    assert (w, h) == (768, 768) and data[:2] == b"\xff\xd8"
    small = tmp_path / "small.jpg"
    small.write_bytes(encode_jpeg(draw_lesion(2, 300)))
    assert prepare_image(small, 768)[1:] == (300, 300)


def test_retry_after_is_honoured(server, tmp_path):
    run = plan(tmp_path, limit=1, sources=("hiba",))
    server.enqueue("status", code=429, retry_after=1.0)
    progress = generate(run)
    assert progress.responses == 2 and server.stats["error_429"] == 1
    first, second = server.log
    assert second["time"] - first["time"] >= 1.0  # the server's delay, not our 0.01 s backoff


@pytest.mark.parametrize(
    ("script", "kind", "reason"),
    [
        ([("safety", {})], "final", "SAFETY"),
        ([("blocked", {})], "final", "prompt blocked: PROHIBITED_CONTENT"),
        ([("status", {"code": 400})], "final", "HTTP 400"),
        ([("max_tokens", {})] * 3, "content", "MAX_TOKENS"),
        ([("bad_json", {})] * 3, "content", "invalid JSON"),
        ([("schema_mismatch", {})] * 3, "content", "fails the schema"),
        ([("empty", {})] * 3, "content", "no candidates"),
        ([("status", {"code": 503})] * 3, "transient", "HTTP 503"),
    ],
)
def test_bad_outcomes_end_in_failures_with_reason(server, tmp_path, script, kind, reason):
    run = plan(tmp_path, limit=1, sources=("hiba",))
    for name, kw in script:
        server.enqueue(name, **kw)
    progress = generate(run, max_attempts=3, max_content_attempts=3)
    failures = lines(run / "failures.jsonl")
    assert progress.failures == 2 and len(failures) == 2
    assert {f["kind"] for f in failures} == {kind}
    assert reason in failures[0]["reason"]
    assert len(server.log) == len(script)


@pytest.mark.parametrize(
    "script",
    [
        [("max_tokens", {}), ("bad_json", {})],
        [("drop", {}), ("status", {"code": 500}), ("status", {"code": 504})],
        [("hang", {"seconds": 30})],
    ],
)
def test_recoverable_outcomes_are_retried(server, tmp_path, script):
    run = plan(tmp_path, limit=1, sources=("hiba",))
    for name, kw in script:
        server.enqueue(name, **kw)
    progress = generate(run, timeout=1.0)
    assert progress.responses == 2 and progress.failures == 0
    assert lines(run / "responses.jsonl")[0]["attempts"] == len(script) + 1


def test_missing_key_is_a_one_line_error(tmp_path, monkeypatch):
    run = plan(tmp_path, limit=1, sources=("hiba",))
    with pytest.raises(BackendConfigError, match="GEMINI_API_KEY"):
        Engine(run, GenerateOptions(backend="gemini"))
    result = CliRunner().invoke(cli, ["generate", str(run)])
    assert result.exit_code == 2 and "GEMINI_API_KEY" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_key_never_lands_in_the_run_folder(server, tmp_path, monkeypatch):
    run = plan(tmp_path)
    server.enqueue("status", code=400, message=f"echoing the key {KEY} back")
    result = CliRunner().invoke(cli, ["generate", str(run), "--retry-base-delay", "0.01"])
    assert result.exit_code == 1, result.output  # one call failed for good
    assert KEY not in result.output
    for path in run.rglob("*"):
        assert KEY not in path.read_text(), path
    assert "[redacted]" in (run / "failures.jsonl").read_text()
    # a wrong key is a final failure, not a retry storm, and is not written either
    monkeypatch.setenv("GEMINI_API_KEY", "wrong-key-0000000")
    CliRunner().invoke(cli, ["generate", str(run), "--retry-failed"])
    assert server.stats["auth_failed"] == 1


def test_rpm_limit_holds(monkeypatch, tmp_path):
    # 60 requests per 6 s window = a 600 rpm cap; the engine gets 90% of it (a 6 s window has
    # less slack for client-side jitter than a real 60 s one)
    run = plan(tmp_path, sources=("hiba", "pad_ufes_20", "derm12345", "bcn20000"))
    with FakeGemini(rpm_limit=60, window_seconds=6.0) as fake:
        monkeypatch.setenv("GEMINI_API_KEY", KEY)
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
        progress = generate(run, rpm=540, one_question_per_request=True)
        n = len(lines(run / "requests.jsonl"))
        assert n > 60 and progress.responses == n and fake.stats["rpm_429"] == 0
    # control: without --rpm the same server turns bursts away, and the engine still finishes
    for name in ("responses.jsonl", "failures.jsonl"):
        (run / name).unlink(missing_ok=True)
    with FakeGemini(rpm_limit=60, window_seconds=6.0) as fake:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
        progress = generate(run, one_question_per_request=True, max_attempts=10)
        assert fake.stats["rpm_429"] > 0 and progress.responses == n
    ids = Counter(r["id"] for r in lines(run / "responses.jsonl"))
    assert set(ids.values()) == {1}


def test_per_call_invariants_are_converted_once_and_the_wire_body_is_the_sdks(
    server, tmp_path, monkeypatch
):
    """The SDK converts the request (schema, config, system instruction) once per answer
    shape, not once per call; the body sent is exactly what the SDK's public path sends."""
    from google.genai import models

    from dermasynth_builder.backends.gemini import GeminiBackend

    conversions = []
    real = models._GenerateContentParameters_to_mldev

    def counting(*args, **kwargs):
        conversions.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(models, "_GenerateContentParameters_to_mldev", counting)
    run = plan(tmp_path, sources=("hiba", "pad_ufes_20", "scin"))
    progress = generate(run, concurrency=4)
    shapes = {
        tuple(r.self_instruct for r in reqs)
        for reqs in _groups(run).values()  # the answer shapes the plan holds
    }
    assert progress.calls == len(server.log) > len(shapes)
    assert len(conversions) == len(shapes)  # once per shape, not per call
    wire = {_image_of(e): e["body"] for e in server.log}
    # the same run through the SDK's public path (no cached template): identical bodies
    server.log.clear()
    for name in ("responses.jsonl", "failures.jsonl"):
        (run / name).unlink()
    monkeypatch.setattr(GeminiBackend, "_convert_once", lambda self, call: None)
    generate(run, concurrency=4)
    public = {_image_of(e): e["body"] for e in server.log}
    assert wire == public


def _groups(run):
    from dermasynth_builder.run import RunFolder

    groups = {}
    for req in RunFolder(run).requests():
        groups.setdefault((req.source, req.image_id), []).append(req)
    return groups


def _image_of(entry):
    return entry["body"]["contents"][0]["parts"][0]["inlineData"]["data"][:200] + str(
        entry["body"]["contents"][0]["parts"][1]["text"]
    )
