"""A fake Gemini API server that the real google-genai client can talk to.

Tests and benchmarks use it to exercise rate limits, retries, timeouts and crash-safe resume
without a network or an API key. Stdlib only (plus Pillow for image sizes). The Batch API and
Files API live in ``fake_gemini_batch``; request and response bodies in ``fake_gemini_wire``;
structured-output answers in ``fake_gemini_schema``.

It speaks today's API: ``GET models/{name}`` (404 for a model it does not serve, as for a shut
down one), Gemini 3.x image tokens by ``mediaResolution`` (request-wide or per part, HIGH by
default) and 2.x by 768 px tiles, and thinking: 3.x models think by default, ``thinkingConfig``
sets a level or a budget, and usage reports ``thoughtsTokenCount``. Behaviour is keyed on the
model name here on purpose: the fake plays the server, which knows its own models.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
import uuid
from typing import Any

from tests.support.fake_gemini_batch import BatchFiles
from tests.support.fake_gemini_schema import SchemaFaker
from tests.support.fake_gemini_wire import (
    SAFETY_RATINGS,
    Reply,
    error_reply,
    inline_images,
    inspect_body,
    prompt_tokens,
    response_body,
    thinking_kind,
    thought_tokens,
)
from tests.support.localserver import LocalHandler, LocalHTTPServer
from tests.support.scripted import ScriptedServer, question_lines, sentence

# An optional prefix is kept because the SDK keeps any path in base_url.
_ROUTE = re.compile(r"^(?:/.*)?/(v1|v1beta|v1alpha)/models/([^/:]+):([A-Za-z]+)$")
_MODEL = re.compile(r"^(?:/.*)?/(v1|v1beta|v1alpha)/models/([^/:]+)$")
# What the fake serves by default: today's 3.x models, plus the paper's 2.0 Flash (still
# answered here so tests can reproduce the paper) and 2.5 Flash-Lite.
SERVED_MODELS = (
    "gemini-3.1-flash-lite",
    "gemini-3.5-flash-lite",
    "gemini-3.5-flash",
    "gemini-3.6-flash",
    "gemini-3.7-flash",
    "gemini-3.8-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.0-flash",
)
# "raw": a 200 whose body is the given bytes as they are (invalid UTF-8, a huge body)
_KINDS = set(
    "ok status safety max_tokens blocked bad_json schema_mismatch empty hang drop raw".split()
)
_COUNTERS = "requests ok rpm_429 auth_failed count_tokens model_get".split() + sorted(
    _KINDS - {"ok", "status"}
)
_COUNTERS += "batch_create batch_get batch_cancel file_upload file_download".split()


class _Handler(LocalHandler):
    server: LocalHTTPServer[FakeGemini]
    json_type = "application/json; charset=UTF-8"

    def do_POST(self) -> None:
        raw = self._read_body()
        if self._batch_files(raw):
            return
        match = _ROUTE.match(self.path.split("?", 1)[0])
        if not match or match[3] not in ("generateContent", "countTokens"):
            return self._reply(error_reply(404, f"Fake Gemini does not serve {self.path}."))
        headers = self._lower_headers()
        self._reply(self.server.fake._handle(match[3], match[1], match[2], self.path, headers, raw))

    def do_GET(self) -> None:
        if self._batch_files(self._read_body()):
            return
        match = _MODEL.match(self.path.split("?", 1)[0])
        if match and self.command == "GET":
            headers = self._lower_headers()
            return self._reply(self.server.fake._get_model(match[2], headers))
        self._reply(error_reply(404, f"Fake Gemini does not serve {self.path}."))

    do_PUT = do_DELETE = do_PATCH = do_GET

    def _batch_files(self, raw: bytes) -> bool:
        """Serve a Batch/Files API route; False when the path is not one of them."""
        headers = self._lower_headers()
        reply = self.server.fake._batch_files.route(self.command, self.path, headers, raw)
        if reply is not None:
            self._reply(reply)
        return reply is not None


class FakeGemini(ScriptedServer):
    """Serve generateContent/countTokens on 127.0.0.1 with scripted and random failures."""

    handler = _Handler
    kinds = frozenset(_KINDS)
    counters = _COUNTERS

    def __init__(
        self,
        *,
        latency: float = 0.0,
        latency_jitter: float = 0.0,
        rpm_limit: int | None = None,
        error_rates: dict[int, float] | None = None,
        retry_after: float | None = None,
        seed: int = 0,
        api_key: str | None = None,
        answer_words: int = 40,
        port: int = 0,
        keep_image_data: bool = True,
        window_seconds: float = 60.0,
        batch_steps: int = 2,
        batch_error_rate: float = 0.0,
        batch_fail: bool = False,
        batch_error_key: str = "error",
        models: tuple[str, ...] | list[str] = SERVED_MODELS,
    ) -> None:
        super().__init__(
            latency=latency,
            latency_jitter=latency_jitter,
            rpm_limit=rpm_limit,
            error_rates=error_rates,
            retry_after=retry_after,
            seed=seed,
            api_key=api_key,
            answer_words=answer_words,
            port=port,
            keep_image_data=keep_image_data,
            window_seconds=window_seconds,
        )
        self._ok_times: list[float] = []
        self.models = set(models)  # read live: a test may retire a model while running
        # Batch jobs advance one step per batches.get poll (PENDING, then RUNNING, then done);
        # read live, so a test may change them while jobs exist.
        self.batch_steps, self.batch_error_rate = batch_steps, batch_error_rate
        self.batch_fail = batch_fail
        # Field of a failed line in the output JSONL: "error" (what real clients parse) or
        # "status" (the docs speak of "a status object"), so clients can be tested with both.
        self.batch_error_key = batch_error_key
        self._batch_files = BatchFiles(self, error_reply, seed)
        # Jobs and files outlive stop()/start(), so a restarted client can re-attach by name.
        self.batches: dict[str, dict[str, Any]] = self._batch_files.jobs  # id -> job info
        self.files: dict[str, dict[str, Any]] = self._batch_files.files  # id -> File resource
        self.batch_faults = self._batch_files.faults  # e.g. batch_faults.add("get", 503)
        self.batch_requests = self._batch_files.requests_seen  # config of each batch request

    # -- scripting and metrics ---------------------------------------------------------------
    def accepted_per_minute(self) -> float:
        """Ok responses per minute between the first and last ok (0.0 with fewer than two)."""
        with self._lock:
            times = list(self._ok_times)
        if len(times) < 2:
            return 0.0
        span = times[-1] - times[0]
        return (len(times) - 1) * 60.0 / span if span > 0 else math.inf

    def file_bytes(self, name: str) -> bytes:
        """Content of an uploaded or batch output file (``files/<id>`` or ``<id>``)."""
        return self._batch_files.file_bytes(name)

    def _bump(self, key: str, entry: dict[str, Any] | None = None) -> None:
        with self._lock:
            self.stats[key] += 1
            if key == "ok":
                self._ok_times.append(time.monotonic())
            if entry is not None:
                entry["outcome"] = key

    # -- request handling --------------------------------------------------------------------
    def _get_model(self, model: str, headers: dict[str, str]) -> Reply:
        """``models.get``: the Model resource, 404 for a model not served, 403 for a bad key."""
        with self._lock:
            self.stats["model_get"] += 1
        if self.api_key is not None and headers.get("x-goog-api-key") != self.api_key:
            self._bump("auth_failed")
            return error_reply(403, "Method doesn't allow unregistered callers (bad API key).")
        if model not in self.models:
            return error_reply(404, f"models/{model} is not found for API version v1beta.")
        thinks = thinking_kind(model)
        body = {
            "name": f"models/{model}",
            "displayName": model,
            "inputTokenLimit": 1048576,
            "outputTokenLimit": 65536,
            "supportedGenerationMethods": [
                "generateContent",
                "countTokens",
                "batchGenerateContent",
            ],
            "thinking": thinks is not None,
        }
        return 200, body, {}

    def _handle(
        self, method: str, version: str, model: str, path: str, headers: dict[str, str], raw: bytes
    ) -> Reply | None:
        """Answer one request; None means drop the connection without a response."""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return error_reply(400, "Invalid JSON payload received.")
        images = inline_images(body)
        sizes, unreadable, prompt = inspect_body(body, strip=not self.keep_image_data)
        img_tokens, txt_tokens = prompt_tokens(model, body, sizes, unreadable, prompt)
        if method == "countTokens":
            self._bump("count_tokens")
            return 200, {"totalTokens": img_tokens + txt_tokens}, {}
        key = headers.pop("x-goog-api-key", None)
        entry = {
            "path": path,
            "model": model,
            "api_version": version,
            "headers": headers,
            "body": body,
            "time": time.monotonic(),
            "image_sizes": sizes,
            # the decoded image bytes and their mime types, to compare with what was on disk
            "images": images if self.keep_image_data else [],
        }
        with self._lock:
            self.stats["requests"] += 1
            self.log.append(entry)
        if self.api_key is not None and key != self.api_key:
            self._bump("auth_failed", entry)
            return error_reply(403, "Method doesn't allow unregistered callers (bad API key).")
        if model not in self.models:
            self._bump("error_404", entry)
            return error_reply(404, f"models/{model} is not found for API version {version}.")
        with self._lock:
            delay = self.latency + self._rng.uniform(-1.0, 1.0) * self.latency_jitter
        if self._stop.wait(max(0.0, delay)):
            return None
        with self._lock:
            scripted = self._script.popleft() if self._script else None
        kind, kw = scripted or self._gate(entry)
        if kind == "rpm_429":
            return error_reply(429, "Resource has been exhausted (fake RPM limit).", kw["wait"])
        if kind == "status":
            code = int(kw.get("code", 500))
            default = self.retry_after if code in (429, 503) else None
            self._bump(f"error_{code}", entry)
            return error_reply(code, kw.get("message", ""), kw.get("retry_after", default))
        text, usage, meta = self._draft(model, body, sizes, unreadable, prompt)

        def answer(out: str | None, finish: str = "STOP") -> Reply:
            return 200, response_body(out, finish, usage, meta), {}

        if kind == "hang":
            self._bump("hang", entry)
            return None if self._stop.wait(float(kw.get("seconds", 30.0))) else answer(text)
        self._bump(kind, entry)
        if kind == "drop":
            return None
        if kind == "raw":
            return 200, bytes(kw["body"]), {"Content-Type": self.handler.json_type}
        if kind == "safety":
            return answer(None, "SAFETY")
        if kind == "max_tokens":
            return answer(text[: len(text) // 2], "MAX_TOKENS")
        if kind == "bad_json":
            return answer(kw.get("text", f"```json\n{text}\n```"))
        if kind == "schema_mismatch":
            return answer(kw.get("text", '{"unexpected": 5}'))
        if kind == "blocked":
            feedback = {"blockReason": "PROHIBITED_CONTENT", "safetyRatings": SAFETY_RATINGS}
            return 200, {"promptFeedback": feedback, "usageMetadata": usage, **meta}, {}
        if kind == "empty":
            return 200, {"candidates": []}, {}
        return answer(text)  # "ok"

    def _draft(
        self,
        model: str,
        body: dict[str, Any],
        sizes: list[tuple[int, int]],
        unreadable: int,
        prompt: str,
    ) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """Answer text, prompt-side usageMetadata and response metadata for one request."""
        img_tokens, txt_tokens = prompt_tokens(model, body, sizes, unreadable, prompt)
        config = body.get("generationConfig") or {}
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        if schema:
            faker = SchemaFaker(schema, question_lines(prompt), self.answer_words)
            text = json.dumps(faker.value(schema))
        else:
            text = sentence("answer", None, self.answer_words)
        details = [{"modality": "IMAGE", "tokenCount": img_tokens}] if sizes or unreadable else []
        usage: dict[str, Any] = {
            "promptTokenCount": img_tokens + txt_tokens,
            "promptTokensDetails": [*details, {"modality": "TEXT", "tokenCount": txt_tokens}],
        }
        thoughts = thought_tokens(model, config)
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        meta = {"modelVersion": model, "responseId": f"fake-{uuid.uuid4().hex[:20]}"}
        return text, usage, meta

    def ok_response(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        """The plain successful generateContent answer; batch items reuse it. No side effects."""
        sizes, unreadable, prompt = inspect_body(body, strip=False)
        text, usage, meta = self._draft(model, body, sizes, unreadable, prompt)
        return response_body(text, "STOP", usage, meta)


def main(argv: list[str] | None = None) -> None:
    """Serve until Ctrl-C, for manual runs against the CLI."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--latency-jitter", type=float, default=0.0)
    parser.add_argument("--rpm", dest="rpm_limit", type=int, default=None)
    parser.add_argument(
        "--error-rate", dest="error_rates", action="append", default=[], metavar="CODE=P"
    )
    parser.add_argument("--retry-after", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--answer-words", type=int, default=40)
    parser.add_argument("--batch-steps", type=int, default=2)
    parser.add_argument("--batch-error-rate", type=float, default=0.0)
    parser.add_argument("--batch-fail", action="store_true")
    parser.add_argument("--batch-error-key", choices=["error", "status"], default="error")
    parser.add_argument(
        "--no-image-data", dest="keep_image_data", action="store_false", help="log sizes only"
    )
    kw = vars(parser.parse_args(argv))
    kw["error_rates"] = {int(c): float(p) for c, p in (i.split("=", 1) for i in kw["error_rates"])}
    fake = FakeGemini(**kw)
    with fake:
        print(f"Fake Gemini listening on {fake.url} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    stats = {**fake.stats, "accepted_per_minute": fake.accepted_per_minute()}
    stats["image_bytes"] = sum(  # what the inline images weighed on the wire (base64 decoded)
        int(part["inlineData"]["data"][1:].split()[0]) * 3 // 4
        for entry in fake.log
        for part in entry["body"].get("contents", [{}])[0].get("parts", [])
        if str((part.get("inlineData") or {}).get("data", "")).startswith("<")
    )
    print(json.dumps(stats, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
