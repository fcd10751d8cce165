"""A fake Hugging Face Hub that the real huggingface_hub and datasets clients can talk to.

Tests point `HF_ENDPOINT` at it so publishing and `load_dataset` round trips run offline and
without an account. It answers the routes those clients actually hit: repo creation, preupload,
ndjson commits, basic LFS uploads, repo info, trees, paths-info and resolve (with Range).
Everything lives in memory. Stdlib only.

The clients must run with `HF_HUB_DISABLE_XET=1`: with xet, LFS files go to a CAS service that
is not faked here. Both libraries read `HF_ENDPOINT` at import time, so set the environment
before importing them (in practice: run them in a subprocess).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import threading
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tests.support.localserver import LocalHandler, LocalHTTPServer, LocalServer

_Reply = tuple[int, bytes, dict[str, str]]  # status, body, extra headers
_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$")
_TYPES = {"datasets": "dataset", "models": "model", "spaces": "space"}
# Extensions the real Hub's default .gitattributes routes to LFS; datasets deletes its temporary
# parquet shards before the commit unless preupload says "lfs" for them.
_LFS_EXT = set(
    "7z arrow bin bz2 ckpt ftz gz h5 jpeg jpg joblib lz4 mp3 mp4 msgpack npy npz ogg onnx ot "
    "parquet pb pickle pkl png pt pth rar safetensors tar tflite tgz wasm wav webp xz zip zst "
    "zstandard".split()
)
_LFS_MIN_SIZE = 10 * 1024 * 1024
_USER = "tester"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _json(status: int, obj: Any, headers: dict[str, str] | None = None) -> _Reply:
    body = json.dumps(obj).encode()
    return status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}


def _error(status: int, message: str, code: str | None = None) -> _Reply:
    """HF's error shape: the client reads `X-Error-Code` to pick the exception class."""
    headers = {"X-Error-Message": message}
    if code:
        headers["X-Error-Code"] = code
    return _json(status, {"error": message}, headers)


