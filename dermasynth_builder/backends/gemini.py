"""Gemini through the official ``google-genai`` SDK (async client).

The SDK's own retries stay off: it ignores the server's retry delay and never retries a dropped
connection, so the engine owns retries and this module only classifies what happened. The SDK
reads ``GEMINI_API_KEY`` / ``GOOGLE_API_KEY`` and ``GOOGLE_GEMINI_BASE_URL`` itself; the key is
never stored, logged or written by this package.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
from typing import TYPE_CHECKING, Any

from .base import (
    Answer,
    Backend,
    BackendConfigError,
    Call,
    CallResult,
    ContentError,
    FinalError,
    StopRun,
    TransientError,
    Usage,
    model_for,
    parse_answers,
)

if TYPE_CHECKING:
    from .gemini_batch import GeminiBatchAPI

RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}
GLOBAL_RESOLUTIONS = ("low", "medium", "high")  # ultra_high is per part only
# Finish reasons that retrying the same prompt will not fix.
FINAL_FINISH = frozenset(
    "SAFETY RECITATION BLOCKLIST PROHIBITED_CONTENT SPII IMAGE_SAFETY IMAGE_PROHIBITED_CONTENT "
    "IMAGE_RECITATION LANGUAGE MODEL_ARMOR".split()
)
KEY_HELP = (
    "no Gemini API key: set GEMINI_API_KEY (or GOOGLE_API_KEY), e.g. `export GEMINI_API_KEY=...`; "
    "get one at https://aistudio.google.com/apikey, or use --backend offline for a dry run"
)


def current_models() -> list[str]:
    """The families the bundled profiles call current (for the missing-model message)."""
    from ..pricing import load_profiles

    return load_profiles().current()


def retry_delay(exc: Any) -> float | None:
    """The server's requested pause: a Retry-After header or a google.rpc.RetryInfo detail."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is not None:
        value = headers.get("retry-after")
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                pass
    details = getattr(exc, "details", None)
    if isinstance(details, dict):
        for item in (details.get("error") or {}).get("details") or []:
            delay = item.get("retryDelay") if isinstance(item, dict) else None
            match = re.fullmatch(r"([\d.]+)s", str(delay or ""))
            if match:
                return float(match.group(1))
    return None


def is_transport_error(exc: BaseException) -> bool:
    """Connection resets, protocol errors and timeouts from whichever HTTP stack the SDK uses."""
    module = type(exc).__module__ or ""
    return module.startswith(("httpx", "httpcore", "aiohttp", "anyio")) or isinstance(
        exc, (ConnectionError, TimeoutError, OSError)
    )


def classify_error(exc: BaseException) -> TransientError | FinalError | ContentError | None:
    """What a failed SDK call means for a retry (online and batch share it); None when it is
    not an API or transport failure (a bug, to be raised as it is)."""
    from google.genai import errors

    if isinstance(exc, errors.APIError):
        code = int(getattr(exc, "code", 0) or 0)
        message = f"HTTP {code} {getattr(exc, 'status', '') or ''}: {_short(exc)}".strip()
        if code in RETRYABLE_STATUS:
            return TransientError(message, retry_delay(exc), rate_limited=code == 429)
        if code in (401, 403, 404) or (code == 400 and _key_refused(exc)):
            return StopRun(message)
        return FinalError(message)
    if isinstance(exc, json.JSONDecodeError):
        return TransientError(f"non-JSON response from server: {exc.msg}")
    if isinstance(exc, UnicodeDecodeError):
        return ContentError(f"response is not valid UTF-8 (byte {exc.start})")
    if is_transport_error(exc):
        timeout = "timeout" in type(exc).__name__.lower() or isinstance(exc, TimeoutError)
        return TransientError(f"{type(exc).__name__}: {exc}".strip(": "), connection=not timeout)
    return None


def _key_refused(exc: BaseException) -> bool:
    """Gemini answers a bad key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID."""
    text = f"{_short(exc, 2000)} {getattr(exc, 'details', '')}"
    return "API_KEY_INVALID" in text or "API key not valid" in text


