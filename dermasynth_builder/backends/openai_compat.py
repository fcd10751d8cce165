"""Any OpenAI-compatible chat-completions server (vLLM, Ollama, LM Studio, hosted gateways).

Plain async HTTP instead of the ``openai`` package keeps the install light: the HTTP client
already comes with google-genai and huggingface_hub. The engine owns retries, so this module
sends one request and classifies what happened. Structured output uses ``response_format``
``json_schema``; a server that rejects it is remembered for the rest of the run and gets the
schema in the prompt text instead, and every answer is parsed leniently (fences, prose, think
blocks) because open models wrap JSON in all of these. ``OPENAI_API_KEY`` is optional (local
servers need none); it lives only in the client's request headers, never logged or written.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import json
import os
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

try:  # httpx2 is the maintained httpx fork that google-genai and huggingface_hub now pull in
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older stacks ship plain httpx (same API)
    import httpx  # type: ignore[no-redef]

from .base import (
    MAX_BODY_BYTES,
    Backend,
    BackendConfigError,
    Call,
    CallResult,
    ContentError,
    FinalError,
    StopRun,
    TransientError,
    Usage,
    json_schema_for,
    parse_answers,
)

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
BASE_URL_HELP = "--backend openai needs --base-url URL (e.g. http://127.0.0.1:8000/v1 for vLLM)"
SCHEMA_HINT = "Answer with JSON matching this schema:"
# How servers say they cannot do structured output (OpenAI, vLLM, LM Studio, FastAPI 422s).
_SCHEMA_WORDS = re.compile(r"response_format|json_schema|guided|structured output", re.I)
_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_FENCE = re.compile(r"```[A-Za-z]*[ \t]*\n?(.*?)```", re.S)


class _SchemaRejected(FinalError):
    """The server refused ``response_format``; ``explicit`` when its message said so."""

    def __init__(self, message: str, explicit: bool):
        super().__init__(message)
        self.explicit = explicit


class OpenAIBackend(Backend):
    name = "openai"
    key_env = ("OPENAI_API_KEY",)
    needs_model = True
    # Flipped per instance when the server rejects response_format (a plain bool: one event
    # loop, and a stale read only costs one more rejected request that falls back too).
    supports_schema: bool = True

    def __init__(
        self,
        model: str,
        system: str,
        *,
        base_url: str | None,
        temperature: float = 0.4,
        seed: int | None = 0,
        max_output_tokens: int = 2048,
        timeout_s: float = 120.0,
        max_connections: int | None = None,
        supports_schema: bool = True,
    ):
        if not base_url:
            raise BackendConfigError(BASE_URL_HELP)
        if not re.match(r"^https?://[^/\s]+", base_url):
            raise BackendConfigError(f"--base-url must start with http:// or https://: {base_url}")
        self.model = model
        self.system = system
        self.base_url = base_url
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.temperature = temperature
        self.seed = seed
        self.max_output_tokens = max_output_tokens
        self.supports_schema = supports_schema
        headers = {"Accept": "application/json"}
        key = (os.environ.get("OPENAI_API_KEY") or "").strip()
        if key:  # only in the client's headers (their repr masks it): never on self, never logged
            headers["Authorization"] = f"Bearer {key}"
        # One connection per in-flight call so concurrency is not capped by the pool; the
        # client timeout backs up the engine's per-call timeout.
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._client = httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(timeout_s), limits=limits
        )

    async def generate(self, call: Call) -> CallResult:
        image = await call.image()
        encoded = base64.b64encode(image.data).decode("ascii")
        image_url = f"data:{image.mime_type};base64,{encoded}"
        if not self.supports_schema:
            return await self._complete(call, image_url, schema=False)
        try:
            return await self._complete(call, image_url, schema=True)
        except _SchemaRejected as rejected:
            if rejected.explicit:
                self.supports_schema = False
        # A bare 422 may be about something else: believe it only once the same call without
        # response_format gets through (an answer, even an unusable one).
        try:
            result = await self._complete(call, image_url, schema=False)
        except ContentError:
            self.supports_schema = False
            raise
        self.supports_schema = False
        return result

    def payload(self, call: Call, image_url: str, *, schema: bool) -> dict[str, Any]:
        """The chat-completions request body (public so tests and debugging can see it)."""
        prompt = call.prompt if schema else f"{call.prompt}\n\n{SCHEMA_HINT} {prompt_schema(call)}"
        user = [
            {"type": "image_url", "image_url": {"url": image_url}},
            {"type": "text", "text": prompt},
        ]
        messages: list[dict[str, Any]] = [{"role": "user", "content": user}]
        if self.system:
            messages.insert(0, {"role": "system", "content": self.system})
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_output_tokens,
        }
        if self.seed is not None:
            body["seed"] = self.seed
        if schema:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": "answers",
                    "schema": json_schema_for(call),
                    "strict": True,
                },
            }
        return body

    async def _complete(self, call: Call, image_url: str, *, schema: bool) -> CallResult:
        body = self.payload(call, image_url, schema=schema)
        try:
            request = self._client.build_request("POST", self.url, json=body)
            response = await self._client.send(request, stream=True)
            try:
                await _read_capped(response)
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            raise TransientError(f"timeout: {type(exc).__name__}") from None
        except httpx.RequestError as exc:  # refused, reset, dropped, protocol errors
            message = f"{type(exc).__name__}: {exc}".strip(": ")
            raise TransientError(message, connection=True) from None
        code = response.status_code
        if not 200 <= code < 300:
            message = f"HTTP {code}: {error_message(response)}"
            explicit = bool(_SCHEMA_WORDS.search(message))
            if schema and (code == 422 or (code == 400 and explicit)):
                raise _SchemaRejected(message, explicit)
            if code in RETRYABLE_STATUS:
                delay = retry_after(response.headers)
                raise TransientError(message, delay, rate_limited=code == 429)
            if code in (401, 403, 404):  # a refused key, no permission, no such model or route
                raise StopRun(message)
            raise FinalError(message)
        try:
            data = response.json()
        except UnicodeDecodeError as exc:  # bytes that are no UTF-8: the answer is unusable
            raise ContentError(f"response is not valid UTF-8 (byte {exc.start})") from None
        except ValueError:  # an HTML page from a proxy, a truncated body
            kind = response.headers.get("content-type", "no content type")
            raise TransientError(f"non-JSON response from server (HTTP {code}, {kind})") from None
        return self._result(call, data)

    def _result(self, call: Call, data: Any) -> CallResult:
        if not isinstance(data, dict):
            raise TransientError("unexpected response body: not a JSON object")
        if data.get("error") and not data.get("choices"):  # some gateways send errors as 200
            raise TransientError(f"error in HTTP 200 body: {_describe(data['error'])}")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ContentError("no choices in the response")
        choice = choices[0]
        finish = str(choice.get("finish_reason") or "stop")
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        if finish == "content_filter":
            raise FinalError("finish reason content_filter")
        if message.get("refusal"):
            raise FinalError(f"model refused: {_short(str(message['refusal']))}")
        if finish == "length":
            raise ContentError(f"finish reason length (max_output_tokens={self.max_output_tokens})")
        text = _text(message.get("content"))
        if not text.strip():
            raise ContentError("empty answer")
        answers = parse_answers(call, extract_json(text))
        model = data.get("model") or self.model
        return CallResult(answers, str(model), _usage(data.get("usage")), finish.upper())

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):  # closing is best effort
            await self._client.aclose()


async def _read_capped(response: httpx.Response, limit: int = MAX_BODY_BYTES) -> None:
    """Read the body, but no more than ``limit`` bytes: a huge answer is a content failure,
    never a process holding gigabytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ContentError(f"response body over {limit // 2**20} MiB: not read further")
        chunks.append(chunk)
    response._content = b"".join(chunks)  # what .json() and .text read


