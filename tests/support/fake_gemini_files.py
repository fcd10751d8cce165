"""The Files API of the fake Gemini server: resumable uploads, File resources, downloads.

A mixin of ``fake_gemini_batch.BatchFiles``, which owns the state (``files``, the blobs and the
open upload sessions) and the routing; batch output files are made here too. Stdlib only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from tests.support.fake_batch_wire import Faults, Page, faulty, paged
from tests.support.fake_batch_wire import stamp as _stamp

if TYPE_CHECKING:
    from tests.support.fake_gemini import FakeGemini
    from tests.support.fake_gemini_batch import ErrorFn, Reply

_FILE_ID = re.compile(r"^[a-z0-9-]{1,40}$")
_CHUNK = 8 * 1024 * 1024  # what the real server advertises and the SDK sends
_TTL = 48 * 3600  # Files API retention


class FilesApi:
    """``files.*`` and the upload URL; ``BatchFiles`` sets the attributes declared here."""

    fake: FakeGemini
    files: dict[str, dict[str, Any]]  # file id -> File resource (FakeGemini.files)
    _blobs: dict[str, bytes]
    _uploads: dict[str, dict[str, Any]]
    _lock: threading.Lock
    _error: ErrorFn
    faults: Faults  # read by @faulty

    def _count(self, key: str) -> None:
        with self.fake._lock:
            self.fake.stats[key] += 1

    def _files(self, method: str, fid: str | None, verb: str | None, page: Page) -> Reply:
        if fid is None and method == "GET" and verb is None:
            with self._lock:
                files = list(self.files.values())[::-1]
            return 200, paged("files", files, page), {}
        if fid is None:
            return self._error(404, f"Fake Gemini does not serve {method} files.")
        with self._lock:
            meta = self.files.get(fid)
            blob = self._blobs.get(fid, b"")
            if meta is not None and method == "DELETE" and verb is None:
                del self.files[fid], self._blobs[fid]
        if meta is None:  # what the real Files API answers for unknown or expired names
            msg = f"You do not have permission to access the File {fid} or it may not exist."
            return self._error(403, msg)
        if method == "GET" and verb is None:
            return 200, meta, {}
        if method == "GET" and verb == "download":
            return self._download(meta, blob)
        if method == "DELETE" and verb is None:
            return 200, {}, {}
        return self._error(404, f"Fake Gemini does not serve {method} files/{fid}:{verb}.")

    @faulty("download")
    def _download(self, meta: dict[str, Any], blob: bytes) -> Reply:
        self._count("file_download")
        return 200, blob, {"Content-Type": meta.get("mimeType") or "application/octet-stream"}

    @faulty("upload")
    def _start(self, path: str, version: str, headers: dict[str, str], raw: bytes) -> Reply:
        """Open a resumable upload; the client sends the bytes to X-Goog-Upload-URL."""
        if headers.get("x-goog-upload-command", "start").strip().lower() != "start":
            return self._error(400, "Expected X-Goog-Upload-Command: start.")
        try:
            file = (json.loads(raw or b"{}") or {}).get("file") or {}
        except (ValueError, AttributeError):
            return self._error(400, "Invalid JSON payload received.")
        fid = str(file.get("name") or "").removeprefix("files/") or uuid.uuid4().hex[:12]
        if not _FILE_ID.match(fid):
            return self._error(400, f"Invalid file name {fid!r}: use [a-z0-9-]{{1,40}}.")
        with self._lock:
            if fid in self.files:
                return self._error(409, f"File files/{fid} already exists.")
        size = headers.get("x-goog-upload-header-content-length")
        mime = headers.get("x-goog-upload-header-content-type")
        session = {
            "id": fid,
            "version": version,
            "size": int(size or file.get("size_bytes") or file.get("sizeBytes") or -1),
            "mime": mime or file.get("mime_type") or file.get("mimeType") or "",
            "display": file.get("display_name") or file.get("displayName"),
            "data": bytearray(),
        }
        upload_id = uuid.uuid4().hex
        with self._lock:
            self._uploads[upload_id] = session
        url = f"{self.fake.url}{path}?upload_id={upload_id}&upload_protocol=resumable"
        out = {
            "X-Goog-Upload-URL": url,
            "X-Goog-Upload-Status": "active",
            "X-Goog-Upload-Chunk-Granularity": str(_CHUNK),
        }
        return 200, b"", out

    def _chunk(self, upload_id: str, headers: dict[str, str], raw: bytes) -> Reply:
        """One POST to the upload URL: ``upload``, ``upload, finalize`` or ``query``."""
        command = {c.strip() for c in headers.get("x-goog-upload-command", "").lower().split(",")}
        with self._lock:
            session = self._uploads.get(upload_id)
        if session is None:  # without a status header the SDK would retry-sleep
            code, body, _ = self._error(404, "Unknown or finished upload session.")
            return code, body, {"X-Goog-Upload-Status": "final"}
        data: bytearray = session["data"]
        if "query" in command:
            received = {"X-Goog-Upload-Size-Received": str(len(data))}
            return 200, b"", {"X-Goog-Upload-Status": "active", **received}
        offset = int(headers.get("x-goog-upload-offset") or len(data))
        if offset != len(data):
            code, body, _ = self._error(400, f"Offset {offset} != {len(data)} bytes received.")
            return code, body, {"X-Goog-Upload-Status": "final"}
        data += raw
        if "finalize" not in command:
            received = {"X-Goog-Upload-Size-Received": str(len(data))}
            return 200, b"", {"X-Goog-Upload-Status": "active", **received}
        blob, fid = bytes(data), session["id"]
        meta = self._file(fid, blob, session["mime"], session["display"], session["version"], False)
        with self._lock:
            self._uploads.pop(upload_id, None)
            self.files[fid], self._blobs[fid] = meta, blob
        self._count("file_upload")
        return 200, {"file": meta}, {"X-Goog-Upload-Status": "final"}

    def _file(
        self, fid: str, data: bytes, mime: str, display: str | None, version: str, generated: bool
    ) -> dict[str, Any]:
        """A File resource; generated (batch output) files also get a downloadUri."""
        now = time.time()
        base = f"{self.fake.url}/{version}/files/{fid}"
        meta: dict[str, Any] = {
            "name": f"files/{fid}",
            "mimeType": mime,
            "sizeBytes": str(len(data)),
            "createTime": _stamp(now),
            "updateTime": _stamp(now),
            "expirationTime": _stamp(now + _TTL),
            "sha256Hash": base64.b64encode(hashlib.sha256(data).hexdigest().encode()).decode(),
            "uri": base,
            "state": "ACTIVE",
            "source": "GENERATED" if generated else "UPLOADED",
        }
        if display:
            meta["displayName"] = display
        if generated:
            meta["downloadUri"] = f"{base}:download?alt=media"
        return meta

    def file_bytes(self, name: str) -> bytes:
        """The content of ``files/<id>`` (or ``<id>``), for tests; KeyError if unknown."""
        with self._lock:
            return self._blobs[name.removeprefix("files/")]
