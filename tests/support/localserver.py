"""What the fake servers share: a threaded HTTP server on 127.0.0.1 that stops like a crash, and a
request handler base with the helpers every fake needs. Stdlib only.

A fake subclasses ``LocalServer`` and names its ``LocalHandler`` subclass in ``handler``; the
handler reaches the fake as ``self.server.fake``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Generic, TypeVar

_F = TypeVar("_F", bound="LocalServer")
Reply = tuple[int, Any, Mapping[str, str]]  # status, body (bytes, str or JSON), extra headers


class LocalHTTPServer(ThreadingHTTPServer, Generic[_F]):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for handlers parked on keep-alive sockets
    request_queue_size = 1024  # the default 5 resets connections under 64 clients or uploads
    allow_reuse_address = True
    fake: _F


class LocalHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 without an access log; tracks its connection so stop() can cut it."""

    protocol_version = "HTTP/1.1"
    server: LocalHTTPServer[Any]
    json_type = "application/json"  # Content-Type of JSON bodies

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        self.server.fake._track(self.connection, add=False)
        with contextlib.suppress(OSError):
            super().finish()

    def _read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _lower_headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def _reply(self, reply: Reply | None) -> None:
        """Send ``(status, body, extra headers)``: bytes as they are (Content-Type from the extra
        headers, else octet-stream), str as an HTML page, anything else as JSON. None drops the
        connection without a byte, like a crashed upstream."""
        if reply is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        code, body, extra = reply
        if isinstance(body, bytes):
            data, ctype = body, "application/octet-stream"
        elif isinstance(body, str):  # non-JSON on purpose (a proxy's HTML page)
            data, ctype = body.encode(), "text/html; charset=utf-8"
        else:
            data, ctype = json.dumps(body).encode(), self.json_type
        self._write(code, data, {"Content-Type": ctype, **extra})

    def _write(
        self, code: int, data: bytes, headers: Mapping[str, str], *, head: bool = False
    ) -> None:
        """Send one response, with Content-Length unless ``headers`` has one; no body for HEAD."""
        try:
            self.send_response(code)
            for key, value in headers.items():
                self.send_header(key, value)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not head:
                self.wfile.write(data)
        except OSError:  # the client gave up (e.g. its timeout fired during a hang)
            self.close_connection = True


class LocalServer:
    """Serve ``handler`` on 127.0.0.1 from a daemon thread; ``with`` starts and stops it.

    ``port=0`` picks a free port; ``url`` and ``port`` are the real ones once started. ``_stop``
    is set while stopped, so handlers that wait on it (latency, hangs) wake up at once.
    """

    handler: ClassVar[type[LocalHandler]]

    def __init__(self, port: int = 0, lock: AbstractContextManager[Any] | None = None) -> None:
        self.port = port
        self.url = ""
        self._lock = threading.Lock() if lock is None else lock  # also guards _conns
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._server: LocalHTTPServer[Any] | None = None
        self._thread: threading.Thread | None = None

    def start(self: _F) -> _F:
        self._stop.clear()
        self._server = LocalHTTPServer(("127.0.0.1", self.port), self.handler)
        self._server.fake = self
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop like a crash: waits on ``_stop`` wake up and open keep-alive sockets are cut, so
        client pools fail fast instead of hanging."""
        self._stop.set()
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self: _F) -> _F:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)
