"""``generate --workers N``: the pending calls shared out over N worker processes, for quotas
one core cannot fill.

The parent holds the run folder's lock and is the only writer: workers make calls and send
each outcome (its rows, usage and model) back on a queue, and the parent writes them through
the exactly-once sink, so a row can never be written twice, whoever dies. Work is handed out
one image at a time from a shared queue, so a fast worker takes more. Each worker gets 1/N of
``--rpm``, ``--tpm`` and ``--concurrency``, so the caps hold in total.

A worker that dies (killed, out of memory) loses only the calls it had in flight: when the
others have drained the queue, the parent hands out what has no outcome yet in a new round. A
parent that dies takes its workers with it (they poll their parent and exit), and a rerun does
only the rest, as always.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import signal
import threading
from multiprocessing import connection as mp_connection
from typing import TYPE_CHECKING, Any

from .backends import StopRun, Usage
from .run import Failure, Request, Response

if TYPE_CHECKING:
    from .engine import Engine

MAX_ROUNDS = 5  # rounds in which workers die before the parent gives up (the rest stays pending)


def run_workers(engine: Engine) -> None:
    """Run ``engine``'s pending calls in worker processes; outcomes are written here."""
    done_before = None
    for _ in range(MAX_ROUNDS):
        images = _by_image(engine.pending_groups())
        if done_before is None:
            done_before = engine.progress.done_before
        engine.progress.done_before = done_before  # outcomes of earlier rounds count as now
        engine.on_progress(engine.progress)
        if not images or engine.stopped is not None:
            return
        if _round(engine, images):  # every worker finished its share
            return


def _by_image(groups: list[list[Request]]) -> list[list[list[dict[str, Any]]]]:
    """The groups as work items, one per image (its calls' requests as plain dicts)."""
    items: dict[tuple[str, str], list[list[dict[str, Any]]]] = {}
    for group in groups:
        first = group[0]
        items.setdefault((first.source, first.image_id), []).append([r.to_dict() for r in group])
    return list(items.values())


def _round(engine: Engine, images: list[list[list[dict[str, Any]]]]) -> bool:
    """One round of workers over ``images``; True when every worker finished. Each worker has
    its own two pipes (one reader, one writer each), so a killed worker breaks only its own."""
    options = engine.options
    n = max(1, min(options.workers, len(images)))
    share = options.model_copy(
        update={
            "workers": 1,
            "retry_failed": False,
            "rpm": None if options.rpm is None else options.rpm / n,
            "tpm": None if options.tpm is None else options.tpm / n,
            "concurrency": max(1, math.ceil(options.concurrency / n)),
        }
    )
    ctx = multiprocessing.get_context("spawn")
    limits = {"rpm": options.rpm, "tpm": options.tpm}
    todo = list(reversed(images))  # pop() hands them out in plan order
    workers: dict[Any, tuple[Any, Any]] = {}  # results conn -> (process, work conn)
    procs = []
    for i in range(n):
        work_out, work_in = ctx.Pipe(duplex=False)
        results_out, results_in = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=worker_main,
            args=(str(engine.run), share.model_dump(mode="json"), limits, work_out, results_in),
            name=f"dermasynth-worker-{i}",
        )
        proc.start()
        procs.append(proc)
        work_out.close()
        results_in.close()
        workers[results_out] = (proc, work_in)
    finished = 0
    try:
        while workers and engine.stopped is None:
            for conn in mp_connection.wait(list(workers), timeout=1.0):
                proc, work_in = workers[conn]
                try:
                    message = conn.recv()
                except (EOFError, OSError):  # the worker died: its calls in flight are lost
                    del workers[conn]
                    continue
                if message[0] == "more":
                    with contextlib.suppress(OSError):
                        work_in.send(todo.pop() if todo else None)
                    continue
                if message[0] in ("done", "stop"):
                    finished += 1
                _handle(engine, message)
    finally:
        stopping = engine.stopped is not None or finished < len(procs)
        for proc in procs:
            if stopping and proc.is_alive():
                with contextlib.suppress(OSError):
                    proc.kill()  # stopped, interrupted, or a worker died: no half-rounds
            proc.join()
        for conn, (_, work_in) in workers.items():
            conn.close()
            work_in.close()
    return finished == n


