"""Source readers, one module per dataset, found through the registry and imported on demand.

Importing this package is cheap (no pandas): ``dermasynth --help`` and every command that only
needs source names or licences read :mod:`.registry`; a reader module is imported by
``get_source`` the first time its source is read.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from .base import ReadResult, Source, SourceFormatError
from .registry import REGISTRY, SOURCE_NAMES, source_info

_READERS: dict[str, type[Source]] = {}


def register(cls: type[Source]) -> type[Source]:
    """Mark ``cls`` as the reader of its ``name``; names must be unique and in the registry."""
    if cls.name in _READERS:
        raise ValueError(f"source {cls.name!r} registered twice")
    _READERS[cls.name] = cls
    return cls


def reader_class(name: str) -> type[Source]:
    """The reader class of ``name``, importing its module on first use; ``KeyError`` if unknown."""
    if name not in _READERS:
        importlib.import_module(f"{__name__}.{source_info(name).reader}")
        if name not in _READERS:
            raise LookupError(f"module {source_info(name).reader!r} registers no reader {name!r}")
    return _READERS[name]


def get_source(name: str) -> Source:
    """A reader for ``name``; a ``KeyError`` lists the known names."""
    return reader_class(name)()


class _Readers(Mapping[str, type[Source]]):
    """``name -> reader class`` in registry order; iterating and ``in`` import nothing, only
    looking a reader up does. Kept for callers that predate the registry."""

    def __getitem__(self, name: str) -> type[Source]:
        return reader_class(name)

    def __iter__(self) -> Iterator[str]:
        return iter(SOURCE_NAMES)

    def __len__(self) -> int:
        return len(SOURCE_NAMES)

    def __contains__(self, name: object) -> bool:
        return name in REGISTRY

    def __repr__(self) -> str:
        return f"SOURCES({', '.join(SOURCE_NAMES)})"


SOURCES: Mapping[str, type[Source]] = _Readers()

__all__ = [
    "REGISTRY",
    "SOURCES",
    "SOURCE_NAMES",
    "ReadResult",
    "Source",
    "SourceFormatError",
    "get_source",
    "reader_class",
    "register",
]
