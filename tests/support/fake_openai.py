"""A fake OpenAI-compatible chat-completions server (the API vLLM, Ollama and LM Studio serve).

Tests and benchmarks use it to exercise the ``openai`` backend's retries, structured output and
its fallback for servers without ``response_format`` support, with no network, GPU or key.
Stdlib only (plus Pillow for image sizes); mirrors ``fake_gemini``'s API. Request and
response bodies (errors, images, JSON Schema answers) live in ``fake_openai_wire``.
"""

from __future__ import annotations

import argparse
import json
import re
import time
import uuid
from typing import Any

from tests.support.fake_openai_wire import (
    Reply,
    error_reply,
    fake_value,
    image_tiles,
    inspect_body,
    schema_in_prompt,
)
from tests.support.localserver import LocalHandler, LocalHTTPServer
from tests.support.scripted import ScriptedServer, question_lines, sentence

# Any prefix: base_url is whatever the user gives (http://host:8000/v1, a gateway path, ...).
_ROUTE = re.compile(r"^(?:/.*)?/chat/completions$")
_MODELS = re.compile(r"^(?:/.*)?/models$")
# "raw": a 200 whose body is the given bytes as they are (invalid UTF-8, a huge body)
_KINDS = set(
    "ok status length content_filter refusal bad_json empty not_json hang drop raw".split()
)
_COUNTERS = "requests ok rpm_429 auth_failed response_format_rejected".split() + sorted(
    _KINDS - {"ok", "status"}
)


class _Handler(LocalHandler):
    server: LocalHTTPServer[FakeOpenAI]

    def do_POST(self) -> None:
        raw = self._read_body()
        if not _ROUTE.match(self.path.split("?", 1)[0]):
            return self._reply(error_reply(404, f"Fake OpenAI does not serve POST {self.path}."))
        self._reply(self.server.fake._handle(self.path, self._lower_headers(), raw))

    def do_GET(self) -> None:
        if _MODELS.match(self.path.split("?", 1)[0]):  # what clients probe first
            model = self.server.fake.served_model or "fake-vlm"
            card = {"id": model, "object": "model", "created": 0, "owned_by": "fake"}
            return self._reply((200, {"object": "list", "data": [card]}, {}))
        self._reply(error_reply(404, f"Fake OpenAI does not serve GET {self.path}."))

    do_PUT = do_DELETE = do_PATCH = do_GET


