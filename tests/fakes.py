"""A scripted backend for engine unit tests: queue outcomes, inspect the calls it received."""

from __future__ import annotations

import asyncio
from collections import deque

from dermasynth_builder.backends import Answer, Backend, Call, CallResult, Usage


class FakeBackend(Backend):
    name = "fake"

    def __init__(self) -> None:
        self.model = "fake-model"
        self.queue: deque = deque()
        self.per_image: dict[str, deque] = {}
        self.history: list[Call] = []

    def enqueue(self, *outcomes: object, image_id: str | None = None) -> None:
        """Each outcome is "ok", "hang", or an exception instance to raise; with ``image_id``
        they apply to that image's calls only (calls run concurrently, in no fixed order)."""
        if image_id is None:
            self.queue.extend(outcomes)
        else:
            self.per_image.setdefault(image_id, deque()).extend(outcomes)

    async def generate(self, call: Call) -> CallResult:
        self.history.append(call)
        queue = self.per_image.get(call.requests[0].image_id) or self.queue
        outcome = queue.popleft() if queue else "ok"
        if outcome == "hang":
            await asyncio.sleep(3600)
        if isinstance(outcome, Exception):
            raise outcome
        answers = [
            Answer(f"answer {r.id}", "my own question?" if r.self_instruct else None)
            for r in call.requests
        ]
        return CallResult(answers, self.model, Usage(300 * len(answers), 50 * len(answers), 0, 258))
