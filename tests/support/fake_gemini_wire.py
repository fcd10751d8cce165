"""Gemini's request and response bodies as the fake server reads and writes them.

Errors in Google's shape, the inline images and prompt text of a request, prompt and thought
token counts (3.x by media resolution, 2.x by 768 px tiles) and a GenerateContentResponse.
Kept apart from ``fake_gemini`` (routing, scripting) so each stays readable. Stdlib plus Pillow.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from typing import Any

from PIL import Image

RESOLUTION_TOKENS = {"LOW": 280, "MEDIUM": 560, "HIGH": 1120, "ULTRA_HIGH": 2240}
# Thought tokens per thinking level; a 3.x model without thinkingConfig thinks at HIGH.
THOUGHT_TOKENS = {"MINIMAL": 0, "LOW": 48, "MEDIUM": 192, "HIGH": 640}
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
SAFETY_RATINGS = [
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
]
Reply = tuple[int, dict[str, Any] | bytes, dict[str, str]]  # status, JSON/raw body, headers


def error_reply(code: int, message: str = "", retry_after: float | None = None) -> Reply:
    """Build an error in Google's shape; RetryInfo mirrors Retry-After like the real 429s."""
    err: dict[str, Any] = {
        "code": code,
        "message": message or f"Fake Gemini error {code}.",
        "status": _STATUS.get(code, "UNKNOWN"),
    }
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers["Retry-After"] = f"{retry_after:g}"
        err["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after:g}s"}
        ]
    return code, {"error": err}, headers


def inspect_body(body: dict[str, Any], strip: bool) -> tuple[list[tuple[int, int]], int, str]:
    """Image sizes from inlineData, the count of unreadable images, and all prompt text."""
    sizes: list[tuple[int, int]] = []
    unreadable = 0
    texts: list[str] = []
    contents = list(body.get("contents") or [])
    if isinstance(body.get("systemInstruction"), dict):
        contents.append(body["systemInstruction"])
    for content in contents:
        for part in (content or {}).get("parts") or []:
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            inline = part.get("inlineData") or part.get("inline_data")
            if not inline:
                continue
            data = str(inline.get("data", ""))
            try:  # the SDK sends URL-safe base64; plain b64decode would corrupt the bytes
                blob = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
                with Image.open(io.BytesIO(blob)) as img:
                    sizes.append(img.size)
            except (binascii.Error, ValueError, OSError):
                unreadable += 1
            if strip:
                inline["data"] = f"<{len(data)} base64 chars>"
    return sizes, unreadable, "\n".join(texts)


def inline_images(body: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(mime type, decoded bytes) of every inline image, before any stripping."""
    found = []
    for content in body.get("contents") or []:
        for part in (content or {}).get("parts") or []:
            inline = part.get("inlineData") or part.get("inline_data")
            if inline:
                data = str(inline.get("data", ""))
                try:
                    blob = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
                except (binascii.Error, ValueError):
                    blob = b""
                found.append((str(inline.get("mimeType") or inline.get("mime_type")), blob))
    return found


def thinking_kind(model: str) -> str | None:
    """How the model thinks: "level" (3.x, on by default), "budget" (2.5), None (2.0)."""
    if model.startswith("gemini-3"):
        return "level"
    return "budget" if model.startswith("gemini-2.5") else None


def thought_tokens(model: str, config: dict[str, Any]) -> int:
    kind = thinking_kind(model)
    raw = config.get("thinkingConfig") or config.get("thinking_config") or {}
    # proto3 JSON: the server takes lowerCamel and snake_case field names alike
    thinking = {k.replace("_", "").lower(): v for k, v in raw.items()}
    if kind is None:
        return 0
    if "thinkingbudget" in thinking:
        budget = int(thinking["thinkingbudget"])
        return 512 if budget < 0 else min(budget, 512)
    level = str(thinking.get("thinkinglevel") or "HIGH").upper()
    return THOUGHT_TOKENS.get(level, THOUGHT_TOKENS["HIGH"]) if kind == "level" else 512


def _resolutions(body: dict[str, Any]) -> list[str | None]:
    """Each inline image part's mediaResolution level (None: not set on the part)."""
    levels: list[str | None] = []
    for content in body.get("contents") or []:
        for part in (content or {}).get("parts") or []:
            if part.get("inlineData") or part.get("inline_data"):
                level = (part.get("mediaResolution") or {}).get("level")
                levels.append(str(level).removeprefix("MEDIA_RESOLUTION_") if level else None)
    return levels


def prompt_tokens(
    model: str,
    body: dict[str, Any],
    sizes: list[tuple[int, int]],
    unreadable: int,
    prompt: str,
) -> tuple[int, int]:
    """Image and text prompt tokens. Gemini 3.x: per image by media resolution (the part's,
    else the request's, else HIGH); 2.x: 768 px tiles, an unreadable image as one tile."""
    text = len(prompt) // 4
    if model.startswith("gemini-3"):
        config = body.get("generationConfig") or {}
        default = str(config.get("mediaResolution") or "HIGH").removeprefix("MEDIA_RESOLUTION_")
        levels = _resolutions(body)
        return sum(RESOLUTION_TOKENS.get(lv or default, 1120) for lv in levels), text
    return 258 * (sum(_tiles(w, h) for w, h in sizes) + unreadable), text


def response_body(
    out: str | None, finish: str, usage: dict[str, Any], meta: dict[str, Any]
) -> dict[str, Any]:
    """A GenerateContentResponse; ``out=None`` is a candidate without content (safety stop)."""
    cand: dict[str, Any] = {"finishReason": finish, "index": 0}
    if out is None:
        cand["safetyRatings"] = SAFETY_RATINGS
    else:
        cand["content"] = {"role": "model", "parts": [{"text": out}]}
    n_out = len(out or "") // 4
    totals = {
        "candidatesTokenCount": n_out,
        "totalTokenCount": usage["promptTokenCount"] + n_out + usage.get("thoughtsTokenCount", 0),
    }
    return {"candidates": [cand], "usageMetadata": {**usage, **totals}, **meta}


def _tiles(width: int, height: int) -> int:
    """Gemini 2.x: both sides <= 384 px is one tile, else 768 px tiles."""
    if width <= 384 and height <= 384:
        return 1
    return math.ceil(width / 768) * math.ceil(height / 768)
