"""A fake Hugging Face Hub that the real huggingface_hub and datasets clients can talk to.

Tests point `HF_ENDPOINT` at it so publishing and `load_dataset` round trips run offline and
without an account. It answers the routes those clients actually hit: repo creation, preupload,
ndjson commits, basic LFS uploads, repo info, trees, paths-info and resolve (with Range).
Everything lives in memory. Stdlib only. The file routes (trees, commits, LFS, resolve) live
in ``fake_hub_files``; reply shapes and Git/LFS ids in ``fake_hub_wire``.

The clients must run with `HF_HUB_DISABLE_XET=1`: with xet, LFS files go to a CAS service that
is not faked here. Both libraries read `HF_ENDPOINT` at import time, so set the environment
before importing them (in practice: run them in a subprocess).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import threading
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.fake_hub_files import RepoFiles
from tests.support.fake_hub_wire import Reply, error_reply, json_reply, now_iso, query_flag
from tests.support.localserver import LocalHandler, LocalHTTPServer, LocalServer

_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$")
_TYPES = {"datasets": "dataset", "models": "model", "spaces": "space"}
_USER = "tester"


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
                self._write(
                    *error_reply(int(fault), "FakeHub: injected failure"), head=method == "HEAD"
                )
            return
        try:
            status, payload, headers = self.server.fake._handle(self, method, body)
        except Exception as exc:  # a bug in the fake must show up as a 500, not a hang
            status, payload, headers = error_reply(500, f"FakeHub error: {exc!r}")
        self._write(status, payload, headers, head=method == "HEAD")


class FakeHub(RepoFiles, LocalServer):
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
        self._titles[sha], self._dates[sha] = title, now_iso()
        return sha

    def _create(self, key: str, private: bool) -> None:
        """A new repo gets an empty initial commit so `main` resolves from the start."""
        self.repos[key] = {"private": private, "files": {}, "commits": [self._new_sha("initial")]}
        self._lfs[key], self._lfs_paths[key] = {}, set()

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

    def _handle(self, req: _Handler, method: str, body: bytes) -> Reply:
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
    ) -> Reply:
        if not self._authorized(req, segs, query):
            if req.headers.get("Authorization"):
                return error_reply(401, "Invalid credentials in Authorization header")
            return error_reply(401, "Authorization header is required")
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
        return error_reply(404, f"FakeHub has no route for {method} /{'/'.join(segs)}")

    def _api(self, method: str, segs: list[str], query: dict[str, list[str]], body: bytes) -> Reply:
        if segs == ["agent-harnesses"] and method == "GET":  # empty: detect no AI agent
            return json_reply(200, {"standardEnvVars": [], "harnesses": {}})
        if segs == ["whoami-v2"] and method == "GET":
            return json_reply(200, {"name": _USER, "fullname": _USER, "type": "user", "orgs": []})
        if segs == ["validate-yaml"] and method == "POST":
            return json_reply(200, {"errors": [], "warnings": []})
        if segs == ["repos", "create"] and method == "POST":
            return self._create_route(json.loads(body or b"{}"))
        if segs == ["repos", "delete"] and method == "DELETE":
            data = json.loads(body or b"{}")
            org = data.get("organization") or _USER
            key = f"{data.get('type') or 'model'}s/{org}/{data.get('name', '')}"
            if self.repos.pop(key, None) is None:
                return error_reply(404, "Repository not found", "RepoNotFound")
            self._lfs.pop(key, None)
            self._lfs_paths.pop(key, None)
            return json_reply(200, {})
        if len(segs) < 3 or segs[0] not in _TYPES:
            return error_reply(404, f"FakeHub has no route for {method} /api/{'/'.join(segs)}")
        kind, repo_id, action, rest = segs[0], f"{segs[1]}/{segs[2]}", segs[3:4], segs[4:]
        key = f"{kind}/{repo_id}"
        if key not in self.repos:
            return error_reply(404, "Repository not found", "RepoNotFound")
        repo = self.repos[key]
        if action == ["settings"] and method == "PUT":
            data = json.loads(body or b"{}")
            if "private" in data:
                repo["private"] = bool(data["private"])
            return json_reply(200, {})
        if not action or action == ["revision"]:
            if action and (not rest or not self._known(repo, "/".join(rest))):
                return error_reply(404, "Revision not found", "RevisionNotFound")
            return json_reply(200, self._info(key, repo_id))
        if action == ["refs"] and method == "GET":
            main = {"name": "main", "ref": "refs/heads/main", "targetCommit": repo["commits"][-1]}
            return json_reply(200, {"branches": [main], "converts": [], "tags": []})
        if action[0] not in ("tree", "paths-info", "preupload", "commit", "commits"):
            return error_reply(404, f"FakeHub has no route for {method} /api/{'/'.join(segs)}")
        if not rest or not self._known(repo, rest[0]):
            return error_reply(404, "Revision not found", "RevisionNotFound")
        path = "/".join(rest[1:])
        expand = query_flag(query, "expand")
        if action == ["tree"] and method == "GET":
            return self._tree(key, path, query_flag(query, "recursive"), expand)
        if action == ["paths-info"] and method == "POST":
            return self._paths_info(key, body)
        if action == ["preupload"] and method == "POST":
            return self._preupload(key, json.loads(body or b"{}"))
        if action == ["commit"] and method == "POST":
            if query.get("create_pr", ["0"])[0] not in ("0", "false"):
                return error_reply(400, "FakeHub does not support pull requests")
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
            return json_reply(200, commits)
        return error_reply(404, f"FakeHub has no route for {method} /api/{'/'.join(segs)}")

    # -- routes ------------------------------------------------------------------------------

    def _create_route(self, data: dict[str, Any]) -> Reply:
        name, org = data.get("name", ""), data.get("organization") or _USER
        kind = f"{data.get('type') or 'model'}s"
        if kind not in _TYPES or not _NAME.match(name) or not _NAME.match(org):
            return error_reply(400, f"Invalid repo name or type: {org}/{name} ({kind})")
        key, prefix = f"{kind}/{org}/{name}", "" if kind == "models" else f"{kind}/"
        url = f"{self.url}/{prefix}{org}/{name}"
        if key in self.repos:
            return json_reply(409, {"error": "You already created this repo", "url": url})
        private = data.get("visibility", "") == "private" or bool(data.get("private"))
        self._create(key, private)
        return json_reply(200, {"url": url, "name": f"{org}/{name}", "id": f"{org}/{name}"})