def _handle(engine: Engine, message: tuple[Any, ...]) -> None:
    kind = message[0]
    if kind == "ok":
        _, rows, usage, model, batch = message
        written = engine.open_sink().add_responses(Response.from_dict(r) for r in rows)
        engine.count_success(len(written), Usage(*usage), model, batch)
    elif kind == "failed":
        _, rows, kind_, reason = message
        written = engine.open_sink().add_failures(Failure.from_dict(r) for r in rows)
        engine.count_failure(len(written), kind_, reason)
    elif kind == "done":
        _, transient, content = message
        engine.progress.transient_retries += transient
        engine.progress.content_retries += content
    elif kind == "stop":
        engine.stopped = StopRun(message[1])


class Remote:
    """A worker's end of its pipes: outcomes go to the parent instead of being written."""

    def __init__(self, work: Any, results: Any):
        self.work = work
        self.results = results
        self._lock = threading.Lock()  # the event loop and the work thread both send

    def send(self, message: tuple[Any, ...]) -> None:
        with self._lock:
            self.results.send(message)

    def success(self, rows: list[Response], usage: Usage, model: str, batch: bool) -> None:
        counts = (usage.prompt_tokens, usage.output_tokens, usage.thoughts_tokens, 0)
        self.send(("ok", [r.to_dict() for r in rows], counts, model, batch))

    def failure(self, rows: list[Failure], kind: str) -> None:
        reason = rows[0].reason if rows else ""
        self.send(("failed", [r.to_dict() for r in rows], kind, reason))

    def more(self) -> Any:
        """The next image's work (a list of request groups), or None when there is no more."""
        self.send(("more",))
        return self.work.recv()


def _watch_parent() -> None:
    """Exit when the parent dies (even by kill -9): its calls would be written by nobody."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            threading.Event().wait(0.2)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


def worker_main(
    run: str, options: dict[str, Any], limits: dict[str, Any], work: Any, results: Any
) -> None:
    """A worker process: make the calls of the images the parent hands out. Anything that
    goes wrong here stops the run with one line (the parent prints it), never a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops us
    _watch_parent()
    remote = Remote(work, results)
    try:
        _work(run, options, limits, remote)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as one line
        with contextlib.suppress(OSError):
            remote.send(("stop", f"a worker process failed: {type(exc).__name__}: {exc}"))


def _work(run: str, options: dict[str, Any], limits: dict[str, Any], remote: Remote) -> None:
    from .engine import Engine, GenerateOptions
    from .limits import RateLimiter

    opts = GenerateOptions(**options)
    engine = Engine(run, opts, lock=False)
    engine.remote = remote
    # a slice of each limit, but a call may be as large as the whole of it
    engine.rpm = RateLimiter(opts.rpm, ceiling=limits["rpm"])
    engine.tpm = RateLimiter(opts.tpm, ceiling=limits["tpm"])
    records = engine.records_by_image()
    images: dict[Any, Any] = {}
    ready: list[Any] = []

    async def next_call() -> Any:
        while not ready:
            item = await asyncio.to_thread(remote.more)
            if item is None:
                return None
            for group in item:
                requests = [Request.from_dict(r) for r in group]
                ready.append(engine.make_call(requests, records, images, render=False))
        return ready.pop(0)

    try:
        asyncio.run(engine.run_calls(next_call))
        if engine.stopped is not None:
            remote.send(("stop", str(engine.stopped)))
        else:
            p = engine.progress
            remote.send(("done", p.transient_retries, p.content_retries))
    finally:
        engine.close()
