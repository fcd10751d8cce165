"""What the two model fakes (Gemini, OpenAI-compatible) share on top of ``LocalServer``: the
common options, a FIFO script of responses, the RPM window with random errors, and the
deterministic answer text that names its question. Stdlib only."""

from __future__ import annotations

import math
import random
import re
import time
from collections import Counter, deque
from typing import Any, ClassVar

from tests.support.localserver import LocalServer

LOREM = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua"
).split()
_LINE = re.compile(r"^\s*(?:[-*]\s*)?([A-Za-z_][\w.-]*)\s*:\s*(.+?)\s*$")


def sentence(name: str, line: str | None, words: int) -> str:
    """A deterministic answer that names its field, so tests can see what went where."""
    if line:
        head = ["Answer", "to:", *line.split()[:8], f"({name})"]
    else:
        head = ["Answer", "for", f"{name}:"]
    start = sum(map(ord, name))
    filler = [LOREM[(start + i) % len(LOREM)] for i in range(max(0, words - len(head)))]
    return " ".join(head + filler) + "."


def question_lines(prompt: str) -> dict[str, str]:
    """Map ``name: text`` lines of the prompt so answers can echo their question."""
    lines: dict[str, str] = {}
    for line in prompt.splitlines():
        match = _LINE.match(line)
        if match:
            lines.setdefault(match[1].lower(), match[2])
    return lines


class ScriptedServer(LocalServer):
    """A model fake: scripted responses first, then an RPM window and random errors."""

    kinds: ClassVar[frozenset[str]]  # what enqueue() accepts
    counters: ClassVar[list[str]]  # stats keys that read 0 before they first happen

    def __init__(
        self,
        *,
        latency: float,
        latency_jitter: float,
        rpm_limit: int | None,
        error_rates: dict[int, float] | None,
        retry_after: float | None,
        seed: int,
        api_key: str | None,
        answer_words: int,
        port: int,
        keep_image_data: bool,
        window_seconds: float,
    ) -> None:
        # One lock: stats, log, script, rng, the rpm window and the open connections.
        super().__init__(port)
        self.latency, self.latency_jitter, self.rpm_limit = latency, latency_jitter, rpm_limit
        self.error_rates = dict(error_rates or {})
        self.retry_after, self.api_key, self.answer_words = retry_after, api_key, answer_words
        # The rpm window; tests shorten it (e.g. 30 requests per 3 s) to fill it in seconds.
        self.window_seconds = window_seconds
        # Long benchmarks should pass False: 100k logged base64 images would fill the RAM.
        self.keep_image_data = keep_image_data
        # A Counter so tests can read stats["error_500"] before any 500 happened.
        self.stats: Counter[str] = Counter(dict.fromkeys(self.counters, 0))
        self.log: list[dict[str, Any]] = []
        self._rng = random.Random(seed)
        self._script: deque[tuple[str, dict[str, Any]]] = deque()
        self._window: deque[float] = deque()

    def enqueue(self, kind: str, **kw: Any) -> None:
        """Script the next response (FIFO); ``times=n`` queues it n times."""
        if kind not in self.kinds:
            raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(self.kinds)}")
        times = int(kw.pop("times", 1))
        with self._lock:
            self._script.extend([(kind, kw)] * times)

    def _gate(self, entry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """RPM window then random errors, under one lock so bursts cannot overshoot the limit."""
        with self._lock:
            now = time.monotonic()
            while self._window and self._window[0] <= now - self.window_seconds:
                self._window.popleft()
            if self.rpm_limit is not None and len(self._window) >= self.rpm_limit:
                self.stats["rpm_429"] += 1
                entry["outcome"] = "rpm_429"
                wait = self._window[0] + self.window_seconds - now
                return "rpm_429", {"wait": max(1, math.ceil(wait))}
            draw = self._rng.random()
            for code, rate in sorted(self.error_rates.items()):
                draw -= rate
                if draw < 0:  # random errors do not take a slot in the rpm window
                    return "status", {"code": code}
            self._window.append(now)
        return "ok", {}
