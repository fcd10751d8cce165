"""What a call returns and how a model's JSON becomes it: the result types, the response schema
that pins one answer per question (``q1``, ``q2``, ...), and its validation.

Answers map back to requests by the schema's property names, never by trusting the model to
echo an id.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from .call import Call
from .errors import ContentError


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    output_tokens: int = 0
    thoughts_tokens: int = 0
    image_tokens: int = 0

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.output_tokens + self.thoughts_tokens


@dataclass(slots=True)
class Answer:
    answer: str
    question: str | None = None  # set when the model wrote its own question (self-instruct)


@dataclass(slots=True)
class CallResult:
    answers: list[Answer]
    model: str
    usage: Usage
    finish_reason: str = "STOP"


class PlainAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: str


class SelfInstructAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str
    answer: str


@functools.lru_cache(maxsize=256)
def response_model(self_instruct: tuple[bool, ...]) -> type[BaseModel]:
    """A pydantic model with one required property per question: q1, q2, ... in order."""
    fields: dict[str, Any] = {
        f"q{i + 1}": (SelfInstructAnswer if si else PlainAnswer, ...)
        for i, si in enumerate(self_instruct)
    }
    return create_model(
        f"Answers{len(self_instruct)}", __config__=ConfigDict(extra="forbid"), **fields
    )


def model_for(call: Call) -> type[BaseModel]:
    return response_model(tuple(bool(r.self_instruct) for r in call.requests))


@functools.lru_cache(maxsize=256)
def _json_schema(self_instruct: tuple[bool, ...]) -> dict[str, Any]:
    return response_model(self_instruct).model_json_schema()


def json_schema_for(call: Call) -> dict[str, Any]:
    """The call's response schema as a JSON Schema dict, built once per answer shape (pydantic
    takes milliseconds per conversion). Shared: callers must not change it."""
    return _json_schema(tuple(bool(r.self_instruct) for r in call.requests))


#: An answer longer than this is not an answer (a runaway model, a broken gateway): a content
#: failure, never a line of responses.jsonl. Real answers are a few KB.
MAX_ANSWER_CHARS = 200_000
#: Bytes of a response body a backend reads at most (base64 images never come back).
MAX_BODY_BYTES = 16 * 2**20
_BAD_UNICODE = re.compile("[\ud800-\udfff\ufffd]")


def check_text(text: str, what: str = "answer") -> None:
    """Raise ContentError when ``text`` is too long or holds invalid Unicode: a lone surrogate
    (``\\ud800`` in the JSON) or U+FFFD (invalid UTF-8 bytes, replaced on decoding)."""
    if len(text) > MAX_ANSWER_CHARS:
        raise ContentError(
            f"{what} too long: {len(text):,} characters (the cap is {MAX_ANSWER_CHARS:,})"
        )
    bad = _BAD_UNICODE.search(text)
    if bad:
        kind = "invalid UTF-8" if bad.group() == "\ufffd" else "a lone surrogate"
        raise ContentError(f"{what} holds invalid Unicode ({kind} at char {bad.start()})")


def parse_answers(call: Call, text: str | None) -> list[Answer]:
    """Validate the model's JSON against the call's schema; a ContentError says what failed
    (an answer too long or with invalid Unicode included)."""
    if not text or not text.strip():
        raise ContentError("empty answer")
    check_text(text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContentError(f"invalid JSON: {exc.msg} at char {exc.pos}") from None
    try:
        parsed = model_for(call).model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise ContentError(f"JSON fails the schema: {where}: {first['msg']}") from None
    answers = []
    for key in call.keys:
        item = getattr(parsed, key)
        answer = item.answer.strip()
        question = getattr(item, "question", None)
        if not answer or (question is not None and not question.strip()):
            raise ContentError(f"empty answer for {key}")
        check_text(answer, f"answer for {key}")  # escapes (\\ud800) decode to bad text
        if question:
            check_text(question, f"question for {key}")
        answers.append(Answer(answer, question.strip() if question else None))
    return answers