def prompt_schema(call: Call) -> str:
    """The response schema as compact JSON for the prompt: refs inlined, titles dropped, so a
    small open model reads one plain nested object."""
    schema = dict(json_schema_for(call))  # the cached dict is shared: pop from a copy
    defs = schema.pop("$defs", {})

    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return clean(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: clean(v) for k, v in node.items() if k != "title"}
        if isinstance(node, list):
            return [clean(v) for v in node]
        return node

    return json.dumps(clean(schema), separators=(",", ":"))


def extract_json(text: str) -> str:
    """The outermost JSON object in a model's text (inside a ``` fence if there is one, after
    any <think> block), re-serialised; the text itself when none parses, so ``parse_answers``
    reports why."""
    text = _THINK.sub("", text)
    fenced = _FENCE.search(text)
    decoder = json.JSONDecoder()
    for candidate in ([fenced.group(1)] if fenced else []) + [text]:
        start = candidate.find("{")
        while start != -1:
            try:
                value, _ = decoder.raw_decode(candidate, start)
            except ValueError:
                start = candidate.find("{", start + 1)
                continue
            if isinstance(value, dict):
                return json.dumps(value)
            start = candidate.find("{", start + 1)
    return text.strip()


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The server's requested pause: ``retry-after-ms``, or ``Retry-After`` in seconds or as
    an HTTP date."""
    millis = headers.get("retry-after-ms")
    if millis:
        with contextlib.suppress(ValueError):
            return max(0.0, float(millis) / 1000.0)
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def error_message(response: httpx.Response) -> str:
    """The server's own words: OpenAI's ``{"error": {...}}``, vLLM's top-level message,
    FastAPI's ``detail``, or plain text."""
    try:
        data = response.json()
    except ValueError:
        return _short(response.text) or response.reason_phrase or "no message"
    if isinstance(data, dict):
        for key in ("error", "message", "detail"):
            if data.get(key):
                return _short(_describe(data[key]))
    return _short(json.dumps(data))


def _describe(error: Any) -> str:
    if isinstance(error, dict) and error.get("message"):
        extra = [str(error[k]) for k in ("type", "code", "param") if error.get(k)]
        return str(error["message"]) + (f" ({', '.join(extra)})" if extra else "")
    return error if isinstance(error, str) else json.dumps(error)


def _text(content: Any) -> str:
    """Message content as text; some servers send a list of content parts."""
    if isinstance(content, list):
        return "".join(
            str(p.get("text") or "") for p in content if isinstance(p, dict) and "text" in p
        )
    return content if isinstance(content, str) else ""


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    details = raw.get("prompt_tokens_details")
    image = details.get("image_tokens") if isinstance(details, dict) else None
    return Usage(
        prompt_tokens=_int(raw.get("prompt_tokens")),
        output_tokens=_int(raw.get("completion_tokens")),
        image_tokens=_int(image),
    )


def _int(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def _short(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]
