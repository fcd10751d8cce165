"""The Gemini Batch API (and Files API) behind the runner's ``BatchAPI`` interface.

Calls become REST GenerateContentRequest lines with the same content the online mode sends:
sent inline for small jobs, uploaded as a JSONL file for large ones. The upload is named by a
digest of its bytes, so an upload retried after a lost reply finds its own file (409) instead
of storing a second copy. Results are parsed by ``GeminiBackend.parse_result``, as online.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..images import PreparedImage
from .base import Call, CallResult, ContentError, FinalError, TransientError, model_for
from .batch_api import BatchAPI, RemoteJob
from .gemini import RETRYABLE_STATUS, classify_error

if TYPE_CHECKING:
    from .gemini import GeminiBackend

INLINE_LIMIT = 20_000_000  # the API's cap on the total size of inline requests
FILE_LIMIT = 1_900_000_000  # under the 2 GB per input file
T = TypeVar("T")


class GeminiBatchAPI(BatchAPI):
    inline_limit = INLINE_LIMIT
    file_limit = FILE_LIMIT

    def __init__(self, backend: GeminiBackend):
        from google.genai import types

        self._types = types
        self.backend = backend
        self.client = backend.client

    def encode(self, call: Call, image: PreparedImage) -> str:
        line = {"key": call.call_id, "request": request_json(call, image, self.backend)}
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"))

    def submit(self, path: Path, display_name: str, inline: bool) -> RemoteJob:
        config = self._types.CreateBatchJobConfig(display_name=display_name)
        model = self.backend.model
        if inline:
            with path.open(encoding="utf-8") as fh:
                src: Any = [_inline_item(json.loads(line)) for line in fh if line.strip()]
            created = _sdk(lambda: self.client.batches.create(model=model, src=src, config=config))
            return _job(created)
        uploaded = self._upload(path, display_name)
        created = _sdk(lambda: self.client.batches.create(model=model, src=uploaded, config=config))
        job = _job(created)
        job.input_file = uploaded
        return job

    def _upload(self, path: Path, display_name: str) -> str:
        from google.genai import errors

        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        file_id = f"dermasynth-{digest.hexdigest()[:24]}"
        config = self._types.UploadFileConfig(
            name=file_id, display_name=display_name, mime_type="jsonl"
        )
        try:
            return str(self.client.files.upload(file=str(path), config=config).name)
        except errors.APIError as exc:
            if exc.code == 409:  # an earlier attempt stored these very bytes: use them
                return f"files/{file_id}"
            raise _classified(exc) from None
        except Exception as exc:
            raise _classified(exc) from None

    def find(self, display_names: Collection[str]) -> list[RemoteJob]:
        wanted = set(display_names)
        listed = _sdk(lambda: list(self.client.batches.list(config={"page_size": 100})))
        return [_job(r) for r in listed if getattr(r, "display_name", None) in wanted]

    def poll(self, name: str) -> RemoteJob:
        return _job(_sdk(lambda: self.client.batches.get(name=name)))

    def download(self, job: RemoteJob, into: Path) -> Iterator[tuple[str | None, Any]]:
        dest = getattr(job.handle, "dest", None)
        if dest is None:
            return iter(())
        if getattr(dest, "inlined_responses", None):
            return (
                (
                    (getattr(item, "metadata", None) or {}).get("key"),
                    (getattr(item, "response", None), getattr(item, "error", None)),
                )
                for item in dest.inlined_responses
            )
        if not getattr(dest, "file_name", None):
            return iter(())
        into.parent.mkdir(parents=True, exist_ok=True)
        _sdk(lambda: self.client.files.download(file=dest.file_name, destination=str(into)))
        return _read_results(into)

    def outcome(self, call: Call, item: Any) -> CallResult | Exception:
        response, error = item
        if error:
            get = error.get if isinstance(error, dict) else lambda k: getattr(error, k, None)
            message, code = get("message") or error, get("code")
            if code in RETRYABLE_STATUS:
                return TransientError(f"item error {code}: {message}")
            return FinalError(f"item error: {message}")
        if response is None:
            return ContentError("no response for this item")
        try:
            if isinstance(response, dict):
                response = self._types.GenerateContentResponse.model_validate(response)
            return self.backend.parse_result(call, response)
        except (ContentError, FinalError, TransientError) as exc:
            return exc
        except ValueError as exc:  # pydantic: a response line that is not a response
            return ContentError(f"unreadable response: {str(exc).splitlines()[0]}")

    def cancel(self, name: str) -> None:
        _sdk(lambda: self.client.batches.cancel(name=name))


def _sdk(fn: Callable[[], T]) -> T:
    """Run one SDK call with its failure classified as Transient or Final."""
    try:
        return fn()
    except Exception as exc:
        raise _classified(exc) from None


def _classified(exc: Exception) -> Exception:
    error = classify_error(exc)
    return exc if error is None else error


def _read_results(path: Path) -> Iterator[tuple[str | None, Any]]:
    """Result lines ``{"key", "response"}`` or ``{"key", "error"|"status"}``, read lazily."""
    with path.open(encoding="utf-8") as fh:
        for raw in fh:
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                continue  # a torn line names no key: its call is redone as missing
            yield line.get("key"), (line.get("response"), line.get("status") or line.get("error"))


def _job(remote: Any) -> RemoteJob:
    state = getattr(remote, "state", None)
    return RemoteJob(
        name=str(remote.name),
        state=str(getattr(state, "value", state) or "JOB_STATE_UNSPECIFIED"),
        display_name=getattr(remote, "display_name", None),
        handle=remote,
    )


def inline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its ``$defs`` references written out in place."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: walk(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def request_json(call: Call, image: PreparedImage, backend: GeminiBackend) -> dict[str, Any]:
    """The REST GenerateContentRequest of one call (the same content the online mode sends,
    media resolution and thinking included)."""
    config: dict[str, Any] = {
        "responseMimeType": "application/json",
        "responseJsonSchema": inline_schema(model_for(call).model_json_schema()),
        "temperature": backend.temperature,
        "maxOutputTokens": backend.max_output_tokens,
    }
    if backend.seed is not None:
        config["seed"] = backend.seed
    extras = backend.generation_extras()
    if "media_resolution" in extras:
        config["mediaResolution"] = extras["media_resolution"].value
    thinking = extras.get("thinking_config")
    if thinking is not None:
        config["thinkingConfig"] = thinking.model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
    data = base64.b64encode(image.data).decode()
    image_part: dict[str, Any] = {"inlineData": {"mimeType": image.mime_type, "data": data}}
    if backend.part_resolution():
        image_part["mediaResolution"] = {"level": backend.part_resolution()}
    return {
        "contents": [{"role": "user", "parts": [image_part, {"text": call.prompt}]}],
        "systemInstruction": {"parts": [{"text": backend.system}]},
        "generationConfig": config,
    }


def _inline_item(line: dict[str, Any]) -> dict[str, Any]:
    """A JSONL request as the SDK's inline-request dict (snake_case config)."""
    request = line["request"]
    gen = request["generationConfig"]
    parts: list[dict[str, Any]] = []
    for part in request["contents"][0]["parts"]:
        if "inlineData" in part:
            data = base64.b64decode(part["inlineData"]["data"])
            item: dict[str, Any] = {
                "inline_data": {"mime_type": part["inlineData"]["mimeType"], "data": data}
            }
            if "mediaResolution" in part:
                item["media_resolution"] = part["mediaResolution"]
            parts.append(item)
        else:
            parts.append({"text": part["text"]})
    config = {
        "response_mime_type": gen["responseMimeType"],
        "response_json_schema": gen["responseJsonSchema"],
        "temperature": gen["temperature"],
        "max_output_tokens": gen["maxOutputTokens"],
        "system_instruction": request["systemInstruction"]["parts"][0]["text"],
    }
    if "seed" in gen:
        config["seed"] = gen["seed"]
    if "mediaResolution" in gen:
        config["media_resolution"] = gen["mediaResolution"]
    if "thinkingConfig" in gen:
        snake = {"thinkingLevel": "thinking_level", "thinkingBudget": "thinking_budget"}
        config["thinking_config"] = {snake.get(k, k): v for k, v in gen["thinkingConfig"].items()}
    return {
        "contents": [{"role": "user", "parts": parts}],
        "config": config,
        "metadata": {"key": line["key"]},
    }
