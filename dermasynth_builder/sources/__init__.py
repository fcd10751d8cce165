"""Source readers, one module per dataset, registered by name."""

from __future__ import annotations

from .base import ReadResult, Source, SourceFormatError

SOURCES: dict[str, type[Source]] = {}


def register(cls: type[Source]) -> type[Source]:
    """Add a reader to ``SOURCES`` under its ``name``; names must be unique."""
    if cls.name in SOURCES:
        raise ValueError(f"source {cls.name!r} registered twice")
    SOURCES[cls.name] = cls
    return cls


def get_source(name: str) -> Source:
    """The reader for ``name``; a ``KeyError`` lists the known names."""
    try:
        return SOURCES[name]()
    except KeyError:
        raise KeyError(f"unknown source {name!r}; known: {', '.join(SOURCES)}") from None


from . import bcn20000, derm12345, hiba, pad_ufes_20, scin  # noqa: E402, F401  (registers them)

ORDER = ("derm12345", "bcn20000", "pad_ufes_20", "scin", "hiba")
for _name in sorted(SOURCES, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER)):
    SOURCES[_name] = SOURCES.pop(_name)

__all__ = ["SOURCES", "ReadResult", "Source", "SourceFormatError", "get_source", "register"]
