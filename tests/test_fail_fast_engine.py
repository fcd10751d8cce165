"""Issue 11, the engine's side: every bad answer and every outage ends in a recorded failure or
one line and an honest exit code, driven end to end through the CLI against the fake servers
on 127.0.0.1. Each test checks that no request id is lost or recorded twice."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import zlib
from collections import Counter

import pytest
from click.testing import CliRunner

from dermasynth_builder.cli import cli
from dermasynth_builder.limits import OverBudget, RateLimiter
from dermasynth_builder.paths import sample_root
from dermasynth_builder.plan import make_plan
from tests.support.fake_gemini import FakeGemini
from tests.support.fake_openai import FakeOpenAI

KEY = "test-key-failfast-7731"


@pytest.fixture(autouse=True)
def _local_only(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def gemini(monkeypatch):
    with FakeGemini(api_key=KEY) as fake:
        monkeypatch.setenv("GEMINI_API_KEY", KEY)
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
        yield fake


def plan(tmp_path, limit=4, sources=("hiba",)):
    run = tmp_path / "run"
    make_plan([(s, sample_root(s)) for s in sources], run, limit=limit)
    return run


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def planned(run):
    return [r["id"] for r in lines(run / "requests.jsonl")]


def outcomes(run) -> Counter:
    return Counter(r["id"] for n in ("responses.jsonl", "failures.jsonl") for r in lines(run / n))


def generate(run, *extra):
    args = ["generate", str(run), "--retry-base-delay", "0.01", "--timeout", "10", *extra]
    return CliRunner().invoke(cli, args)


def error_lines(result) -> list[str]:
    assert "Traceback" not in result.output, result.output
    return [x for x in result.output.splitlines() if x.startswith("error:")]


def gemini_body(text: str) -> bytes:
    """A generateContent answer whose text is ``text``, as raw bytes (escapes kept)."""
    return (
        b'{"candidates":[{"content":{"role":"model","parts":[{"text":"'
        + text.encode("utf-8", "surrogatepass")
        + b'"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":5,'
        b'"candidatesTokenCount":5},"modelVersion":"gemini-3.1-flash-lite"}'
    )


# -- (1) a bad answer is a recorded failure, never a crash ---------------------------------


def test_bad_unicode_and_huge_answers_are_content_failures_and_the_run_goes_on(gemini, tmp_path):
    run = plan(tmp_path, limit=5)
    gemini.enqueue("raw", body=gemini_body("a lone surrogate \\ud800 here"))
    gemini.enqueue("raw", body=gemini_body('{\\"q1\\": {\\"answer\\": \\"x\\ud800\\"}}'))
    gemini.enqueue(
        "raw", body=gemini_body("bytes that are no UTF-8 \xff\xfe").replace(b"\xc3", b"")
    )
    gemini.enqueue("raw", body=gemini_body("x" * 300_000))
    result = generate(run, "--concurrency", "1", "--max-content-attempts", "1")
    assert result.exit_code == 1, result.output  # some requests failed; the run finished
    assert not error_lines(result)
    failures = lines(run / "failures.jsonl")
    assert {f["kind"] for f in failures} == {"content"} and len(failures) == 8
    reasons = " | ".join(sorted({f["reason"] for f in failures}))
    assert "lone surrogate" in reasons and "invalid UTF-8" in reasons and "too long" in reasons
    assert len(lines(run / "responses.jsonl")) == 2  # the fifth image was answered
    assert outcomes(run) == Counter(planned(run))
    for name in ("responses.jsonl", "failures.jsonl"):
        (run / name).read_text(encoding="utf-8")  # valid UTF-8 throughout


def test_a_huge_openai_body_is_not_read_past_the_cap(tmp_path):
    run = plan(tmp_path, limit=2)
    with FakeOpenAI() as fake:
        fake.enqueue("raw", body=b'{"choices": [], "pad": "' + b"x" * (17 * 2**20) + b'"}')
        fake.enqueue("raw", body=b'{"choices":[{"message":{"content":"\xff\xfe"}}]}')
        result = generate(
            run, "--backend", "openai", "--base-url", fake.url + "/v1", "--model", "fake-vlm",
            "--concurrency", "1", "--max-content-attempts", "1",
        )  # fmt: skip
    assert result.exit_code == 1, result.output
    reasons = sorted(f["reason"] for f in lines(run / "failures.jsonl"))
    assert any("over 16 MiB" in r for r in reasons), reasons
    assert any("not valid UTF-8" in r for r in reasons), reasons
    assert outcomes(run) == Counter(planned(run))


# -- (3) the limiter never stalls -----------------------------------------------------------


def test_a_waiting_call_wakes_when_budget_is_returned():
    async def scenario() -> None:
        bucket = RateLimiter(6)  # 0.1 unit a second: a waiter would sleep ~10 s
        await bucket.acquire(1)
        waiter = asyncio.create_task(bucket.acquire(1))
        await asyncio.sleep(0)  # let it start waiting
        assert not waiter.done()
        bucket.settle(1, 0)  # the first call used nothing: its unit comes back
        await asyncio.wait_for(waiter, 2.0)  # woken at once, not after the full wait
        with pytest.raises(OverBudget, match="more than the whole budget of 6 per minute"):
            await bucket.acquire(7)

    asyncio.run(scenario())


def test_a_call_larger_than_the_whole_tpm_budget_fails_with_a_clear_reason(gemini, tmp_path):
    run = plan(tmp_path, limit=2)
    result = generate(run, "--tpm", "500")  # one image alone bills 1,120 tokens
    assert result.exit_code == 1, result.output
    failures = lines(run / "failures.jsonl")
    assert len(failures) == 4 and all("over the token budget" in f["reason"] for f in failures)
    assert "500 per minute" in failures[0]["reason"]
    assert gemini.stats["requests"] == 0  # never sent
    assert outcomes(run) == Counter(planned(run))


# -- (4) fail fast on what cannot get better -------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (403, "Permission denied: the caller does not have permission"),
        (400, "API key not valid. Please pass a valid API key."),
        (404, "models/gemini-3.1-flash-lite is not found for API version v1beta"),
    ],
)
def test_a_refused_key_or_missing_model_stops_at_the_first_answer(gemini, tmp_path, code, message):
    run = plan(tmp_path, limit=12, sources=("hiba", "pad_ufes_20"))
    gemini.enqueue("status", code=code, message=message)
    result = generate(run, "--concurrency", "1")
    assert result.exit_code == 2, result.output
    (line,) = error_lines(result)
    assert message in line and f"HTTP {code}" in line
    assert gemini.stats["requests"] == 1  # stopped at the first such answer
    assert lines(run / "failures.jsonl") == []  # nothing recorded as failed
    # fixed (here: the server recovers), a rerun does everything, each id once
    result = generate(run)
    assert result.exit_code == 0, result.output
    assert outcomes(run) == Counter(planned(run))


def test_consecutive_connection_failures_stop_the_run(tmp_path, monkeypatch):
    run = plan(tmp_path, limit=12, sources=("hiba", "pad_ufes_20"))
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", f"http://127.0.0.1:{port}")
    result = generate(run, "--max-connection-failures", "5", "--concurrency", "2")
    assert result.exit_code == 2, result.output
    (line,) = error_lines(result)
    assert "5 connection failures in a row" in line and "ConnectError" in line
    assert lines(run / "failures.jsonl") == [] and lines(run / "responses.jsonl") == []


# -- (7) logs that work unattended ------------------------------------------------------------


def test_progress_lines_when_stderr_is_not_a_terminal(tmp_path):
    run = plan(tmp_path, limit=6)
    with FakeGemini(latency=0.05) as fake:
        env = {"GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": fake.url}
        result = CliRunner(env=env).invoke(
            cli, ["generate", str(run), "--concurrency", "1", "--progress-every", "0.02"]
        )
    assert result.exit_code == 0, result.output
    progress = [x for x in result.output.splitlines() if x.startswith("generate: ")]
    assert len(progress) >= 2, result.output  # one at the start at least, one at the end
    assert progress[-1].startswith("generate: 12/12 done (100.0%)")
    for part in ("requests/min", "0 failed", "cost $", "ETA"):
        assert part in progress[-1]


# -- (2) bounded inputs at generate time ------------------------------------------------------


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming ``width`` x ``height`` with almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1024))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("model", ["gemini-3.1-flash-lite", "gemini-2.0-flash"])
def test_an_image_over_the_pixel_limit_is_skipped_with_a_reason(gemini, tmp_path, model):
    src = tmp_path / "src"
    import shutil

    shutil.copytree(sample_root("hiba"), src)
    run = tmp_path / "run"
    make_plan([("hiba", src)], run, limit=3)
    victim = lines(run / "requests.jsonl")[0]
    (src / victim["image_path"]).write_bytes(bomb_png(30000, 30000))  # 900 MP, ~1 KB
    result = generate(run, "--model", model)
    assert result.exit_code == 1, result.output
    failures = lines(run / "failures.jsonl")
    assert {f["image_id"] for f in failures} == {victim["image_id"]}
    assert all(f["kind"] == "final" and "image too large" in f["reason"] for f in failures)
    assert outcomes(run) == Counter(planned(run))
