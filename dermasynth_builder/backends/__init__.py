"""Model backends, registered by name; ``make_backend`` builds one from the generate options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
)


def _gemini(system: str, options: dict[str, Any]) -> Backend:
    from .gemini import GeminiBackend

    return GeminiBackend(
        options["model"],
        system,
        temperature=options["temperature"],
        seed=options["seed"],
        max_output_tokens=options["max_output_tokens"],
        timeout_s=options["timeout"],
    )


def _openai(system: str, options: dict[str, Any]) -> Backend:
    from .openai_compat import OpenAIBackend

    return OpenAIBackend(
        options["model"],
        system,
        base_url=options.get("base_url"),
        temperature=options["temperature"],
        seed=options["seed"],
        max_output_tokens=options["max_output_tokens"],
        timeout_s=options["timeout"],
        max_connections=options.get("concurrency"),
    )


def _offline(system: str, options: dict[str, Any]) -> Backend:
    from .offline import OfflineBackend

    return OfflineBackend(system, priced_as=options["model"])


BACKENDS: dict[str, Callable[[str, dict[str, Any]], Backend]] = {
    "gemini": _gemini,
    "openai": _openai,
    "offline": _offline,
}


def backend_class(name: str) -> type[Backend]:
    """The class registered as ``name`` (imported on demand), to read its capabilities."""
    if name not in BACKENDS:
        raise BackendConfigError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
    import importlib

    module, cls = _CLASSES[name]
    return getattr(importlib.import_module(module, __name__), cls)


_CLASSES = {
    "gemini": (".gemini", "GeminiBackend"),
    "openai": (".openai_compat", "OpenAIBackend"),
    "offline": (".offline", "OfflineBackend"),
}


def make_backend(name: str, system: str, options: dict[str, Any]) -> Backend:
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise BackendConfigError(
            f"unknown backend {name!r}; known: {', '.join(BACKENDS)}"
        ) from None
    return factory(system, options)


__all__ = [
    "BACKENDS",
    "Answer",
    "Backend",
    "BackendConfigError",
    "Call",
    "CallResult",
    "ContentError",
    "FinalError",
    "StopRun",
    "TransientError",
    "Usage",
    "backend_class",
    "make_backend",
]
