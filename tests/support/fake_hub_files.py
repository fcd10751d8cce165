"""The file routes of the fake Hugging Face Hub: trees, paths-info, preupload, LFS uploads,
commits and ``resolve`` downloads (with Range).

A mixin of ``fake_hub.FakeHub``, which owns the state declared here, the routing and the
commit shas. Stdlib only.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from tests.support.fake_hub_wire import (
    Reply,
    byte_range,
    error_reply,
    git_oid,
    is_lfs,
    json_reply,
    lfs_pointer,
)

if TYPE_CHECKING:
    from tests.support.fake_hub import _Handler


class RepoFiles:
    """Files of the in-memory repos; ``FakeHub`` sets the attributes declared here."""

    url: str
    repos: dict[str, dict[str, Any]]
    _lfs: dict[str, dict[str, bytes]]  # repo key -> sha256 -> uploaded bytes
    _lfs_paths: dict[str, set[str]]  # repo key -> paths committed as LFS
    _titles: dict[str, str]  # commit sha -> summary
    _dates: dict[str, str]  # commit sha -> ISO date

    def _new_sha(self, title: str) -> str:
        raise NotImplementedError

    def _sign(self, segs: list[str]) -> str:
        raise NotImplementedError

    @staticmethod
    def _known(repo: dict[str, Any], rev: str) -> bool:
        return rev in ("main", "refs/heads/main") or rev in repo["commits"]

    def _entry(self, key: str, path: str, expand: bool) -> dict[str, Any]:
        repo = self.repos[key]
        sha = repo["commits"][-1]
        last = {"id": sha, "title": self._titles[sha], "date": self._dates[sha]}
        if path not in repo["files"]:
            oid = hashlib.sha1(f"tree:{sha}:{path}".encode()).hexdigest()
            entry: dict[str, Any] = {"type": "directory", "oid": oid, "size": 0, "path": path}
            return {**entry, "lastCommit": last} if expand else entry
        data = repo["files"][path]
        entry = {"type": "file", "oid": git_oid(data), "size": len(data), "path": path}
        if path in self._lfs_paths[key]:
            pointer = lfs_pointer(data)
            entry["oid"] = git_oid(pointer)
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

    def _tree(self, key: str, path: str, recursive: bool, expand: bool) -> Reply:
        path = path.strip("/")
        files, dirs = self.repos[key]["files"], self._dirs(key)
        if path and path not in dirs:
            return error_reply(404, f"{path} does not exist on main", "EntryNotFound")
        prefix = f"{path}/" if path else ""
        out = []
        for entry in sorted(dirs) + sorted(files):
            if not entry.startswith(prefix):
                continue
            if recursive or "/" not in entry[len(prefix) :]:
                out.append(self._entry(key, entry, expand))
        return json_reply(200, out)

    def _paths_info(self, key: str, body: bytes) -> Reply:
        try:
            data = json.loads(body)
            paths, expand = data.get("paths", []), bool(data.get("expand"))
        except ValueError:
            form = parse_qs(body.decode())
            paths, expand = form.get("paths", []), form.get("expand", ["false"])[0] == "true"
        files, dirs = self.repos[key]["files"], self._dirs(key)
        found = [p.strip("/") for p in paths if p.strip("/") in files or p.strip("/") in dirs]
        return json_reply(200, [self._entry(key, p, expand) for p in found])

    def _preupload(self, key: str, data: dict[str, Any]) -> Reply:
        files, out = self.repos[key]["files"], []
        for item in data.get("files", []):
            path, size = item["path"], int(item.get("size", 0))
            sample = base64.b64decode(item.get("sample", ""))
            lfs = is_lfs(path, size, sample)
            old = files.get(path)
            oid = None
            if old is not None:  # lets the client skip files that did not change
                oid = hashlib.sha256(old).hexdigest() if lfs else git_oid(old)
            mode = "lfs" if lfs else "regular"
            out.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return json_reply(200, {"files": out})

    def _lfs_batch(self, kind: str, name: list[str], body: bytes) -> Reply:
        key = f"{kind}/{name[0]}/{name[1]}"
        if key not in self.repos:
            return error_reply(404, "Repository not found", "RepoNotFound")
        data = json.loads(body or b"{}")
        if data.get("operation") != "upload":
            return error_reply(400, "FakeHub only supports LFS uploads")
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

    def _lfs_put(self, segs: list[str], body: bytes) -> Reply:
        if len(segs) != 6:
            return error_reply(404, "Unknown LFS upload URL")
        key, oid, size = f"{segs[1]}/{segs[2]}/{segs[3]}", segs[4], int(segs[5])
        if key not in self.repos:
            return error_reply(404, "Repository not found", "RepoNotFound")
        if hashlib.sha256(body).hexdigest() != oid or len(body) != size:
            return error_reply(400, f"LFS upload does not match oid {oid} and size {size}")
        self._lfs[key][oid] = body
        return 200, b"", {}

    def _commit(self, key: str, kind: str, repo_id: str, body: bytes) -> Reply:
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
                    return error_reply(
                        412, "A commit has happened since. Please refresh and try again."
                    )
                continue
            if not path or ".." in path.split("/"):
                return error_reply(400, f"Invalid path in commit: {path!r}")
            if op == "file":
                files[path] = base64.b64decode(value.get("content", ""))
                lfs_paths.discard(path)
            elif op == "lfsFile":
                data = self._lfs[key].get(value.get("oid", ""))
                if data is None:
                    return error_reply(400, f"LFS object {value.get('oid')} was never uploaded")
                files[path] = data
                lfs_paths.add(path)
            elif op in ("deletedFile", "deletedFolder"):
                gone = [p for p in files if p == path or p.startswith(f"{path}/")]
                if not gone:
                    return error_reply(404, f"{path} does not exist", "EntryNotFound")
                for p in gone:
                    del files[p]
            else:
                return error_reply(400, f"Unknown commit operation {op!r}")
        sha = self._new_sha(summary)
        repo["files"], repo["commits"] = files, [*repo["commits"], sha]
        self._lfs_paths[key] = lfs_paths & set(files)
        prefix = "" if kind == "models" else f"{kind}/"
        url = f"{self.url}/{prefix}{repo_id}/commit/{sha}"
        return json_reply(200, {"success": True, "commitOid": sha, "commitUrl": url})

    def _resolve(self, req: _Handler, kind: str, name: list[str], rest: list[str]) -> Reply:
        key = f"{kind}/{name[0]}/{name[1]}"
        repo = self.repos.get(key)
        if repo is None:
            return error_reply(404, "Repository not found", "RepoNotFound")
        if not rest or not self._known(repo, rest[0]):
            return error_reply(404, "Revision not found", "RevisionNotFound")
        path = "/".join(rest[1:])
        data = repo["files"].get(path)
        if data is None:  # the commit header lets the client cache "missing" for offline runs
            status, body, headers = error_reply(404, "Entry not found", "EntryNotFound")
            return status, body, {**headers, "X-Repo-Commit": repo["commits"][-1]}
        headers = {
            "X-Repo-Commit": repo["commits"][-1],
            "ETag": f'"{git_oid(data)}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if path in self._lfs_paths[key]:
            sha256 = hashlib.sha256(data).hexdigest()
            headers["ETag"] = headers["X-Linked-Etag"] = f'"{sha256}"'
            headers["X-Linked-Size"] = str(len(data))
        span = byte_range(req.headers.get("Range"), len(data))
        if span is False:
            return 416, b"", {**headers, "Content-Range": f"bytes */{len(data)}"}
        if span is None:
            return 200, data, headers
        start, end = span
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        return 206, data[start : end + 1], headers
