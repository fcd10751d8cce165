"""Batch mode: the plan through the Gemini Batch API (half the price, results within 24 h).

Calls are written as GenerateContentRequest JSON: inline for small jobs, a JSONL file uploaded
through the Files API for large ones, in jobs under the API's size limits. Job names are saved
in ``RUN/batch_jobs.json`` before anything else happens, so a restarted process re-attaches to
its jobs instead of submitting again (a submission cut off before its name was saved is found
again by its display name). Results are merged into responses.jsonl / failures.jsonl with the
online mode's parsing and validation, skipping ids already there: every id lands exactly once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backends import Call, CallResult, ContentError, FinalError, TransientError
from .backends.base import model_for
from .backends.gemini import RETRYABLE_STATUS
from .engine import Engine, GenerateOptions
from .images import prepare_image
from .runfolder import (
    FAILURES,
    REQUESTS,
    RESPONSES,
    JsonlAppender,
    dumps,
    iter_jsonl,
    write_json_atomic,
)

JOBS = "batch_jobs.json"
TERMINAL = {
    "JOB_STATE_SUCCEEDED",
    "JOB_STATE_FAILED",
    "JOB_STATE_CANCELLED",
    "JOB_STATE_EXPIRED",
    "JOB_STATE_PARTIALLY_SUCCEEDED",
}
INLINE_LIMIT = 20_000_000  # the API's cap on the total size of inline requests
FILE_LIMIT = 1_900_000_000  # under the 2 GB per input file


class _Chunk:
    """One job's worth of requests, streamed to a JSONL file (never all held in memory)."""

    def __init__(self, path: Path):
        self.path = path
        self.handle = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self.size = 0
        self.calls: dict[str, list[str]] = {}
        self.digest = hashlib.sha256()

    def add(self, call: Call, line: str) -> None:
        self.handle.write(line + "\n")
        self.size += len(line) + 1
        self.calls[call.call_id] = [r["id"] for r in call.requests]
        self.digest.update(call.call_id.encode())

    def close(self) -> None:
        self.handle.close()


@dataclass(slots=True)
class BatchOptions:
    poll_interval: float = 10.0
    max_poll_interval: float = 300.0
    inline_limit: int = INLINE_LIMIT
    file_limit: int = FILE_LIMIT


def load_jobs(run: Path) -> list[dict[str, Any]]:
    path = run / JOBS
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def save_jobs(run: Path, jobs: list[dict[str, Any]]) -> None:
    write_json_atomic(run / JOBS, jobs)


def inline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its ``$defs`` references written out in place."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: walk(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def request_json(call: Call, image: bytes, system: str, options: GenerateOptions) -> dict[str, Any]:
    """The REST GenerateContentRequest of one call (the same content the online mode sends)."""
    config: dict[str, Any] = {
        "responseMimeType": "application/json",
        "responseJsonSchema": inline_schema(model_for(call).model_json_schema()),
        "temperature": options.temperature,
        "maxOutputTokens": options.max_output_tokens,
    }
    if options.seed is not None:
        config["seed"] = options.seed
    return {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {
                        "inlineData": {
                            "mimeType": "image/jpeg",
                            "data": base64.b64encode(image).decode(),
                        }
                    },
                    {"text": call.prompt},
                ],
            }
        ],
        "systemInstruction": {"parts": [{"text": system}]},
        "generationConfig": config,
    }


