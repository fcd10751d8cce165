"""OpenAI chat-completions bodies as the fake server (``fake_openai``) reads and writes them.

Errors in OpenAI's shape, the images and texts of a request's messages, a rough image token
count, fake values for a JSON Schema, and the schema a client wrote into its prompt. Stdlib
plus Pillow.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import re
from typing import Any

from PIL import Image

from tests.support.scripted import sentence

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_denied", None),
    404: ("not_found_error", "model_not_found"),
    408: ("timeout", None),
    422: ("invalid_request_error", None),
    429: ("rate_limit_exceeded", "rate_limit_exceeded"),
}
_DATA_URL = re.compile(r"^data:([\w/+.-]+);base64,(.*)$", re.S)
_SCHEMA_HINT = "Answer with JSON matching this schema:"
Reply = tuple[int, Any, dict[str, str]]  # status, JSON body (or str for non-JSON), headers


def error_reply(
    code: int,
    message: str = "",
    retry_after: float | None = None,
    retry_after_ms: float | None = None,
    param: str | None = None,
) -> Reply:
    """An error in OpenAI's shape, with Retry-After / retry-after-ms like real 429s."""
    kind, err_code = _ERROR_TYPES.get(code, ("server_error", None))
    body = {
        "error": {
            "message": message or f"Fake OpenAI error {code}.",
            "type": kind,
            "param": param,
            "code": err_code,
        }
    }
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers["Retry-After"] = f"{retry_after:g}"
    if retry_after_ms is not None:
        headers["retry-after-ms"] = f"{retry_after_ms:g}"
    return code, body, headers


def fake_value(
    schema: Any,
    lines: dict[str, str],
    words: int = 40,
    *,
    root: Any = None,
    name: str = "answer",
    line: str | None = None,
) -> Any:
    """A value conforming to a standard JSON Schema (the subset pydantic emits and a bit more:
    $ref/$defs, anyOf/oneOf/allOf, const/enum, object/array/string/number/integer/boolean);
    strings echo the prompt line named like their property (``q1: ...``) or its parent's."""
    root = schema if root is None else root
    for _ in range(32):  # resolve chains of $ref
        if not (isinstance(schema, dict) and "$ref" in schema):
            break
        node: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        schema = node
    if not isinstance(schema, dict):
        return None
    again = {"root": root, "name": name, "line": line}
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key) or [] if o.get("type") != "null"]
        if options:
            return fake_value(options[0], lines, words, **again)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    line = lines.get(name.lower(), line)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    kind = kind or ("object" if "properties" in schema else "array" if "items" in schema else "")
    if kind == "object":
        props = schema.get("properties") or {}
        return {
            k: fake_value(v, lines, words, root=root, name=k, line=line) for k, v in props.items()
        }
    if kind == "array":
        n = max(1, int(schema.get("minItems", 1)))
        return [fake_value(schema.get("items") or {}, lines, words, **again) for _ in range(n)]
    if kind in ("integer", "number"):
        num = max(1.0, float(schema.get("minimum", 1)))
        return int(num) if kind == "integer" else num
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    text = sentence(name, line, words).ljust(int(schema.get("minLength", 0)), "x")
    return text[: int(schema["maxLength"])] if "maxLength" in schema else text


def inspect_body(
    body: dict[str, Any], strip: bool
) -> tuple[list[tuple[int, int]], list[str], str, str]:
    """Image sizes and MIME types from data URLs, the system text and the user text."""
    sizes: list[tuple[int, int]] = []
    mimes: list[str] = []
    system: list[str] = []
    texts: list[str] = []
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        out = system if message.get("role") == "system" else texts
        content = message.get("content")
        if isinstance(content, str):
            out.append(content)
            continue
        for part in content or []:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text":
                out.append(str(part.get("text", "")))
            image = part.get("image_url")
            url = image.get("url", "") if isinstance(image, dict) else str(image or "")
            match = _DATA_URL.match(url)
            if not match:
                continue
            mimes.append(match[1])
            try:
                blob = base64.b64decode(match[2], validate=True)
                with Image.open(io.BytesIO(blob)) as img:
                    sizes.append(img.size)
            except (binascii.Error, ValueError, OSError):
                sizes.append((0, 0))
            if strip and isinstance(image, dict):
                image["url"] = f"data:{match[1]};base64,<{len(match[2])} chars>"
    return sizes, mimes, "\n".join(system), "\n".join(texts)


def image_tiles(width: int, height: int) -> int:
    """Roughly OpenAI's high-detail count: 512 px tiles."""
    return math.ceil(width / 512) * math.ceil(height / 512)


def schema_in_prompt(prompt: str) -> dict[str, Any] | None:
    """The JSON Schema a client put in the prompt text (after the hint, else any object with
    ``properties``)."""
    at = prompt.find(_SCHEMA_HINT)
    text = prompt[at + len(_SCHEMA_HINT) :] if at >= 0 else prompt
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            value = None
        if isinstance(value, dict) and "properties" in value:
            return value
        start = text.find("{", start + 1)
    return None