class FakeOpenAI(ScriptedServer):
    """Serve POST [/v1]/chat/completions on 127.0.0.1 with scripted and random failures."""

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
        supports_response_format: bool = True,
        served_model: str | None = None,
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
        # False: like many local servers, 400 on response_format; answers wrap JSON in prose.
        self.supports_response_format = supports_response_format
        self.served_model = served_model  # None: echo the request's model, like most gateways
        # url is http://127.0.0.1:PORT once started; clients use url + "/v1".

    # -- scripting ---------------------------------------------------------------------------
    def _bump(self, key: str, entry: dict[str, Any]) -> None:
        with self._lock:
            self.stats[key] += 1
            entry["outcome"] = key

    # -- request handling --------------------------------------------------------------------
    def _handle(self, path: str, headers: dict[str, str], raw: bytes) -> Reply | None:
        """Answer one request; None means drop the connection without a response."""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return error_reply(400, "We could not parse the JSON body of your request.")
        if not isinstance(body, dict):
            return error_reply(400, "The request body must be a JSON object.")
        sizes, mimes, system, prompt = inspect_body(body, strip=not self.keep_image_data)
        authorization = headers.pop("authorization", None)  # the key is never logged
        scheme = authorization.split(" ", 1)[0] if authorization else None
        entry: dict[str, Any] = {
            "path": path,
            "model": body.get("model"),
            "auth": scheme,
            "headers": headers,
            "body": body,
            "time": time.monotonic(),
            "image_sizes": sizes,
            "image_mimes": mimes,
        }
        with self._lock:
            self.stats["requests"] += 1
            self.log.append(entry)
        if self.api_key is not None and authorization != f"Bearer {self.api_key}":
            self._bump("auth_failed", entry)
            return error_reply(401, "Incorrect API key provided.")
        with self._lock:
            delay = self.latency + self._rng.uniform(-1.0, 1.0) * self.latency_jitter
        if self._stop.wait(max(0.0, delay)):
            return None
        response_format = body.get("response_format")
        if response_format and not self.supports_response_format:
            self._bump("response_format_rejected", entry)
            return error_reply(
                400, "response_format json_schema is not supported", param="response_format"
            )
        with self._lock:
            scripted = self._script.popleft() if self._script else None
        kind, kw = scripted or self._gate(entry)
        if kind == "rpm_429":
            return error_reply(429, "Rate limit reached for requests (fake RPM limit).", kw["wait"])
        if kind == "status":
            code = int(kw.get("code", 500))
            self._bump(f"error_{code}", entry)
            if "text" in kw:
                return code, str(kw["text"]), {}
            default = self.retry_after if code in (429, 503) else None
            retry = kw.get("retry_after", default)
            return error_reply(code, kw.get("message", ""), retry, kw.get("retry_after_ms"))
        text = self._answer_text(response_format, prompt)
        # OpenAI's high-detail price: 85 tokens per image plus 170 per 512 px tile
        image_tokens = sum(85 + 170 * image_tiles(w, h) for w, h in sizes)
        prompt_tokens = image_tokens + len(system + prompt) // 4

        def answer(out: str, finish: str = "stop", **message: Any) -> Reply:
            completion = len(out) // 4
            result = {
                "id": f"chatcmpl-fake{uuid.uuid4().hex[:20]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.served_model or body.get("model") or "fake-vlm",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": out, **message},
                        "finish_reason": finish,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion,
                    "total_tokens": prompt_tokens + completion,
                },
            }
            return 200, result, {}

        if kind == "hang":
            self._bump("hang", entry)
            return None if self._stop.wait(float(kw.get("seconds", 30.0))) else answer(text)
        self._bump(kind, entry)
        if kind == "drop":
            return None
        if kind == "raw":
            return 200, bytes(kw["body"]), {"Content-Type": "application/json"}
        if kind == "length":
            return answer(text[: len(text) // 2], "length")
        if kind == "content_filter":
            return answer("", "content_filter")
        if kind == "refusal":
            return answer("", refusal=kw.get("text", "I can't help with that."))
        if kind == "bad_json":
            return answer(kw.get("text", "I think this is a benign naevus, no JSON today."))
        if kind == "empty":
            return answer("")
        if kind == "not_json":
            return 200, "<html><body>502 Bad Gateway (proxy)</body></html>", {}
        return answer(text)  # "ok"

    def _answer_text(self, response_format: Any, prompt: str) -> str:
        """Bare JSON for the request's json_schema; otherwise JSON for the schema found in
        the prompt, wrapped in a ```json fence inside prose, as open models tend to answer."""
        lines = question_lines(prompt)
        spec = response_format.get("json_schema") if isinstance(response_format, dict) else None
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            return json.dumps(fake_value(schema, lines, self.answer_words))
        schema = schema_in_prompt(prompt)
        if schema is None:
            return sentence("answer", None, self.answer_words)
        found = json.dumps(fake_value(schema, lines, self.answer_words), indent=2)
        return f"Sure! Here is my answer as JSON:\n\n```json\n{found}\n```\n\nLet me know."


def main(argv: list[str] | None = None) -> None:
    """Serve until Ctrl-C, for manual runs against the CLI (--base-url http://127.0.0.1:PORT/v1)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
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
    parser.add_argument("--served-model", default=None)
    parser.add_argument(
        "--no-response-format",
        dest="supports_response_format",
        action="store_false",
        help="Reject response_format with a 400, like servers without structured output.",
    )
    kw = vars(parser.parse_args(argv))
    kw["error_rates"] = {int(c): float(p) for c, p in (i.split("=", 1) for i in kw["error_rates"])}
    fake = FakeOpenAI(**kw)
    with fake:
        print(f"Fake OpenAI listening on {fake.url}/v1 (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    print(json.dumps(dict(fake.stats), sort_keys=True))


if __name__ == "__main__":
    main()
