"""What every backend shares: the call it answers, the result it returns, the three kinds of error
the engine retries differently, and the response schema that pins one answer per question.

A call is one image with one or more planned requests. Answers map back to requests by the
schema's property names (``q1``, ``q2``, ...), never by trusting the model to echo an id.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from ..images import (
    ImageCache,
    ImageTooLarge,
    PreparedImage,
    image_tokens,
    original_bytes,
    pool,
    prepare_cached,
    reset_pool,
)
from ..records import SourceRecord
from ..run.schema import Request

if TYPE_CHECKING:
    from ..pricing import ModelSettings


class TransientError(Exception):
    """Worth retrying after a pause: 429, 5xx, timeouts, dropped connections. ``connection``
    marks a failure to reach the server at all (refused, reset, no route): enough of those in
    a row stop the run instead of retrying the whole plan into failures."""

    def __init__(
        self,
        message: str,
        retry_after: float | None = None,
        rate_limited: bool = False,
        connection: bool = False,
    ):
        super().__init__(message)
        self.retry_after = retry_after
        self.rate_limited = rate_limited
        self.connection = connection


class ContentError(Exception):
    """The model answered but not usably (cut off, empty, JSON failing the schema): retry a few
    times, then fail with this reason."""


class FinalError(Exception):
    """Retrying cannot help (safety block, 400, bad key): fail the requests with this reason."""


class StopRun(FinalError):
    """No call can succeed until the user acts (a refused key, no permission, a model the
    server does not have): the engine stops the run at the first such answer, quoting the
    server, and records nothing for it or for any call not yet answered."""


class BackendConfigError(Exception):
    """The backend cannot start (no API key, unknown option): a one-line message for the user."""


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


class SharedImage:
    """One image file's upload bytes, prepared once for every call that sends it (all the
    questions of ``--one-question-per-request``, every retry) and dropped as soon as the last
    of those calls is answered or has failed, so memory does not grow with the run.

    Original bytes (media-resolution models) are read in a thread; an image that must be
    decoded and re-encoded is prepared in a worker process (``images.pool``), so the event loop
    never waits on Pillow, and kept in the run's disk cache (``cache``) for retries, a resumed
    run and batch mode."""

    __slots__ = (
        "path",
        "max_side",
        "keep_original",
        "cache",
        "users",
        "prepared",
        "_value",
        "_lock",
    )

    def __init__(
        self,
        path: Path,
        max_side: int = 768,
        keep_original: bool = False,
        cache: ImageCache | None = None,
    ):
        self.path = path
        self.max_side = max_side
        self.keep_original = keep_original
        self.cache = cache
        self.users = 0  # calls not yet finished that send this image
        self.prepared = 0  # how many times the file was read and prepared (tests, benches)
        self._value: PreparedImage | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def held(self) -> bool:
        return self._value is not None

    def _original(self) -> PreparedImage | None:
        try:
            return original_bytes(self.path, self.max_side)
        except ImageTooLarge as exc:
            raise FinalError(f"{exc}: {self.path}") from None
        except OSError as exc:  # deleted or damaged since the plan was made
            raise FinalError(f"image unreadable: {self.path}: {exc}") from None

    async def _prepare(self) -> PreparedImage:
        if self.keep_original:
            value = await asyncio.to_thread(self._original)
            if value is not None:
                return value
        folder = self.cache.folder if self.cache is not None else None
        loop = asyncio.get_running_loop()
        try:
            image, key, size = await loop.run_in_executor(
                pool(), prepare_cached, str(self.path), self.max_side, folder
            )
        except BrokenProcessPool:  # a worker died (out of memory?): a fresh pool next time
            reset_pool()
            raise TransientError(f"image worker process died preparing {self.path}") from None
        except ImageTooLarge as exc:
            raise FinalError(f"{exc}: {self.path}") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise FinalError(f"image unreadable: {self.path}: {exc}") from None
        if self.cache is not None:
            self.cache.added(key, size)
        return image

    async def get(self) -> PreparedImage:
        """The prepared image (read and prepared off the event loop, at most once at a time)."""
        if self._value is None:
            self._lock = self._lock or asyncio.Lock()
            async with self._lock:
                if self._value is None:
                    self._value = await self._prepare()
                    self.prepared += 1
        return self._value

    def get_sync(self) -> PreparedImage:
        """The same, for code that runs outside the event loop (batch input files)."""
        if self._value is None:
            value = self._original() if self.keep_original else None
            if value is None:
                folder = self.cache.folder if self.cache is not None else None
                try:
                    value, key, size = prepare_cached(str(self.path), self.max_side, folder)
                except ImageTooLarge as exc:
                    raise FinalError(f"{exc}: {self.path}") from None
                except (OSError, SyntaxError, ValueError) as exc:
                    raise FinalError(f"image unreadable: {self.path}: {exc}") from None
                if self.cache is not None:
                    self.cache.added(key, size)
            self._value = value
            self.prepared += 1
        return self._value

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0:
            self._value = None


@dataclass(slots=True)
class Call:
    """One image and the planned requests answered together in one model call."""

    call_id: str
    image_path: Path
    requests: list[Request]
    prompt: str = ""
    record: SourceRecord | None = None
    max_image_side: int = 768
    source: SharedImage | None = field(default=None, repr=False)
    #: tokens the image bills at most (the TPM reservation); 0: the tile rule at max_image_side
    image_tokens: int = 0

    def __post_init__(self) -> None:
        if self.source is None:
            self.source = SharedImage(self.image_path, self.max_image_side)
        self.source.users += 1

    @property
    def keys(self) -> list[str]:
        return [f"q{i + 1}" for i in range(len(self.requests))]

    @property
    def holds_image(self) -> bool:
        """Whether this call still keeps image bytes alive (False once it is finished)."""
        return self.source is not None and self.source.held

    async def image(self) -> PreparedImage:
        """The upload-ready image (prepared once per image, off the event loop)."""
        if self.source is None:
            raise FinalError(f"call {self.call_id} is finished; its image was released")
        return await self.source.get()

    def image_sync(self) -> PreparedImage:
        if self.source is None:
            raise FinalError(f"call {self.call_id} is finished; its image was released")
        return self.source.get_sync()

    def release(self) -> None:
        """The call is answered or failed for good: drop its hold on the image bytes."""
        if self.source is not None:
            self.source.release()
            self.source = None

    def questions(self) -> list[dict[str, Any]]:
        return [
            {
                "key": key,
                "question": r.question,
                "self_instruct": r.self_instruct,
                "task": r.task,
            }
            for key, r in zip(self.keys, self.requests, strict=True)
        ]


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


def estimate_text_tokens(text: str) -> int:
    return max(1, len(text) // 4)


class Backend:
    """A model behind an async ``generate``; subclasses set ``name`` and implement it.

    What a backend can do is said by class attributes, never by its name: the engine and the
    CLI read these (like simonw/llm's ``needs_key`` and ``supports_schema``).
    """

    name: ClassVar[str]
    #: answers from the records' metadata, so the engine must hand each call its record
    needs_records: ClassVar[bool] = False
    #: its answers come from no model looking at the image (a dry run): release cards say so
    simulated: ClassVar[bool] = False
    #: environment variables that hold its API key (any one of them), for help texts
    key_env: ClassVar[tuple[str, ...]] = ()
    #: refuses to start without one of ``key_env`` set (a local server may need no key)
    needs_key: ClassVar[bool] = False
    #: implements the batch interface (submit, poll, download, cancel)
    supports_batch: ClassVar[bool] = False
    #: ``--model`` must be a name the server serves (no default model makes sense)
    needs_model: ClassVar[bool] = False
    #: asks the provider whether the model exists before any work is sent (``check_model``)
    checks_model: ClassVar[bool] = False
    #: uploads the image bytes (the engine prepares them before pacing the call)
    sends_image: ClassVar[bool] = True
    model: str
    #: the run's resolved model settings (media resolution, thinking), set by the engine
    settings: ModelSettings | None = None

    def use(self, settings: ModelSettings) -> None:
        """Take the run's model settings (the engine calls this once, before any call)."""
        self.settings = settings

    def check_model(self) -> None:
        """Raise BackendConfigError naming alternatives when the provider lacks the model."""
        return None

    @property
    def priced_as(self) -> str:
        """The model whose price list bills this backend's usage."""
        return self.model

    async def generate(self, call: Call) -> CallResult:
        raise NotImplementedError

    def estimate_tokens(self, call: Call, max_output_tokens: int) -> int:
        """A generous token estimate for the TPM limiter, settled with real usage after."""
        size = call.max_image_side
        image = call.image_tokens or image_tokens(size, size)
        return image + estimate_text_tokens(call.prompt) + max_output_tokens // 2

    async def aclose(self) -> None:
        return None