def _git_oid(data: bytes) -> str:
    """Git blob sha1; the client compares it with the preupload oid to skip unchanged files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _pointer(data: bytes) -> bytes:
    sha = hashlib.sha256(data).hexdigest()
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n".encode()
    )


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return query.get(name, ["false"])[0].lower() in ("1", "true")


def _is_lfs(path: str, size: int, sample: bytes) -> bool:
    ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return ext in _LFS_EXT or size >= _LFS_MIN_SIZE or b"\0" in sample


def _range(header: str | None, size: int) -> tuple[int, int] | None | bool:
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


class _Handler(LocalHandler):
    server: LocalHTTPServer[FakeHub]

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _read_body(self) -> bytes:
        """Read the whole body first so keep-alive stays in sync; huggingface_hub streams LFS
        PUTs of file slices with chunked encoding."""
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            return super()._read_body()
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _serve(self, method: str) -> None:
        body = self._read_body()
        fault = self.server.fake._take_fault(method, self.path)
        if fault is not None:
            if fault == "drop":
                self._reply(None)
            else:
                self._write(*_error(int(fault), "FakeHub: injected failure"), head=method == "HEAD")
            return
        try:
            status, payload, headers = self.server.fake._handle(self, method, body)
        except Exception as exc:  # a bug in the fake must show up as a 500, not a hang
            status, payload, headers = _error(500, f"FakeHub error: {exc!r}")
        self._write(status, payload, headers, head=method == "HEAD")


class FakeHub(LocalServer):
    """In-memory Hub on 127.0.0.1 for dataset (and model/space) repos.

    Only the latest state of each repo is kept; every commit gets a new sha (the clients cache
    trees and files by sha) and older shas are accepted as aliases of the latest state.
    """

    handler = _Handler

    def __init__(self, *, token: str | None = None, port: int = 0) -> None:
        super().__init__(port, lock=threading.RLock())
        self.token = token
        self.url = f"http://127.0.0.1:{port}"
        self.repos: dict[str, dict[str, Any]] = {}
        self.log: list[dict[str, Any]] = []
        self._lfs: dict[str, dict[str, bytes]] = {}  # repo key -> sha256 -> uploaded bytes
        self._lfs_paths: dict[str, set[str]] = {}  # repo key -> paths committed as LFS
        self._titles: dict[str, str] = {}  # commit sha -> summary
        self._dates: dict[str, str] = {}  # commit sha -> ISO date
        self._salt = os.urandom(8)  # two hubs never mint the same sha for a shared HF cache
        self._secret = os.urandom(16)  # signs LFS upload hrefs, which the client PUTs unauthed
        self._counter = 0
        self._faults: list[dict[str, Any]] = []  # injected failures (see `fail`)

    # -- public helpers ----------------------------------------------------------------------

    def fail(self, method: str, path_part: str, status: int | str = 500, times: int = 1) -> None:
        """Answer the next ``times`` requests of ``method`` whose path contains ``path_part`` with
        ``status`` (an int), or drop their connection without a byte (``"drop"``)."""
        with self._lock:
            self._faults.append({"method": method, "part": path_part, "status": status, "n": times})

    def _take_fault(self, method: str, path: str) -> int | str | None:
        with self._lock:
            for fault in self._faults:
                if fault["n"] > 0 and fault["method"] == method and fault["part"] in path:
                    fault["n"] -= 1
                    entry = {"method": method, "path": unquote(urlsplit(path).path)}
                    self.log.append({**entry, "status": fault["status"]})
                    return fault["status"]
        return None

    def files(self, repo_id: str) -> dict[str, bytes]:
        """Current files of a dataset repo (a copy, safe to keep across later commits)."""
        with self._lock:
            return dict(self.repos[f"datasets/{repo_id}"]["files"])

    # -- state -------------------------------------------------------------------------------

    def _new_sha(self, title: str) -> str:
        self._counter += 1
        sha = hashlib.sha1(self._salt + b"commit-%d" % self._counter).hexdigest()
        self._titles[sha], self._dates[sha] = title, _now()
        return sha

    def _create(self, key: str, private: bool) -> None:
        """A new repo gets an empty initial commit so `main` resolves from the start."""
        self.repos[key] = {"private": private, "files": {}, "commits": [self._new_sha("initial")]}
        self._lfs[key], self._lfs_paths[key] = {}, set()

    def _entry(self, key: str, path: str, expand: bool) -> dict[str, Any]:
        repo = self.repos[key]
        sha = repo["commits"][-1]
        last = {"id": sha, "title": self._titles[sha], "date": self._dates[sha]}
        if path not in repo["files"]:
            oid = hashlib.sha1(f"tree:{sha}:{path}".encode()).hexdigest()
            entry: dict[str, Any] = {"type": "directory", "oid": oid, "size": 0, "path": path}
            return {**entry, "lastCommit": last} if expand else entry
        data = repo["files"][path]
        entry = {"type": "file", "oid": _git_oid(data), "size": len(data), "path": path}
        if path in self._lfs_paths[key]:
            pointer = _pointer(data)
            entry["oid"] = _git_oid(pointer)
            entry["lfs"] = {
                "oid": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "pointerSize": len(pointer),
            }
        if expand:
            entry["lastCommit"] = last
            entry["securityFileStatus"] = {
                "status": "safe",
                "avScan": {"virusFound": False, "virusNames": None},
                "pickleImportScan": None,
            }
        return entry

    def _dirs(self, key: str) -> set[str]:
        dirs = set()
        for path in self.repos[key]["files"]:
            parts = path.split("/")[:-1]
            dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        return dirs

    def _info(self, key: str, repo_id: str) -> dict[str, Any]:
        repo = self.repos[key]
        sha = repo["commits"][-1]
        return {
            "_id": hashlib.sha1(key.encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": sha,
            "lastModified": self._dates[sha],
            "createdAt": self._dates[repo["commits"][0]],
            "private": repo["private"],
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": [{"rfilename": p} for p in sorted(repo["files"])],
            "usedStorage": sum(len(b) for b in repo["files"].values()),
        }

    # -- dispatch ----------------------------------------------------------------------------

    def _handle(self, req: _Handler, method: str, body: bytes) -> _Reply:
        split = urlsplit(req.path)
        raw = [s for s in split.path.split("/") if s]
        segs = [unquote(s) for s in raw]
        query = parse_qs(split.query)
        with self._lock:
            reply = self._route(req, method, segs, query, body)
            self.log.append({"method": method, "path": unquote(split.path), "status": reply[0]})
        return reply

    def _authorized(self, req: _Handler, segs: list[str], query: dict[str, list[str]]) -> bool:
        if self.token is None or segs == ["api", "agent-harnesses"]:
            return True  # huggingface_hub fetches that public registry without a token
        if req.headers.get("Authorization", "") == f"Bearer {self.token}":
            return True
        # LFS upload hrefs are presigned like S3 URLs: the client sends no token with the PUT.
        return bool(segs[:1] == ["lfs-upload"] and query.get("sig", [""])[0] == self._sign(segs))

    def _sign(self, segs: list[str]) -> str:
        return hmac.new(self._secret, "/".join(segs).encode(), hashlib.sha256).hexdigest()

    def _route(
        self, req: _Handler, method: str, segs: list[str], query: dict[str, list[str]], body: bytes
    ) -> _Reply:
        if not self._authorized(req, segs, query):
            if req.headers.get("Authorization"):
                return _error(401, "Invalid credentials in Authorization header")
            return _error(401, "Authorization header is required")
        if segs[:1] == ["lfs-upload"] and method == "PUT":
            return self._lfs_put(segs, body)
        if segs[:1] == ["api"]:
            return self._api(method, segs[1:], query, body)
        kind = segs[0] if segs and segs[0] in ("datasets", "spaces") else "models"
        rest = segs[1:] if kind != "models" else segs
        if len(rest) >= 3 and rest[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(req, kind, rest[:2], rest[3:])
        batch = rest[2:] == ["info", "lfs", "objects", "batch"] and rest[1].endswith(".git")
        if batch and method == "POST":
            return self._lfs_batch(kind, [rest[0], rest[1][:-4]], body)
        return _error(404, f"FakeHub has no route for {method} /{'/'.join(segs)}")

    def _api(
        self, method: str, segs: list[str], query: dict[str, list[str]], body: bytes
    ) -> _Reply:
        if segs == ["agent-harnesses"] and method == "GET":  # empty: detect no AI agent
            return _json(200, {"standardEnvVars": [], "harnesses": {}})
        if segs == ["whoami-v2"] and method == "GET":
            return _json(200, {"name": _USER, "fullname": _USER, "type": "user", "orgs": []})
        if segs == ["validate-yaml"] and method == "POST":
            return _json(200, {"errors": [], "warnings": []})
        if segs == ["repos", "create"] and method == "POST":
            return self._create_route(json.loads(body or b"{}"))
        if segs == ["repos", "delete"] and method == "DELETE":
            data = json.loads(body or b"{}")
            org = data.get("organization") or _USER
            key = f"{data.get('type') or 'model'}s/{org}/{data.get('name', '')}"
            if self.repos.pop(key, None) is None:
                return _error(404, "Repository not found", "RepoNotFound")
            self._lfs.pop(key, None)
            self._lfs_paths.pop(key, None)
            return _json(200, {})
        if len(segs) < 3 or segs[0] not in _TYPES:
            return _error(404, f"FakeHub has no route for {method} /api/{'/'.join(segs)}")
        kind, repo_id, action, rest = segs[0], f"{segs[1]}/{segs[2]}", segs[3:4], segs[4:]
        key = f"{kind}/{repo_id}"
        if key not in self.repos:
            return _error(404, "Repository not found", "RepoNotFound")
        repo = self.repos[key]
        if action == ["settings"] and method == "PUT":
            data = json.loads(body or b"{}")
            if "private" in data:
                repo["private"] = bool(data["private"])
            return _json(200, {})
        if not action or action == ["revision"]:
            if action and (not rest or not self._known(repo, "/".join(rest))):
                return _error(404, "Revision not found", "RevisionNotFound")
            return _json(200, self._info(key, repo_id))
        if action == ["refs"] and method == "GET":
            main = {"name": "main", "ref": "refs/heads/main", "targetCommit": repo["commits"][-1]}
            return _json(200, {"branches": [main], "converts": [], "tags": []})
        if action[0] not in ("tree", "paths-info", "preupload", "commit", "commits"):
            return _error(404, f"FakeHub has no route for {method} /api/{'/'.join(segs)}")
        if not rest or not self._known(repo, rest[0]):
            return _error(404, "Revision not found", "RevisionNotFound")
        path = "/".join(rest[1:])
        expand = _flag(query, "expand")
        if action == ["tree"] and method == "GET":
            return self._tree(key, path, _flag(query, "recursive"), expand)
        if action == ["paths-info"] and method == "POST":
            return self._paths_info(key, body)
        if action == ["preupload"] and method == "POST":
            return self._preupload(key, json.loads(body or b"{}"))
        if action == ["commit"] and method == "POST":
            if query.get("create_pr", ["0"])[0] not in ("0", "false"):
                return _error(400, "FakeHub does not support pull requests")
            return self._commit(key, kind, repo_id, body)
        if action == ["commits"] and method == "GET":
            commits = [
                {
                    "id": c,
                    "title": self._titles[c],
                    "message": "",
                    "date": self._dates[c],
                    "authors": [{"user": _USER}],
                }
                for c in reversed(repo["commits"])
            ]
            return _json(200, commits)
        return _error(404, f"FakeHub has no route for {method} /api/{'/'.join(segs)}")

    @staticmethod
    def _known(repo: dict[str, Any], rev: str) -> bool:
        return rev in ("main", "refs/heads/main") or rev in repo["commits"]

    # -- routes ------------------------------------------------------------------------------

    def _create_route(self, data: dict[str, Any]) -> _Reply:
        name, org = data.get("name", ""), data.get("organization") or _USER
        kind = f"{data.get('type') or 'model'}s"
        if kind not in _TYPES or not _NAME.match(name) or not _NAME.match(org):
            return _error(400, f"Invalid repo name or type: {org}/{name} ({kind})")
        key, prefix = f"{kind}/{org}/{name}", "" if kind == "models" else f"{kind}/"
        url = f"{self.url}/{prefix}{org}/{name}"
        if key in self.repos:
            return _json(409, {"error": "You already created this repo", "url": url})
        private = data.get("visibility", "") == "private" or bool(data.get("private"))
        self._create(key, private)
        return _json(200, {"url": url, "name": f"{org}/{name}", "id": f"{org}/{name}"})

    def _tree(self, key: str, path: str, recursive: bool, expand: bool) -> _Reply:
        path = path.strip("/")
        files, dirs = self.repos[key]["files"], self._dirs(key)
        if path and path not in dirs:
            return _error(404, f"{path} does not exist on main", "EntryNotFound")
        prefix = f"{path}/" if path else ""
        out = []
        for entry in sorted(dirs) + sorted(files):
            if not entry.startswith(prefix):
                continue
            if recursive or "/" not in entry[len(prefix) :]:
                out.append(self._entry(key, entry, expand))
        return _json(200, out)

    def _paths_info(self, key: str, body: bytes) -> _Reply:
        try:
            data = json.loads(body)
            paths, expand = data.get("paths", []), bool(data.get("expand"))
        except ValueError:
            form = parse_qs(body.decode())
            paths, expand = form.get("paths", []), form.get("expand", ["false"])[0] == "true"
        files, dirs = self.repos[key]["files"], self._dirs(key)
        found = [p.strip("/") for p in paths if p.strip("/") in files or p.strip("/") in dirs]
        return _json(200, [self._entry(key, p, expand) for p in found])

    def _preupload(self, key: str, data: dict[str, Any]) -> _Reply:
        files, out = self.repos[key]["files"], []
        for item in data.get("files", []):
            path, size = item["path"], int(item.get("size", 0))
            sample = base64.b64decode(item.get("sample", ""))
            lfs = _is_lfs(path, size, sample)
            old = files.get(path)
            oid = None
            if old is not None:  # lets the client skip files that did not change
                oid = hashlib.sha256(old).hexdigest() if lfs else _git_oid(old)
            mode = "lfs" if lfs else "regular"
            out.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return _json(200, {"files": out})

    def _lfs_batch(self, kind: str, name: list[str], body: bytes) -> _Reply:
        key = f"{kind}/{name[0]}/{name[1]}"
        if key not in self.repos:
            return _error(404, "Repository not found", "RepoNotFound")
        data = json.loads(body or b"{}")
        if data.get("operation") != "upload":
            return _error(400, "FakeHub only supports LFS uploads")
        objects = []
        for obj in data.get("objects", []):
            oid, size = str(obj["oid"]), int(obj["size"])
            entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if oid not in self._lfs[key]:
                segs = ["lfs-upload", kind, name[0], name[1], oid, str(size)]
                href = f"{self.url}/{'/'.join(quote(s, safe='') for s in segs)}"
                entry["actions"] = {"upload": {"href": f"{href}?sig={self._sign(segs)}"}}
            objects.append(entry)
        body_out = json.dumps({"transfer": "basic", "objects": objects}).encode()
        return 200, body_out, {"Content-Type": "application/vnd.git-lfs+json"}

    def _lfs_put(self, segs: list[str], body: bytes) -> _Reply:
        if len(segs) != 6:
            return _error(404, "Unknown LFS upload URL")
        key, oid, size = f"{segs[1]}/{segs[2]}/{segs[3]}", segs[4], int(segs[5])
        if key not in self.repos:
            return _error(404, "Repository not found", "RepoNotFound")
        if hashlib.sha256(body).hexdigest() != oid or len(body) != size:
            return _error(400, f"LFS upload does not match oid {oid} and size {size}")
        self._lfs[key][oid] = body
        return 200, b"", {}

    def _commit(self, key: str, kind: str, repo_id: str, body: bytes) -> _Reply:
        repo = self.repos[key]
        files, lfs_paths = dict(repo["files"]), set(self._lfs_paths[key])
        summary = "commit"
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            op, value = item.get("key"), item.get("value", {})
            path = str(value.get("path", "")).strip("/")
            if op == "header":
                summary = value.get("summary") or summary
                parent = value.get("parentCommit")
                if parent and parent != repo["commits"][-1]:
                    return _error(412, "A commit has happened since. Please refresh and try again.")
                continue
            if not path or ".." in path.split("/"):
                return _error(400, f"Invalid path in commit: {path!r}")
            if op == "file":
                files[path] = base64.b64decode(value.get("content", ""))
                lfs_paths.discard(path)
            elif op == "lfsFile":
                data = self._lfs[key].get(value.get("oid", ""))
                if data is None:
                    return _error(400, f"LFS object {value.get('oid')} was never uploaded")
                files[path] = data
                lfs_paths.add(path)
            elif op in ("deletedFile", "deletedFolder"):
                gone = [p for p in files if p == path or p.startswith(f"{path}/")]
                if not gone:
                    return _error(404, f"{path} does not exist", "EntryNotFound")
                for p in gone:
                    del files[p]
            else:
                return _error(400, f"Unknown commit operation {op!r}")
        sha = self._new_sha(summary)
        repo["files"], repo["commits"] = files, [*repo["commits"], sha]
        self._lfs_paths[key] = lfs_paths & set(files)
        prefix = "" if kind == "models" else f"{kind}/"
        url = f"{self.url}/{prefix}{repo_id}/commit/{sha}"
        return _json(200, {"success": True, "commitOid": sha, "commitUrl": url})

    def _resolve(self, req: _Handler, kind: str, name: list[str], rest: list[str]) -> _Reply:
        key = f"{kind}/{name[0]}/{name[1]}"
        repo = self.repos.get(key)
        if repo is None:
            return _error(404, "Repository not found", "RepoNotFound")
        if not rest or not self._known(repo, rest[0]):
            return _error(404, "Revision not found", "RevisionNotFound")
        path = "/".join(rest[1:])
        data = repo["files"].get(path)
        if data is None:  # the commit header lets the client cache "missing" for offline runs
            status, body, headers = _error(404, "Entry not found", "EntryNotFound")
            return status, body, {**headers, "X-Repo-Commit": repo["commits"][-1]}
        headers = {
            "X-Repo-Commit": repo["commits"][-1],
            "ETag": f'"{_git_oid(data)}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if path in self._lfs_paths[key]:
            sha256 = hashlib.sha256(data).hexdigest()
            headers["ETag"] = headers["X-Linked-Etag"] = f'"{sha256}"'
            headers["X-Linked-Size"] = str(len(data))
        span = _range(req.headers.get("Range"), len(data))
        if span is False:
            return 416, b"", {**headers, "Content-Range": f"bytes */{len(data)}"}
        if span is None:
            return 200, data, headers
        start, end = span
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        return 206, data[start : end + 1], headers
