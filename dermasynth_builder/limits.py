"""Requests-per-minute and tokens-per-minute limits as async token buckets.

A call reserves its estimate before it starts and settles with the real usage after, so the
tokens bucket tracks what the server counts. Buckets refill at ``margin`` (98%) of the limit and
hold half of the remaining slack, so requests leave at a steady pace, a late wake-up of the event
loop loses no budget, and no 60-second window can exceed the quota: bursts are what earn 429s.

A waiting call never sleeps past the moment it could go: budget given back by ``settle`` wakes
it at once. A request larger than the whole per-minute budget could never go: ``acquire``
refuses it with ``OverBudget`` instead of waiting for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import time


class OverBudget(Exception):
    """One request needs more than the whole per-minute budget: it can never be sent."""


class RateLimiter:
    """A continuous-refill bucket of ``per_minute`` units; ``None`` means unlimited.

    ``ceiling`` is the largest single request to accept (default ``per_minute``): worker
    processes that share a quota each hold a slice of it but still take a request that fits the
    whole quota (it goes into debt and the slice repays it)."""

    def __init__(
        self, per_minute: float | None, margin: float = 0.98, ceiling: float | None = None
    ):
        self.per_minute = per_minute
        self.ceiling = ceiling if ceiling is not None else per_minute
        self.rate = (per_minute or 0) * margin / 60.0
        # any 60 s window sees at most capacity + margin * per_minute <= per_minute
        self.capacity = max(1.0, (1.0 - margin) * (per_minute or 0) / 2)
        self.available = self.capacity
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()
        self._returned = asyncio.Event()  # set by settle() when budget comes back

    def _refill(self, now: float) -> None:
        self.available = min(self.capacity, self.available + (now - self.updated) * self.rate)
        self.updated = now

    async def acquire(self, amount: float = 1.0) -> None:
        """Wait until ``amount`` units are free and take them (an amount larger than the bucket
        waits for a full bucket, then goes into debt). Raises ``OverBudget`` when ``amount``
        exceeds the whole per-minute budget."""
        if self.per_minute is None:
            return
        if self.ceiling is not None and amount > self.ceiling:
            raise OverBudget(
                f"needs {amount:,.0f} per call, more than the whole budget of "
                f"{self.ceiling:,.0f} per minute"
            )
        async with self._lock:  # first come, first served
            while True:
                self._refill(time.monotonic())
                need = min(amount, self.capacity)
                if self.available >= need:
                    self.available -= amount
                    return
                self._returned.clear()
                wait = (need - self.available) / self.rate
                with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                    await asyncio.wait_for(self._returned.wait(), wait)

    def settle(self, reserved: float, actual: float) -> None:
        """Give back (or take more of) the difference between an estimate and the real use;
        a call waiting for budget wakes up and looks again."""
        if self.per_minute is None:
            return
        self._refill(time.monotonic())
        self.available = min(self.capacity, self.available + reserved - actual)
        if reserved > actual:
            self._returned.set()
