"""The call a backend answers: one image (``SharedImage``, prepared once for all its calls and
released when the last is done) with one or more planned requests (``Call``)."""

from __future__ import annotations

import asyncio
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..images import (
    ImageCache,
    ImageTooLarge,
    PreparedImage,
    original_bytes,
    pool,
    prepare_cached,
    reset_pool,
)
from ..records import SourceRecord
from ..run.schema import Request
from .errors import FinalError, TransientError


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
