"""A small Range-capable HTTP file server on 127.0.0.1 for download tests.

It serves files from a root folder (e.g. the asset mirror) and/or from in-memory overlays, keeps a
log of every request (with its headers) and can misbehave on purpose::

    with FileServer(root=mirror_dir) as server:
        server.put("3ddfa_v3/net_recon.pth", b"fake weights")   # serve bytes that are not on disk
        server.tamper("bfm/tri.mat")                             # serve altered bytes (same length)
        server.cut_after("bfm/w_shp_sim.npy", 1_000_000)        # drop the connection after 1 MB, once
        server.delay("bfm/u_shp.npy", 0.5)                       # wait before sending the body, once
        server.fail("bfm/u_exp.npy", 503, times=2)               # answer 503 twice, then serve
        server.ignore_range = True                               # answer 200 (whole file) to Range requests
        url = server.url + "/bfm/tri.mat"
        ...
        server.requests_for("bfm/w_shp_sim.npy")[1].range      # "bytes=1000000-"

Supported: GET and HEAD, ``Range: bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` (single range; 206 with
Content-Range, 416 when unsatisfiable), 404 for unknown paths, no path escape out of the root.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str  # decoded, without the leading "/" and without the query string
    headers: dict = field(default_factory=dict)
    status: int = 0

    @property
    def range(self) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == "range":
                return value
        return None


@dataclass
class _Fault:
    remaining: int  # how many more requests are affected (-1: forever)
    value: object = None

    def take(self) -> bool:
        if self.remaining == 0:
            return False
        if self.remaining > 0:
            self.remaining -= 1
        return True


class FileServer:
    """Threaded HTTP server on 127.0.0.1 (random free port). Use as a context manager."""

    def __init__(self, root: str | Path | None = None, files: dict[str, bytes] | None = None,
                 chunk_size: int = 64 * 1024) -> None:
        self.root = Path(root).resolve() if root is not None else None
        self._files: dict[str, bytes] = dict(files or {})
        self._tampered: set[str] = set()
        self._cuts: dict[str, _Fault] = {}
        self._delays: dict[str, _Fault] = {}
        self._failures: dict[str, _Fault] = {}
        self.ignore_range = False
        self.chunk_size = chunk_size
        self._lock = threading.Lock()
        self._log: list[RequestRecord] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "FileServer":
        handler = type("_Handler", (_Handler,), {"server_state": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="FileServer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FileServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The listening port (still known after stop(), e.g. to assert on URLs in messages)."""
        assert self._port is not None, "server not started"
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ content and faults
    def put(self, path: str, data: bytes) -> None:
        """Serve ``data`` at ``path`` (takes precedence over the root folder)."""
        with self._lock:
            self._files[path.lstrip("/")] = bytes(data)

    def remove(self, path: str) -> None:
        with self._lock:
            self._files.pop(path.lstrip("/"), None)

    def tamper(self, path: str, enabled: bool = True) -> None:
        """Serve ``path`` with altered bytes (same length: a byte in the middle is flipped)."""
        with self._lock:
            (self._tampered.add if enabled else self._tampered.discard)(path.lstrip("/"))

    def cut_after(self, path: str, nbytes: int, times: int = 1) -> None:
        """Close the connection after ``nbytes`` body bytes on the next ``times`` GETs of ``path`` (-1: always)."""
        with self._lock:
            self._cuts[path.lstrip("/")] = _Fault(times, nbytes)

    def delay(self, path: str, seconds: float, times: int = 1) -> None:
        """Sleep ``seconds`` before sending the body on the next ``times`` GETs of ``path``."""
        with self._lock:
            self._delays[path.lstrip("/")] = _Fault(times, seconds)

    def fail(self, path: str, status: int = 500, times: int = 1) -> None:
        """Answer the next ``times`` requests of ``path`` with HTTP ``status``."""
        with self._lock:
            self._failures[path.lstrip("/")] = _Fault(times, status)

    def content(self, path: str) -> bytes | None:
        """The bytes served at ``path`` (after tampering), or None when there is no such file."""
        path = path.lstrip("/")
        with self._lock:
            data = self._files.get(path)
            tampered = path in self._tampered
        if data is None and self.root is not None:
            candidate = (self.root / path).resolve()
            if candidate.is_file() and (candidate == self.root or self.root in candidate.parents):
                data = candidate.read_bytes()
        if data is None:
            return None
        if tampered and data:
            mid = len(data) // 2
            data = data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1:]
        return data

    # ------------------------------------------------------------------ log
    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def requests_for(self, path: str) -> list[RequestRecord]:
        path = path.lstrip("/")
        return [r for r in self.requests if r.path == path]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._log.append(record)

    def _take(self, table: dict[str, _Fault], path: str):
        with self._lock:
            fault = table.get(path)
            return fault.value if fault is not None and fault.take() else None


class _Handler(BaseHTTPRequestHandler):
    server_state: FileServer  # set on the subclass made by FileServer.start
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # noqa: A002 - keep test output quiet
        pass

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(head=False)

    def _send_simple(self, status: int, path: str, extra: dict | None = None) -> None:
        body = f"{status} {self.responses.get(status, ('',))[0]}\n".encode()
        self.send_response(status)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _serve(self, head: bool) -> None:
        state = self.server_state
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        headers = {k: v for k, v in self.headers.items()}

        def record(status: int) -> None:
            state._record(RequestRecord(self.command, path, headers, status))

        status_override = state._take(state._failures, path)
        if status_override is not None:
            record(int(status_override))
            self._send_simple(int(status_override), path)
            return
        data = state.content(path)
        if data is None:
            record(404)
            self._send_simple(404, path)
            return

        total = len(data)
        start, end = 0, total - 1
        status = 200
        range_header = headers.get("Range") or headers.get("range")
        if range_header and not state.ignore_range:
            match = _RANGE.match(range_header)
            if match and (match.group(1) or match.group(2)):
                first, last = match.group(1), match.group(2)
                if first:
                    start = int(first)
                    end = min(int(last), total - 1) if last else total - 1
                else:  # suffix range: the last n bytes
                    start, end = max(0, total - int(last)), total - 1
                if start >= total or start > end:
                    record(416)
                    self._send_simple(416, path, {"Content-Range": f"bytes */{total}"})
                    return
                status = 206
        record(status)
        body = data[start:end + 1]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{total}")
        self.end_headers()
        if head:
            return
        wait = state._take(state._delays, path)
        if wait:
            time.sleep(float(wait))
        cut = state._take(state._cuts, path)
        limit = len(body) if cut is None else max(0, min(len(body), int(cut)))
        sent = 0
        try:
            while sent < limit:
                piece = body[sent:min(limit, sent + state.chunk_size)]
                self.wfile.write(piece)
                sent += len(piece)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        if cut is not None and limit < len(body):
            self.close_connection = True  # the client sees a short body, then EOF