class GeminiBackend(Backend):
    name = "gemini"
    key_env = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    needs_key = True
    supports_batch = True
    checks_model = True

    def __init__(
        self,
        model: str,
        system: str,
        *,
        temperature: float = 0.4,
        seed: int | None = 0,
        max_output_tokens: int = 2048,
        timeout_s: float = 120.0,
    ):
        if not (os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")):
            raise BackendConfigError(KEY_HELP)
        from google import genai
        from google.genai import types

        self._types = types
        self.model = model
        self.system = system
        self.max_output_tokens = max_output_tokens
        self.temperature = temperature
        self.seed = seed
        # SDK retries off (attempts=1); its timeout backs up the engine's per-call timeout.
        options = types.HttpOptions(
            timeout=int(timeout_s * 1000), retry_options=types.HttpRetryOptions(attempts=1)
        )
        self._client = genai.Client(http_options=options)
        self._extras: dict[str, Any] | None = None
        self._configs: dict[tuple[bool, ...], Any] = {}
        self._templates: dict[tuple[bool, ...], tuple[str, dict[str, Any]] | None] = {}

    @property
    def client(self):  # noqa: ANN201 - a google.genai.Client; its import stays lazy
        """The SDK client (batch mode uses its batches and files APIs)."""
        return self._client

    def check_model(self) -> None:
        """``models.get`` before any work: a model the API does not serve (shut down, renamed,
        misspelt) or a refused key stops the run at once with one line. Transient trouble
        (5xx, no connection) does not: the calls themselves retry it."""
        from google.genai import errors

        try:
            self._client.models.get(model=self.model)
        except errors.ClientError as exc:
            code = int(getattr(exc, "code", 0) or 0)
            if code == 404:
                raise BackendConfigError(
                    f"model {self.model!r} is not served by the Gemini API (404); "
                    f"current models: {', '.join(current_models())}"
                ) from None
            if code in (400, 401, 403):
                raise BackendConfigError(
                    f"the Gemini API refused the model check: HTTP {code} {_short(exc)}"
                ) from None
        except Exception as exc:  # noqa: BLE001 - transient: the calls retry on their own
            if classify_error(exc) is None:
                raise

    def generation_extras(self) -> dict[str, Any]:
        """The media resolution and thinking settings of every request, as config fields."""
        types = self._types
        settings = self.settings
        extras: dict[str, Any] = {}
        if settings is None:
            return extras
        if settings.media_resolution in GLOBAL_RESOLUTIONS:
            extras["media_resolution"] = types.MediaResolution(
                f"MEDIA_RESOLUTION_{settings.media_resolution.upper()}"
            )
        if isinstance(settings.thinking, int):
            extras["thinking_config"] = types.ThinkingConfig(thinking_budget=settings.thinking)
        elif settings.thinking:
            extras["thinking_config"] = types.ThinkingConfig(
                thinking_level=types.ThinkingLevel(settings.thinking.upper())
            )
        return extras

    def part_resolution(self) -> str | None:
        """ULTRA_HIGH exists only per part (the request-wide setting stops at HIGH)."""
        if self.settings is not None and self.settings.media_resolution == "ultra_high":
            return "MEDIA_RESOLUTION_ULTRA_HIGH"
        return None

    def config_for(self, call: Call) -> Any:
        """The GenerateContentConfig of a call, built once per answer shape (how many
        questions, which are self-instruct) and reused: the schema, the system instruction,
        the sampling and the media resolution and thinking settings never change in a run."""
        shape = _shape(call)
        config = self._configs.get(shape)
        if config is None:
            if self._extras is None:
                self._extras = self.generation_extras()
            config = self._types.GenerateContentConfig(
                system_instruction=self.system,
                response_mime_type="application/json",
                response_schema=model_for(call),
                temperature=self.temperature,
                seed=self.seed,
                max_output_tokens=self.max_output_tokens,
                **self._extras,
            )
            self._configs[shape] = config
        return config

    def wire_template(self, call: Call) -> tuple[str, dict[str, Any]] | None:
        """(path, request body without contents) for a call's answer shape, converted by the
        SDK's own converter once and cached; None when the SDK offers no such converter (a
        different SDK version, Vertex AI): then every call takes the SDK's public path."""
        shape = _shape(call)
        if shape not in self._templates:
            self._templates[shape] = self._convert_once(call)
        return self._templates[shape]

    def _convert_once(self, call: Call) -> tuple[str, dict[str, Any]] | None:
        try:
            from google.genai import _common, models

            api = self._client.aio._api_client
            if api.vertexai:
                return None
            params = self._types._GenerateContentParameters(
                model=self.model, contents=["-"], config=self.config_for(call)
            )
            request = models._GenerateContentParameters_to_mldev(api, params, None, params)
            if request.get("_query"):
                return None
            path = "{model}:generateContent".format_map(request.get("_url") or {})
            for key in ("_url", "_query", "config", "contents"):
                request.pop(key, None)
            request = _common.encode_unserializable_types(_common.convert_to_dict(request))
            return path, request
        except Exception:  # noqa: BLE001 - a private SDK API moved: use the public path
            return None

    def request_body(self, call: Call, image: Any, template: dict[str, Any]) -> dict[str, Any]:
        """The generateContent body of a call: the cached template plus this call's image
        (URL-safe base64, as the SDK encodes bytes) and prompt."""
        part: dict[str, Any] = {
            "inlineData": {
                "data": base64.urlsafe_b64encode(image.data).decode("ascii"),
                "mime_type": image.mime_type,  # as the SDK itself sends it
            }
        }
        resolution = self.part_resolution()
        if resolution:
            part["mediaResolution"] = {"level": resolution}
        return {**template, "contents": [{"role": "user", "parts": [part, {"text": call.prompt}]}]}

    async def generate(self, call: Call) -> CallResult:
        """One call. The request body is the per-shape template (converted by the SDK once)
        plus the image and prompt, sent through the SDK's own API client (auth, base URL,
        timeout); the answer is read back into the SDK's response type. The per-call
        conversion the SDK would otherwise do (~20 ms of CPU with the schema) is skipped."""
        types = self._types
        image = await call.image()
        wire = self.wire_template(call)
        try:
            if wire is None:
                part = types.Part.from_bytes(
                    data=image.data,
                    mime_type=image.mime_type,
                    media_resolution=self.part_resolution(),
                )
                response = await self._client.aio.models.generate_content(
                    model=self.model, contents=[part, call.prompt], config=self.config_for(call)
                )
            else:
                path, template = wire
                body = self.request_body(call, image, template)
                raw = await self._client.aio._api_client.async_request("post", path, body, None)
                response = _from_wire(types, raw.body)
        except Exception as exc:
            error = classify_error(exc)
            if error is None:
                raise
            raise error from None
        return self.parse_result(call, response)

    def batch_api(self) -> GeminiBatchAPI:
        """The Batch and Files APIs behind the batch runner's small interface."""
        from .gemini_batch import GeminiBatchAPI

        return GeminiBatchAPI(self)

    def parse_result(self, call: Call, response: Any) -> CallResult:
        """A GenerateContentResponse checked and parsed into answers (online and batch alike)."""
        usage = _usage(response)
        model = getattr(response, "model_version", None) or self.model
        feedback = getattr(response, "prompt_feedback", None)
        block = getattr(feedback, "block_reason", None)
        if block:
            raise FinalError(f"prompt blocked: {_enum(block)}")
        candidates = getattr(response, "candidates", None) or []
        if not candidates:
            raise ContentError("no candidates in the response")
        finish = _enum(getattr(candidates[0], "finish_reason", None)) or "STOP"
        if finish in FINAL_FINISH:
            raise FinalError(f"finish reason {finish}")
        if finish == "MAX_TOKENS":
            raise ContentError(
                f"finish reason MAX_TOKENS (max_output_tokens={self.max_output_tokens})"
            )
        answers: list[Answer] = parse_answers(call, response.text)
        return CallResult(answers, str(model), usage, finish)

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):  # closing is best effort
            await self._client.aio.aclose()


def _shape(call: Call) -> tuple[bool, ...]:
    return tuple(bool(r.self_instruct) for r in call.requests)


def _from_wire(types: Any, body: str | None) -> Any:
    """A generateContent response body as the SDK's GenerateContentResponse."""
    from google.genai import models

    data = json.loads(body) if body else {}
    converted = models._GenerateContentResponse_from_mldev(data)
    return types.GenerateContentResponse._from_response(response=converted, kwargs={})


def _usage(response: Any) -> Usage:
    meta = getattr(response, "usage_metadata", None)
    if meta is None:
        return Usage()
    image = 0
    for detail in getattr(meta, "prompt_tokens_details", None) or []:
        if _enum(getattr(detail, "modality", None)) == "IMAGE":
            image += int(getattr(detail, "token_count", 0) or 0)
    return Usage(
        prompt_tokens=int(meta.prompt_token_count or 0),
        output_tokens=int(meta.candidates_token_count or 0),
        thoughts_tokens=int(getattr(meta, "thoughts_token_count", 0) or 0),
        image_tokens=image,
    )


def _enum(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value)).rsplit(".", 1)[-1]


def _short(exc: BaseException, limit: int = 200) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return str(text).replace("\n", " ")[:limit]
