"""The Batch API and Files API of the fake Gemini server (Gemini Developer API mode).

Kept apart from ``fake_gemini`` so the online path stays readable. ``FakeGemini`` owns one
``BatchFiles`` and hands it every request; ``route`` answers None for paths that are not its own.
Wire shapes follow what google-genai 3.6.1 sends and parses (see ``_BatchJob_from_mldev``);
``faults`` scripts failures of single operations (see ``fake_batch_wire``). The Files API
is the ``FilesApi`` mixin in ``fake_gemini_files``. Stdlib only.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from tests.support.fake_batch_wire import Faults, Page, faulty, jsonl_items, output_line, paged
from tests.support.fake_batch_wire import item_key as _key
from tests.support.fake_batch_wire import stamp as _stamp
from tests.support.fake_batch_wire import status as _status
from tests.support.fake_gemini_files import FilesApi

if TYPE_CHECKING:
    from tests.support.fake_gemini import FakeGemini

Reply = tuple[int, dict[str, Any] | bytes, dict[str, str]]  # status, JSON or raw body, headers
ErrorFn = Callable[..., Reply]  # (code, message, retry_after=None)

# An optional prefix is kept because the SDK keeps any path in base_url; the API version segment
# (v1, v1beta, or none when HttpOptions.api_version is empty) sits inside that prefix.
_CREATE = re.compile(r"^(?:/.*)?/models/([^/:]+):batchGenerateContent$")
_BATCH = re.compile(r"^(?:/.*)?/batches(?:/([^/:]+))?(?::([A-Za-z]+))?$")
_UPLOAD = re.compile(r"^(?:/.*)?/upload(?:/[^/]+)?/files$")
_FILE = re.compile(r"^(?:/.*)?/files(?:/([^/:]+))?(?::([A-Za-z]+))?$")
_VERSION = re.compile(r"/(v1[a-z0-9]*)(?:/|$)")

PENDING, RUNNING, SUCCEEDED = "BATCH_STATE_PENDING", "BATCH_STATE_RUNNING", "BATCH_STATE_SUCCEEDED"
FAILED, CANCELLED = "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED, "BATCH_STATE_EXPIRED"})
_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
_OUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"


class BatchFiles(FilesApi):
    """Batch jobs and uploaded/generated files that live as long as the FakeGemini object.

    Answers are computed at create time (so requests and their images are not kept), the state
    advances only on ``batches.get`` polls, and the JSONL output file appears on success.
    """

    def __init__(self, fake: FakeGemini, error: ErrorFn, seed: int) -> None:
        self.fake, self._error = fake, error
        self.jobs: dict[str, dict[str, Any]] = {}  # batch id -> info (FakeGemini.batches)
        self.files: dict[str, dict[str, Any]] = {}  # file id -> File resource (FakeGemini.files)
        self._results: dict[str, list[dict[str, Any]]] = {}
        self._blobs: dict[str, bytes] = {}
        self._uploads: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._rng = random.Random(f"batch-{seed}")  # separate, so online draws stay as before
        self.faults = Faults()  # scripted failures: faults.add("get", 503)
        # every batch request's generationConfig and image parts' mediaResolution (no image
        # bytes), so tests can check what batch mode asked for
        self.requests_seen: list[dict[str, Any]] = []

    # -- routing -------------------------------------------------------------------------------
    def route(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Reply | None:
        """Answer a Batch/Files API request, or None when the path is not one of those."""
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        match = _VERSION.search(path)
        version = match[1] if match else "v1beta"
        upload = method == "POST" and _UPLOAD.match(path)
        if upload and "upload_id" in query:  # the upload URL is the credential, as for real
            return self._chunk(query["upload_id"][0], headers, raw)
        create = _CREATE.match(path) if method == "POST" else None
        batch, file = _BATCH.match(path), _FILE.match(path)
        if not (upload or create or batch or file):
            return None
        if self.fake.api_key is not None and headers.get("x-goog-api-key") != self.fake.api_key:
            self._count("auth_failed")
            return self._error(403, "Method doesn't allow unregistered callers (bad API key).")
        if upload:
            return self._start(path, version, headers, raw)
        if create:
            return self._create(create[1], version, raw)
        page = (query.get("pageSize", ["0"])[0], query.get("pageToken", ["0"])[0])
        if batch:
            return self._batches(method, batch[1], batch[2], page)
        assert file is not None
        return self._files(method, file[1], file[2], page)

    def _batches(self, method: str, bid: str | None, verb: str | None, page: Page) -> Reply:
        if bid is None and method == "GET" and verb is None:
            return self._list_batches(page)
        if bid is not None and method == "GET" and verb is None:
            return self._get(bid)
        if bid is not None and method == "POST" and verb == "cancel":
            return self._cancel(bid)
        if bid is not None and method == "DELETE" and verb is None:
            return self._delete(bid)
        return self._error(404, f"Fake Gemini does not serve {method} batches/{bid}:{verb}.")

    # -- batches -------------------------------------------------------------------------------
    @faulty("create")
    def _create(self, model: str, version: str, raw: bytes) -> Reply:
        try:
            batch = (json.loads(raw or b"{}") or {}).get("batch") or {}
        except (ValueError, AttributeError):
            return self._error(400, "Invalid JSON payload received.")
        source = batch.get("inputConfig") or {}
        file_name = source.get("fileName")
        if file_name:
            fid = str(file_name).removeprefix("files/")
            with self._lock:
                data = self._blobs.get(fid)
            if data is None:
                msg = f"You do not have permission to access the File {fid} or it may not exist."
                return self._error(403, msg)
            items = jsonl_items(data)
        elif isinstance((source.get("requests") or {}).get("requests"), list):
            items = [
                (item.get("metadata"), item.get("request"), None)
                for item in source["requests"]["requests"]
            ]
        else:
            return self._error(400, "batch.inputConfig needs requests.requests or fileName.")
        if not items:
            return self._error(400, "The batch has no requests.")
        results = [self._answer(model, meta, req, problem) for meta, req, problem in items]
        bid = uuid.uuid4().hex[:16]
        now = time.time()
        info: dict[str, Any] = {
            "id": bid,
            "name": f"batches/{bid}",
            "model": f"models/{model}",
            "api_version": version,
            "display_name": batch.get("displayName") or "",
            "state": PENDING,
            "source": "file" if file_name else "inline",
            "input_file": file_name,
            "output_file": None,
            "requests": len(results),
            "errors": sum("error" in r for r in results),
            "keys": [_key(r) for r in results],
            "polls": 0,
            "create_time": now,
            "update_time": now,
            "end_time": None,
        }
        with self._lock:
            self.jobs[bid], self._results[bid] = info, results
            body = self._operation(info)
        self._count("batch_create")
        return 200, body, {}

    def _answer(self, model: str, meta: Any, request: Any, problem: str | None) -> dict[str, Any]:
        """One result item: ``{"response"|"error": ..., "metadata": ...}`` (key kept as is)."""
        item: dict[str, Any] = {"metadata": meta if meta is not None else {}}
        if problem is None and not (isinstance(request, dict) and request.get("contents")):
            problem = "* GenerateContentRequest.contents: contents is not specified"
        with self._lock:
            unlucky = self._rng.random() < self.fake.batch_error_rate
        if problem is None and unlucky:
            problem = "Fake batch item error (batch_error_rate)."
        if problem is not None:
            item["error"] = _status(400, problem, "INVALID_ARGUMENT")
        else:
            item["response"] = self.fake.ok_response(model, request)
        if isinstance(request, dict):
            parts = [p for c in request.get("contents") or [] for p in (c or {}).get("parts") or []]
            seen = {
                "generationConfig": request.get("generationConfig") or {},
                "partResolutions": [p.get("mediaResolution") for p in parts if "inlineData" in p],
            }
            with self._lock:
                self.requests_seen.append(seen)
        return item

    @faulty("get")
    def _get(self, bid: str) -> Reply:
        self._count("batch_get")
        with self._lock:
            info = self.jobs.get(bid)
            if info is None:
                return self._error(404, f"Requested entity was not found: batches/{bid}.")
            info["polls"] += 1
            if info["state"] not in TERMINAL:
                self._advance(info)
            return 200, self._operation(info), {}

    def _advance(self, info: dict[str, Any]) -> None:
        """PENDING for the first half of ``batch_steps`` polls, RUNNING for the rest, then done."""
        steps, polls = max(0, int(self.fake.batch_steps)), info["polls"]
        if polls <= steps:
            state = PENDING if polls <= (steps + 1) // 2 else RUNNING
            if state != info["state"]:
                info["state"], info["update_time"] = state, time.time()
            return
        info["state"] = FAILED if self.fake.batch_fail else SUCCEEDED
        info["update_time"] = info["end_time"] = time.time()
        if info["state"] == SUCCEEDED and info["source"] == "file":
            fid = f"batch-{info['id']}-out"
            key = self.fake.batch_error_key
            lines = [output_line(item, key) for item in self._results[info["id"]]]
            data = "".join(json.dumps(line) + "\n" for line in lines).encode()
            version = info["api_version"]
            meta = self._file(fid, data, "application/jsonl", info["name"], version, True)
            self.files[fid], self._blobs[fid] = meta, data
            info["output_file"] = f"files/{fid}"

    @faulty("cancel")
    def _cancel(self, bid: str) -> Reply:
        self._count("batch_cancel")
        with self._lock:
            info = self.jobs.get(bid)
            if info is None:
                return self._error(404, f"Requested entity was not found: batches/{bid}.")
            if info["state"] not in TERMINAL:
                info["state"] = CANCELLED
                info["update_time"] = info["end_time"] = time.time()
        return 200, {}, {}

    def _delete(self, bid: str) -> Reply:
        with self._lock:
            info = self.jobs.pop(bid, None)
            self._results.pop(bid, None)
        if info is None:
            return self._error(404, f"Requested entity was not found: batches/{bid}.")
        return 200, {}, {}

    @faulty("list")
    def _list_batches(self, page: Page) -> Reply:
        with self._lock:
            ops = [self._operation(info) for info in list(self.jobs.values())[::-1]]
        return 200, paged("operations", ops, page), {}

    def _operation(self, info: dict[str, Any]) -> dict[str, Any]:
        """The long-running-operation JSON the SDK parses; the caller holds the lock."""
        state, total, failed = info["state"], info["requests"], info["errors"]
        stats = {"requestCount": str(total)}
        if state == SUCCEEDED:
            stats["successfulRequestCount"] = str(total - failed)
            if failed:
                stats["failedRequestCount"] = str(failed)
        elif state in (PENDING, RUNNING):
            stats["pendingRequestCount"] = str(total)
        meta: dict[str, Any] = {
            "@type": _TYPE,
            "name": info["name"],
            "model": info["model"],
            "displayName": info["display_name"],
            "createTime": _stamp(info["create_time"]),
            "updateTime": _stamp(info["update_time"]),
            "batchStats": stats,
            "state": state,
        }
        if info["input_file"]:
            meta["inputConfig"] = {"fileName": info["input_file"]}
        if info["end_time"] is not None:
            meta["endTime"] = _stamp(info["end_time"])
        op: dict[str, Any] = {"name": info["name"], "metadata": meta, "done": state in TERMINAL}
        if state == SUCCEEDED:
            if info["output_file"]:
                output: dict[str, Any] = {"responsesFile": info["output_file"]}
            else:
                output = {"inlinedResponses": {"inlinedResponses": self._results[info["id"]]}}
            meta["output"] = output
            op["response"] = {"@type": _OUT_TYPE, **output}  # the real API sends it twice too
        elif state == FAILED:
            op["error"] = {"code": 13, "message": "Fake batch failure (batch_fail)."}
        return op
