"""Requests-per-minute and tokens-per-minute limits as async token buckets.

A call reserves its estimate before it starts and settles with the real usage after, so the
tokens bucket tracks what the server counts. Buckets refill at ``margin`` (98%) of the limit and
hold half of the remaining slack, so requests leave at a steady pace, a late wake-up of the event
loop loses no budget, and no 60-second window can exceed the quota: bursts are what earn 429s.
"""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    """A continuous-refill bucket of ``per_minute`` units; ``None`` means unlimited."""

    def __init__(self, per_minute: float | None, margin: float = 0.98):
        self.per_minute = per_minute
        self.rate = (per_minute or 0) * margin / 60.0
        # any 60 s window sees at most capacity + margin * per_minute <= per_minute
        self.capacity = max(1.0, (1.0 - margin) * (per_minute or 0) / 2)
        self.available = self.capacity
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self, now: float) -> None:
        self.available = min(self.capacity, self.available + (now - self.updated) * self.rate)
        self.updated = now

    async def acquire(self, amount: float = 1.0) -> None:
        """Wait until ``amount`` units are free and take them (an oversized amount waits for a
        full bucket, then goes)."""
        if self.per_minute is None:
            return
        async with self._lock:  # first come, first served
            while True:
                self._refill(time.monotonic())
                need = min(amount, self.capacity)
                if self.available >= need:
                    self.available -= amount
                    return
                await asyncio.sleep((need - self.available) / self.rate)

    def settle(self, reserved: float, actual: float) -> None:
        """Give back (or take more of) the difference between an estimate and the real use."""
        if self.per_minute is None:
            return
        self._refill(time.monotonic())
        self.available = min(self.capacity, self.available + reserved - actual)
