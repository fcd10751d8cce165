"""Generate: turn planned requests into responses, with limits, retries and crash-safe resume.

Every planned request id ends in exactly one line of ``responses.jsonl`` or ``failures.jsonl``.
Lines are appended and flushed as calls complete; on start the engine re-reads both files (a
torn last line is ignored and redone) and does only what is left, so any number of ``kill -9``
and restarts neither loses nor repeats a request. The requests planned for one image go in one
call by default (one upload serves every question, and fewer calls fit under an RPM cap).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import random
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .backends import (
    Backend,
    BackendConfigError,
    Call,
    ContentError,
    FinalError,
    StopRun,
    TransientError,
    make_backend,
)
from .backends.base import SharedImage
from .engine_results import Accounting, Progress, redact
from .images import CACHE_DIR, ImageCache
from .limits import OverBudget, RateLimiter
from .options import GenerateOptions
from .paths import templates_dir
from .pricing import SettingsError, load_profiles, resolve_settings
from .prompts import make_env
from .records import SourceRecord
from .run import Request, ResultSink, RunFolder


def _id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


class Engine(Accounting):
    """One ``generate`` run over a run folder."""

    def __init__(
        self,
        run: Path,
        options: GenerateOptions,
        backend: Backend | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        *,
        lock: bool = True,
    ):
        """``lock=False`` only for ``--workers`` processes, whose parent holds the lock."""
        self.folder = RunFolder(run)
        self.sink: ResultSink | None = None
        self.run = self.folder.path
        self.options = options
        self._lock = contextlib.ExitStack()
        if lock:
            self._lock.enter_context(self.folder.lock("generate"))  # released by close()
        self.warnings: list[str] = []
        try:
            self.info = self.folder.check_plan(templates_dir())
            self.backend = backend or make_backend(
                options.backend, self.info.get("system", ""), options.model_dump()
            )
            self._configure_model()
        except BaseException:
            self.close()
            raise
        self.priced_model = self.backend.priced_as
        self.image_cache = self._image_cache()
        self.template = make_env(templates_dir()).get_template("request.j2")
        self.roots = {k: Path(v["root"]) for k, v in self.info["plan"]["sources"].items()}
        self.progress = Progress()
        # a model with no price: its cost reads "unknown" from the first progress line on
        self.progress.cost_known = self.profile is not None and self.profile.standard is not None
        self.on_progress = on_progress or (lambda p: None)
        self.rpm = RateLimiter(options.rpm)
        self.tpm = RateLimiter(options.tpm)
        self.rng = random.Random()
        self.stopped: StopRun | None = None  # why the run stopped early, if it did
        self.remote: Any = None  # in a --workers process: where outcomes go (workers.Remote)
        self._connection_failures = 0  # in a row, across calls; an answer resets it
        self._tasks: set[asyncio.Task] = set()

    def _configure_model(self) -> None:
        """Resolve the model's profile and the run's media resolution and thinking, hand them
        to the backend, and (for backends that can) check the model exists: all before any
        work is sent. Raises BackendConfigError with one line."""
        options = self.options
        model = self.backend.priced_as
        try:
            self.profiles = load_profiles(options.prices)
            self.settings = resolve_settings(
                self.profiles,
                model,
                options.media_resolution,
                options.thinking,
                options.max_image_side,
            )
        except SettingsError as exc:
            raise BackendConfigError(str(exc)) from None
        self.profile = self.settings.profile
        if self.profile is None:
            self.warnings.append(
                f"no profile for model {model!r}: its cost reads 'unknown' and images are "
                f"downscaled to {self.settings.max_image_side} px (add it with --prices FILE)"
            )
        elif self.profile.standard is None:
            self.warnings.append(f"no price known for {model!r}: its cost reads 'unknown'")
        self.backend.use(self.settings)
        if self.backend.checks_model:
            self.backend.check_model()

    def _image_cache(self) -> ImageCache:
        """``RUN/cache/images/<plan digest>``: copies made for an older plan are removed."""
        digest = str((self.info.get("fingerprint") or {}).get("digest") or "plan")[:16]
        parent = self.run / CACHE_DIR
        if parent.is_dir():
            for old in parent.iterdir():
                if old.name != digest:
                    shutil.rmtree(old, ignore_errors=True)
        return ImageCache(parent / digest, self.options.image_cache_mb * 2**20)

    def close(self) -> None:
        """Close the result files and release the run folder's lock."""
        if self.sink is not None:
            self.sink.close()
            self.sink = None
        self._lock.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open_sink(self) -> ResultSink:
        """The run's exactly-once result sink, opened once; ``--retry-failed`` first gives the
        recorded failures another chance."""
        if self.sink is None:
            sink = self.folder.sink()
            if self.options.retry_failed:
                sink.forget_failures()
            self.sink = sink.open()
        return self.sink

    # -- planning the calls --------------------------------------------------------------
    def pending_calls(self) -> list[Call]:
        """The calls still to make: planned requests with no outcome yet, grouped by image."""
        groups = self.pending_groups()
        records = self.records_by_image()
        images: dict[Path, SharedImage] = {}  # one prepared copy per image, however many calls
        return [  # prompts are rendered when each call starts, and dropped when it ends
            self.make_call(requests, records, images, render=False) for requests in groups
        ]

    def pending_groups(self) -> list[list[Request]]:
        """The requests of each call still to make (planned, no outcome yet), in plan order;
        the calls about one image are next to each other."""
        done = self.open_sink().done
        groups: dict[tuple[str, ...], list[Request]] = {}
        planned = 0
        for req in self.folder.requests():
            planned += 1
            if req.id in done:
                continue
            key: tuple[str, ...] = (req.source, req.image_id)
            if self.options.one_question_per_request:
                key = (*key, req.id)
            groups.setdefault(key, []).append(req)
        self.progress.planned = planned
        self.progress.done_before = len(done)
        if groups:  # results will change: curate and package must run again
            self.folder.start_step("generate")
        return list(groups.values())

    def make_call(
        self,
        requests: list[Request],
        records: dict[tuple[str, str], SourceRecord],
        images: dict[Path, SharedImage] | None = None,
        render: bool = True,
    ) -> Call:
        """One call for requests about one image, with its prompt rendered. Calls made with
        the same ``images`` dict share each image's prepared bytes."""
        first = requests[0]
        path = self.roots[first.source] / first.image_path
        settings = self.settings
        shared = None if images is None else images.get(path)
        if shared is None:
            shared = SharedImage(
                path, settings.max_image_side, settings.keep_original, self.image_cache
            )
            if images is not None:
                images[path] = shared
        call = Call(
            call_id=_id(*(r.id for r in requests)),
            image_path=path,
            requests=requests,
            record=records.get((first.source, first.image_id)),
            max_image_side=settings.max_image_side,
            source=shared,
            image_tokens=settings.image_tokens(),
        )
        if render:
            self.render_prompt(call)
        return call

    def render_prompt(self, call: Call) -> str:
        """The call's prompt, rendered on first use (a long run does not hold every prompt)."""
        if not call.prompt:
            first = call.requests[0]
            call.prompt = self.template.render(context=first.context, questions=call.questions())
        return call.prompt

    def records_by_image(self) -> dict[tuple[str, str], SourceRecord]:
        """The records, for backends that answer from metadata (offline); empty otherwise."""
        if not self.backend.needs_records:
            return {}
        return self.folder.records_by_image()

    # -- running ---------------------------------------------------------------------------
    async def run_async(self, finish: bool = True) -> Progress:
        """Make every pending call. Raises ``StopRun`` (after cancelling the calls in flight,
        which record nothing) when an answer says no call can succeed (a refused key, a model
        the server does not have) or too many connection failures come in a row."""
        if self.options.workers > 1:
            from .workers import run_workers

            run_workers(self)  # blocks the loop: nothing else runs on it; Ctrl-C lands here
            await self.backend.aclose()
        else:
            calls = collections.deque(self.pending_calls())  # a started call leaves the queue
            self.on_progress(self.progress)

            async def next_call() -> Call | None:
                return calls.popleft() if calls else None

            try:
                await self.run_calls(next_call)
            finally:
                for call in calls:  # never started: drop their hold on shared images
                    call.release()
        if self.stopped is not None:
            raise self.stopped
        if finish:
            self.finish()
        return self.progress

    async def run_calls(self, next_call: Callable[[], Awaitable[Call | None]]) -> None:
        """Make the calls ``next_call`` hands out (None: no more) with the run's concurrency,
        limits and retries; stops early when ``halt`` is called."""
        in_flight = asyncio.Semaphore(self.options.concurrency)
        window = asyncio.Semaphore(self.options.concurrency * 4)  # bounds tasks, not calls
        tasks = self._tasks = set()
        try:
            while self.stopped is None:
                await window.acquire()
                call = None if self.stopped is not None else await next_call()
                if call is None:
                    break
                task = asyncio.create_task(self._do_call(call, in_flight))
                task.add_done_callback(lambda t: window.release())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            while tasks:
                await asyncio.wait(list(tasks))
        finally:
            for task in tasks:
                task.cancel()
            await self.backend.aclose()

    def halt(self, reason: StopRun) -> None:
        """Stop the run: no new call starts and the calls in flight are cancelled (nothing is
        recorded for them); ``run_async`` then raises ``reason``."""
        if self.stopped is None:
            self.stopped = StopRun(redact(str(reason)))
            current = asyncio.current_task()
            for task in list(self._tasks):
                if task is not current:
                    task.cancel()

    def run_sync(self, finish: bool = True) -> Progress:
        return asyncio.run(self.run_async(finish))

    async def _do_call(self, call: Call, in_flight: asyncio.Semaphore) -> None:
        try:
            self.render_prompt(call)
            await self._attempts(call, in_flight)
        finally:  # answered, failed or cancelled: its image and prompt are no longer needed
            call.release()
            call.prompt = ""

    async def _attempts(self, call: Call, in_flight: asyncio.Semaphore) -> None:
        attempt = content_failures = 0
        options = self.options
        while True:
            attempt += 1
            estimate = self.backend.estimate_tokens(call, options.max_output_tokens)
            try:
                async with in_flight:
                    if self.backend.sends_image:
                        await call.image()  # prepare first: the limiter should pace arrivals
                    await self.tpm.acquire(estimate)
                    await self.rpm.acquire(1)
                    started = time.monotonic()
                    result = await asyncio.wait_for(self.backend.generate(call), options.timeout)
            except OverBudget as exc:  # never sent: it could never be
                return self.write_failure(
                    call, "final", f"over the token budget: the call {exc} (--tpm)", attempt
                )
            except (asyncio.TimeoutError, TimeoutError):
                error: Exception = TransientError(
                    f"no answer within {options.timeout:g} s (timeout)"
                )
            except (TransientError, ContentError, FinalError) as exc:
                error = exc
            except Exception as exc:  # noqa: BLE001 - an unexpected bug must fail its requests, not the run
                error = FinalError(f"unexpected {type(exc).__name__}: {exc}")
            else:
                self._connection_failures = 0
                self.tpm.settle(estimate, result.usage.total)
                self.write_success(call, result, attempt, time.monotonic() - started)
                return
            self.tpm.settle(estimate, 0 if isinstance(error, TransientError) else estimate)
            if isinstance(error, StopRun):
                return self.halt(error)
            if isinstance(error, TransientError) and error.connection:
                self._connection_failures += 1
                if self._connection_failures >= options.max_connection_failures:
                    return self.halt(
                        StopRun(
                            f"{self._connection_failures} connection failures in a row, the "
                            f"last: {error}; is the server reachable?"
                        )
                    )
            else:
                self._connection_failures = 0  # the server answered
            if isinstance(error, FinalError):
                return self.write_failure(call, "final", str(error), attempt)
            if isinstance(error, ContentError):
                content_failures += 1
                if (
                    content_failures >= options.max_content_attempts
                    or attempt >= options.max_attempts
                ):
                    return self.write_failure(call, "content", str(error), attempt)
                self.progress.content_retries += 1
                await asyncio.sleep(min(options.retry_base_delay, 1.0) * self.rng.uniform(0.5, 1.0))
                continue
            if attempt >= options.max_attempts:
                return self.write_failure(call, "transient", str(error), attempt)
            self.progress.transient_retries += 1
            await asyncio.sleep(self._backoff(attempt, getattr(error, "retry_after", None)))

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter; never shorter than the server's requested delay."""
        base = self.options.retry_base_delay * 2 ** (attempt - 1)
        delay = min(self.options.retry_max_delay, base) * self.rng.uniform(0.5, 1.5)
        if retry_after is not None:
            delay = max(delay, retry_after + self.rng.uniform(0, 0.25 * max(retry_after, 0.1)))
        return delay
