"""What ``dermasynth generate`` shows while it runs and when it ends: the live progress bar (or
plain progress lines when stderr is not a terminal) and the final summary table."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .common import err, out

if TYPE_CHECKING:
    from ..engine import Engine
    from ..engine import Progress as Counters


def usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.4f}"


class LiveProgress:
    """The progress bar: done/total, pairs/min, tokens, failures, estimated cost, ETA. When
    stderr is not a terminal (a log file, nohup, SLURM) a plain line every ``every`` seconds
    instead, flushed, so a log shows progress while the run goes and after a kill."""

    def __init__(self, engine: Engine, every: float = 30.0):
        self.engine = engine
        self.every = every
        self.lines = not err.is_terminal
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._latest: Counters | None = None
        self.progress = Progress(
            TextColumn("generating"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeRemainingColumn(),
            console=err,
            transient=False,
            disable=not err.is_terminal,
        )
        self.last = 0.0

    def __enter__(self):
        self.progress.start()
        self.task = self.progress.add_task("gen", total=None, stats="")
        if self.lines:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        return self.update

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            if self._latest is not None:
                _print_line(progress_line(self._latest))

    def update(self, c: Counters) -> None:
        first = self._latest is None
        self._latest = c
        if self.lines:
            if first:  # at once: a log shows the run started, even if it is killed soon
                _print_line(progress_line(c))
            return
        now = time.monotonic()
        if now - self.last < 0.2 and c.remaining:
            return
        self.last = now
        minutes = max(1e-9, (now - c.started) / 60)
        stats = (
            f"{c.responses / minutes:,.0f} pairs/min  {c.input_tokens + c.output_tokens:,} tok  "
            f"{c.failures} failed  {usd(c.cost if c.cost_known else None)}"
        )
        self.progress.update(
            self.task, total=c.planned, completed=c.planned - c.remaining, stats=stats
        )

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            if self._latest is not None:
                _print_line(progress_line(self._latest))
        self.progress.stop()


def progress_line(c: Counters, now: float | None = None) -> str:
    """One plain progress line: done/total, rate, failures, cost and ETA."""
    now = time.monotonic() if now is None else now
    minutes = max(1e-9, (now - c.started) / 60)
    done_now = c.responses + c.failures
    done = c.planned - c.remaining
    rate = done_now / minutes
    pct = 100 * done / c.planned if c.planned else 100.0
    eta = "unknown" if rate <= 0 else _duration(c.remaining / rate * 60)
    return (
        f"generate: {done:,}/{c.planned:,} done ({pct:.1f}%), {rate:,.0f} requests/min, "
        f"{c.failures:,} failed, cost {usd(c.cost if c.cost_known else None)}, ETA {eta}"
    )


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _print_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def print_summary(engine: Engine, c: Counters, seconds: float) -> dict:
    info = engine.finish()
    table = Table(title="generate", title_justify="left", show_header=False)
    rows = [
        ("planned requests", f"{c.planned:,}"),
        ("already done before this run", f"{c.done_before:,}"),
        ("answered now", f"{c.responses:,} in {c.calls:,} calls ({seconds:,.1f} s)"),
        ("failed now", f"{c.failures:,}"),
        ("retries", f"{c.transient_retries:,} transient, {c.content_retries:,} content"),
        (
            "tokens now",
            f"{c.input_tokens:,} in, {c.output_tokens:,} out ({c.thought_tokens:,} thinking)",
        ),
        (
            "responses.jsonl / failures.jsonl",
            f"{info['counts']['responses']:,} / {info['counts']['failures']:,}",
        ),
        (
            "estimated cost of all responses",
            f"{usd(info['estimated_cost_usd'])} ({info['priced_as']})",
        ),
    ]
    for reason, n in sorted(c.reasons.items(), key=lambda kv: -kv[1]):
        rows.append((f"  failed: {reason}", str(n)))
    for key, value in rows:
        table.add_row(key, value)
    out.print(table)
    out.file.flush()
    left = info["counts"]["planned"] - info["counts"]["responses"] - info["counts"]["failures"]
    if left:
        out.print(f"{left:,} requests not finished: rerun to continue")
    return info
