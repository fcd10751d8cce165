"""What every backend shares: the ``Backend`` base class here, and (re-exported from here, so
``from .base import ...`` keeps working) the errors the engine handles differently
(``errors.py``), the call a backend answers (``call.py``), and the result it returns with the
response schema that pins one answer per question (``answers.py``).

A call is one image with one or more planned requests. Answers map back to requests by the
schema's property names (``q1``, ``q2``, ...), never by trusting the model to echo an id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ..images import image_tokens
from .answers import (
    MAX_ANSWER_CHARS,
    MAX_BODY_BYTES,
    Answer,
    CallResult,
    PlainAnswer,
    SelfInstructAnswer,
    Usage,
    check_text,
    json_schema_for,
    model_for,
    parse_answers,
    response_model,
)
from .call import Call, SharedImage
from .errors import BackendConfigError, ContentError, FinalError, StopRun, TransientError

if TYPE_CHECKING:
    from ..pricing import ModelSettings

__all__ = [
    "MAX_ANSWER_CHARS",
    "MAX_BODY_BYTES",
    "Answer",
    "Backend",
    "BackendConfigError",
    "Call",
    "CallResult",
    "ContentError",
    "FinalError",
    "PlainAnswer",
    "SelfInstructAnswer",
    "SharedImage",
    "StopRun",
    "TransientError",
    "Usage",
    "check_text",
    "estimate_text_tokens",
    "json_schema_for",
    "model_for",
    "parse_answers",
    "response_model",
]


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