class BatchRunner:
    """Submit, re-attach, poll and merge batch jobs for one run folder."""

    def __init__(
        self,
        run: Path,
        options: GenerateOptions,
        batch: BatchOptions | None = None,
        say: Callable[[str], None] = print,
    ):
        self.run = run
        self.options = options
        self.batch = batch or BatchOptions()
        self.say = say
        self.engine = Engine(run, options)  # the same calls, prompts and writers as online
        self.client = self.engine.backend.client  # type: ignore[attr-defined]
        self.jobs = load_jobs(run)

    # -- submitting ------------------------------------------------------------------------
    def submit(self, calls: list[Call]) -> None:
        """Stream the calls into JSONL chunks under the size limit and create one job per chunk;
        each job's name is saved as soon as it exists."""
        folder = self.run / "batch"
        folder.mkdir(exist_ok=True)
        system = self.engine.info.get("system", "")
        chunk: _Chunk | None = None
        with JsonlAppender(self.run / FAILURES) as failures:
            self.engine._failures = failures
            for call in calls:
                try:
                    image, _, _ = prepare_image(call.image_path, call.max_image_side)
                except OSError as exc:  # deleted or damaged since the plan: fail it now
                    self.engine.write_failure(call, "final", f"image unreadable: {exc}", 0)
                    continue
                line = dumps(
                    {
                        "key": call.call_id,
                        "request": request_json(call, image, system, self.options),
                    }
                )
                if chunk is not None and chunk.size + len(line) > self.batch.file_limit:
                    self._create(chunk)
                    chunk = None
                if chunk is None:
                    chunk = _Chunk(folder / f"part-{len(self.jobs):05d}.jsonl")
                chunk.add(call, line)
        if chunk is not None:
            self._create(chunk)

    def _create(self, chunk: _Chunk) -> None:
        from google.genai import types

        chunk.close()
        display = f"dermasynth-{chunk.digest.hexdigest()[:12]}"
        inline = chunk.size <= self.batch.inline_limit
        job = {
            "display_name": display,
            "name": None,
            "state": "SUBMITTING",
            "merged": False,
            "calls": chunk.calls,
            "inline": inline,
            "input_file": None,
        }
        self.jobs.append(job)
        save_jobs(self.run, self.jobs)  # before creating: a kill now is found by display name
        config = types.CreateBatchJobConfig(display_name=display)
        if inline:
            src = [_inline_item(json.loads(line)) for line in chunk.path.open(encoding="utf-8")]
            created = self.client.batches.create(model=self.options.model, src=src, config=config)
        else:
            uploaded = self.client.files.upload(
                file=str(chunk.path),
                config=types.UploadFileConfig(display_name=display, mime_type="jsonl"),
            )
            job["input_file"] = uploaded.name
            created = self.client.batches.create(
                model=self.options.model, src=uploaded.name, config=config
            )
        job["name"] = created.name
        job["state"] = _state(created)
        save_jobs(self.run, self.jobs)
        chunk.path.unlink(missing_ok=True)
        self.say(
            f"submitted {created.name}: {len(chunk.calls):,} calls "
            f"({'inline' if inline else 'file'}, {chunk.size / 2**20:,.1f} MiB)"
        )

    def _reattach_unnamed(self) -> None:
        """A job whose creation was cut off before its name was saved: find it by display name."""
        missing = {j["display_name"]: j for j in self.jobs if not j["name"]}
        if not missing:
            return
        for remote in self.client.batches.list(config={"page_size": 100}):
            job = missing.get(getattr(remote, "display_name", None))
            if job is not None and not job["name"]:
                job["name"], job["state"] = remote.name, _state(remote)
        lost = [j for j in self.jobs if not j["name"]]
        for job in lost:  # never created: its calls are simply pending again
            self.jobs.remove(job)
        save_jobs(self.run, self.jobs)

    # -- waiting and merging ---------------------------------------------------------------
    def wait_and_merge(self) -> None:
        interval = self.batch.poll_interval
        while True:
            open_jobs = [j for j in self.jobs if not j["merged"]]
            if not open_jobs:
                return
            for job in open_jobs:
                remote = self.client.batches.get(name=job["name"])
                job["state"] = _state(remote)
                if job["state"] in TERMINAL:
                    self._merge(job, remote)
            save_jobs(self.run, self.jobs)
            if any(not j["merged"] for j in self.jobs):
                states = ", ".join(
                    f"{j['name']} {j['state']}" for j in self.jobs if not j["merged"]
                )
                self.say(f"waiting {interval:.0f} s: {states}")
                time.sleep(interval)
                interval = min(self.batch.max_poll_interval, interval * 1.5)

    def _results(self, job: dict[str, Any], remote: Any) -> Iterator[tuple[str, Any, Any]]:
        """(key, response or None, error or None) for each item of a finished job."""
        dest = getattr(remote, "dest", None)
        if dest is None:
            return
        if getattr(dest, "inlined_responses", None):
            for item in dest.inlined_responses:
                key = (getattr(item, "metadata", None) or {}).get("key")
                yield key, getattr(item, "response", None), getattr(item, "error", None)
        elif getattr(dest, "file_name", None):
            from google.genai import types

            data = self.client.files.download(file=dest.file_name)
            for raw in data.decode("utf-8").splitlines():
                if not raw.strip():
                    continue
                line = json.loads(raw)
                response = line.get("response")
                parsed = (
                    types.GenerateContentResponse.model_validate(response) if response else None
                )
                yield line.get("key"), parsed, line.get("status") or line.get("error")

    def _rounds(self, ids: list[str]) -> int:
        """How many jobs have carried these requests so far."""
        first = ids[0]
        return sum(any(first in group for group in j["calls"].values()) for j in self.jobs)

    def _merge(self, job: dict[str, Any], remote: Any) -> None:
        """Write each finished item's requests to responses or failures, skipping ids already
        there (a merge cut off by a kill is simply done again). As online, content failures
        (cut-off or invalid JSON) and transient ones (5xx, an expired or failed job) are left
        pending for the next job round until ``max_content_attempts`` rounds have been spent."""
        done = {r["id"] for name in (RESPONSES, FAILURES) for r in iter_jsonl(self.run / name)}
        wanted = {i for ids in job["calls"].values() for i in ids}
        requests = {r["id"]: r for r in iter_jsonl(self.run / REQUESTS) if r["id"] in wanted}
        records = self.engine.records_by_image()
        seen: set[str] = set()
        with (
            JsonlAppender(self.run / RESPONSES) as responses,
            JsonlAppender(self.run / FAILURES) as failures,
        ):
            self.engine._responses, self.engine._failures = responses, failures

            def write(key: str, outcome: CallResult | Exception) -> None:
                call = self.engine.make_call([requests[i] for i in job["calls"][key]], records)
                keep = [k for k, r in enumerate(call.requests) if r["id"] not in done]
                if not keep:
                    return
                call.requests = [call.requests[k] for k in keep]
                if isinstance(outcome, CallResult):
                    outcome.answers = [outcome.answers[k] for k in keep]
                    self.engine.write_success(call, outcome, 1, 0.0, batch=True)
                else:
                    rounds = self._rounds(job["calls"][key])
                    if (
                        not isinstance(outcome, FinalError)
                        and rounds < self.options.max_content_attempts
                    ):
                        return  # still pending: the next round resubmits it
                    kind = {FinalError: "final", TransientError: "transient"}.get(
                        type(outcome), "content"
                    )
                    self.engine.write_failure(call, kind, f"batch: {outcome}", rounds)
                done.update(r["id"] for r in call.requests)

            for key, response, error in self._results(job, remote):
                if key in job["calls"] and key not in seen:
                    seen.add(key)
                    call = self.engine.make_call([requests[i] for i in job["calls"][key]], records)
                    write(key, self._outcome(call, response, error, self.engine.backend))
            ended = f"job {job['name']} ended {job['state']} without it"
            for key in job["calls"]:
                if key not in seen:  # cancelled on purpose: final; failed or expired: retry
                    cancelled = job["state"] == "JOB_STATE_CANCELLED"
                    write(key, FinalError(ended) if cancelled else TransientError(ended))
        job["merged"] = True
        self.say(f"merged {job['name']} ({job['state']})")

    @staticmethod
    def _outcome(call: Call, response: Any, error: Any, backend: Any) -> CallResult | Exception:
        if error:
            message = (
                error.get("message")
                if isinstance(error, dict)
                else getattr(error, "message", error)
            )
            code = error.get("code") if isinstance(error, dict) else getattr(error, "code", None)
            if code in RETRYABLE_STATUS:
                return TransientError(f"item error {code}: {message}")
            return FinalError(f"item error: {message}")
        if response is None:
            return ContentError("no response for this item")
        try:
            return backend._result(call, response)
        except (ContentError, FinalError, TransientError) as exc:
            return exc

    # -- the whole mode --------------------------------------------------------------------
    def run_all(self) -> dict[str, Any]:
        """Re-attach to earlier jobs, then submit what is left, round after round, until every
        request is answered or has failed for good (each round ends in responses/failures or
        in more rounds, at most ``max_content_attempts`` of them)."""
        self._reattach_unnamed()
        while True:
            self.wait_and_merge()  # all jobs merged: nothing pending is inside a job
            calls = self.engine.pending_calls()
            if not calls:
                return self.engine.finish()
            self.submit(calls)


def _inline_item(line: dict[str, Any]) -> dict[str, Any]:
    """A JSONL request as the SDK's inline-request dict (snake_case config)."""
    request = line["request"]
    gen = request["generationConfig"]
    parts = []
    for part in request["contents"][0]["parts"]:
        if "inlineData" in part:
            data = base64.b64decode(part["inlineData"]["data"])
            parts.append(
                {"inline_data": {"mime_type": part["inlineData"]["mimeType"], "data": data}}
            )
        else:
            parts.append({"text": part["text"]})
    config = {
        "response_mime_type": gen["responseMimeType"],
        "response_json_schema": gen["responseJsonSchema"],
        "temperature": gen["temperature"],
        "max_output_tokens": gen["maxOutputTokens"],
        "system_instruction": request["systemInstruction"]["parts"][0]["text"],
    }
    if "seed" in gen:
        config["seed"] = gen["seed"]
    return {
        "contents": [{"role": "user", "parts": parts}],
        "config": config,
        "metadata": {"key": line["key"]},
    }


def _state(job: Any) -> str:
    state = getattr(job, "state", None)
    return str(getattr(state, "value", state) or "JOB_STATE_UNSPECIFIED")
