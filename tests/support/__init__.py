"""Reusable test helpers (import as ``tests.support``; pytest runs from the repository root).

* :class:`~tests.support.http_server.FileServer` -- a Range-capable HTTP server on 127.0.0.1 with a
  request log and fault injection (cut connection, delay, HTTP errors, tampered bytes, ignored Range).
* fixtures (import them into a test module to use them):

  - ``asset_home`` -- a fresh FACEANON_HOME in tmp_path; FACEANON_ASSETS_MIRROR / FACEANON_OFFLINE
    unset; fast download retries (3 attempts, 10 ms backoff).
  - ``http_mirror`` -- a started :class:`FileServer` serving the asset mirror folder.
* :func:`closed_port` -- a 127.0.0.1 port with nothing listening (a "dead host").
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support.http_server import FileServer, RequestRecord


def closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def asset_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "faceanon_home"
    monkeypatch.setenv("FACEANON_HOME", str(home))
    monkeypatch.delenv("FACEANON_ASSETS_MIRROR", raising=False)
    monkeypatch.delenv("FACEANON_OFFLINE", raising=False)
    monkeypatch.setenv("FACEANON_DOWNLOAD_RETRIES", "3")
    monkeypatch.setenv("FACEANON_DOWNLOAD_BACKOFF", "0.01")
    monkeypatch.setenv("FACEANON_DOWNLOAD_TIMEOUT", "10")
    return home


@pytest.fixture
def http_mirror(mirror_dir: Path):
    with FileServer(root=mirror_dir) as server:
        yield server


__all__ = ["FileServer", "RequestRecord", "asset_home", "closed_port", "http_mirror"]
