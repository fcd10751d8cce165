"""Reply shapes and Git/LFS details of the fake Hugging Face Hub (see ``fake_hub``).

JSON and error replies in the Hub's shape, git blob and LFS pointer ids, which files the Hub
routes to LFS, and ``Range`` header parsing. Stdlib only.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from typing import Any

Reply = tuple[int, bytes, dict[str, str]]  # status, body, extra headers
# Extensions the real Hub's default .gitattributes routes to LFS; datasets deletes its temporary
# parquet shards before the commit unless preupload says "lfs" for them.
LFS_EXT = set(
    "7z arrow bin bz2 ckpt ftz gz h5 jpeg jpg joblib lz4 mp3 mp4 msgpack npy npz ogg onnx ot "
    "parquet pb pickle pkl png pt pth rar safetensors tar tflite tgz wasm wav webp xz zip zst "
    "zstandard".split()
)
LFS_MIN_SIZE = 10 * 1024 * 1024


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def json_reply(status: int, obj: Any, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps(obj).encode()
    return status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}


def error_reply(status: int, message: str, code: str | None = None) -> Reply:
    """HF's error shape: the client reads `X-Error-Code` to pick the exception class."""
    headers = {"X-Error-Message": message}
    if code:
        headers["X-Error-Code"] = code
    return json_reply(status, {"error": message}, headers)


def git_oid(data: bytes) -> str:
    """Git blob sha1; the client compares it with the preupload oid to skip unchanged files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(data: bytes) -> bytes:
    sha = hashlib.sha256(data).hexdigest()
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n".encode()
    )


def query_flag(query: dict[str, list[str]], name: str) -> bool:
    return query.get(name, ["false"])[0].lower() in ("1", "true")


def is_lfs(path: str, size: int, sample: bytes) -> bool:
    ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return ext in LFS_EXT or size >= LFS_MIN_SIZE or b"\0" in sample


def byte_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """Parse a single `bytes=` range: (start, end) inclusive, None for no range, False if bad."""
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header or "")
    if not m or not (m[1] or m[2]):
        return None  # absent, multi-range or malformed: serve the whole file like many servers
    if m[1]:
        start, end = int(m[1]), int(m[2]) if m[2] else size - 1
    else:
        start, end = max(size - int(m[2]), 0), size - 1
    end = min(end, size - 1)
    return (start, end) if start <= end else False
