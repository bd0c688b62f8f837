"""Low-level transfers: resumable HTTP(S) downloads and local copies into ``<file>.incomplete``.

Nothing here knows about the manifest or the data dir; :mod:`faceanon.assets.store` decides what to
fetch, verifies the result and renames it into place.

HTTP downloads use :mod:`urllib.request` only. An existing ``.incomplete`` file is resumed with a
``Range: bytes=<size>-`` request; a ``206`` answer is appended, a ``200`` answer (server ignoring the
range) restarts the file from scratch. Connection errors, truncated bodies, timeouts and 5xx answers
are retried with exponential backoff; other HTTP errors (404...) fail at once.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from faceanon import __version__
from faceanon.errors import DownloadError

CHUNK = 1 << 16
MIRROR_HINT = (
    "set a mirror (a folder or an http(s) base URL holding <mirror>/<name>) with the "
    "FACEANON_ASSETS_MIRROR environment variable or --mirror"
)
_RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def _env_number(name: str, default: float, cast: Callable[[str], float]) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return cast(raw)
    except ValueError:
        return default


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transfer is retried after a connection error.

    ``attempts`` counts every try (1 = no retry); the n-th retry waits ``backoff * 2**(n-1)`` seconds
    (capped by ``max_delay``). ``timeout`` is the socket timeout of one request in seconds.
    """

    attempts: int = 4
    backoff: float = 0.5
    max_delay: float = 8.0
    timeout: float = 30.0

    @classmethod
    def from_env(cls) -> "RetryPolicy":
        """Defaults overridden by FACEANON_DOWNLOAD_RETRIES / _BACKOFF / _TIMEOUT (tests make them tiny)."""
        base = cls()
        return cls(
            attempts=max(1, int(_env_number("FACEANON_DOWNLOAD_RETRIES", base.attempts, int))),
            backoff=max(0.0, _env_number("FACEANON_DOWNLOAD_BACKOFF", base.backoff, float)),
            max_delay=base.max_delay,
            timeout=max(0.1, _env_number("FACEANON_DOWNLOAD_TIMEOUT", base.timeout, float)),
        )

    def delay(self, retry_number: int) -> float:
        return min(self.max_delay, self.backoff * (2 ** max(0, retry_number - 1)))


class ProgressSink(Protocol):
    """What a transfer reports to (see :class:`faceanon.assets.store` for the rich implementation)."""

    def start(self, total: int | None, completed: int) -> None: ...

    def update(self, completed: int) -> None: ...


class NullProgress:
    def start(self, total: int | None, completed: int) -> None:
        pass

    def update(self, completed: int) -> None:
        pass


class _Retryable(Exception):
    """A transient failure: retry after a backoff (resuming from what is on disk)."""


class _Restart(Exception):
    """The partial file cannot be resumed and was deleted: request again at once, from scratch."""


@dataclass
class TransferStats:
    bytes_transferred: int = 0
    resumed_from: int = 0  # size of the .incomplete file the successful request resumed from
    requests: int = 0


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        reason = exc.reason
        return f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else str(reason)
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _open(url: str, offset: int, timeout: float):
    headers = {"User-Agent": f"faceanon/{__version__}", "Accept-Encoding": "identity"}
    if offset > 0:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) only, checked by caller


def _one_request(url: str, dest: Path, expected_size: int | None, timeout: float,
                 progress: ProgressSink, stats: TransferStats) -> None:
    """One HTTP request that extends ``dest`` (or restarts it). Raises _Retryable or DownloadError."""
    offset = dest.stat().st_size if dest.exists() else 0
    if expected_size is not None and offset > expected_size:
        dest.unlink()  # longer than the real file: cannot be a prefix of it
        offset = 0
    stats.requests += 1
    try:
        response = _open(url, offset, timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset > 0:
            # Range not satisfiable: complete already ("bytes */<offset>"), or not a prefix we can extend.
            match = re.match(r"bytes\s+\*/(\d+)", exc.headers.get("Content-Range", "") if exc.headers else "")
            if match and int(match.group(1)) == offset:
                stats.resumed_from = offset
                return
            dest.unlink(missing_ok=True)
            raise _Restart(f"HTTP 416 for a resume of {url}") from exc
        if exc.code in _RETRYABLE_STATUS:
            raise _Retryable(f"HTTP {exc.code} {exc.reason} for {url}") from exc
        raise DownloadError(f"download failed: HTTP {exc.code} {exc.reason} for {url}", hint=MIRROR_HINT) from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _Retryable(f"cannot connect to {url}: {_describe(exc)}") from exc

    with response:
        status = getattr(response, "status", None) or response.getcode()
        length_header = response.headers.get("Content-Length")
        body_length = int(length_header) if length_header and length_header.isdigit() else None
        if offset > 0 and status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                dest.unlink(missing_ok=True)
                raise _Restart(f"unexpected Content-Range {response.headers.get('Content-Range')!r} from {url}")
            mode, start = "ab", offset
            total = int(match.group(3)) if match.group(3) != "*" else expected_size
        elif status == 200:
            mode, start = "wb", 0  # no range asked, or the server ignored it: start over
            total = body_length if body_length is not None else expected_size
        else:
            raise DownloadError(f"download failed: unexpected HTTP {status} for {url}", hint=MIRROR_HINT)
        stats.resumed_from = start
        want = body_length if body_length is not None else (total - start if total is not None else None)
        progress.start(total, start)
        got = 0
        try:
            out = open(dest, mode)
        except OSError as exc:
            raise DownloadError(f"cannot write {dest}: {exc}") from exc
        with out:
            while True:
                try:
                    block = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Retryable(f"connection lost while downloading {url} after {start + got} bytes: "
                                     f"{_describe(exc)}") from exc
                if not block:
                    break
                try:
                    out.write(block)
                except OSError as exc:
                    raise DownloadError(f"cannot write {dest}: {exc}") from exc
                got += len(block)
                stats.bytes_transferred += len(block)
                progress.update(start + got)
        if want is not None and got < want:
            raise _Retryable(f"connection closed while downloading {url} after {start + got} of {start + want} bytes")


def fetch_http(url: str, dest: Path, *, expected_size: int | None, policy: RetryPolicy,
               progress: ProgressSink | None = None, sleep: Callable[[float], None] = time.sleep) -> TransferStats:
    """Download ``url`` into ``dest`` (normally ``<file>.incomplete``), resuming what is already there.

    Returns when the server has sent the whole body; the caller verifies the hash. Raises
    :class:`DownloadError` (one line naming the URL and the mirror variables) when all attempts fail.
    """
    progress = progress or NullProgress()
    stats = TransferStats()
    if expected_size is not None and dest.exists() and dest.stat().st_size == expected_size:
        stats.resumed_from = expected_size  # complete already: let the caller verify it without a request
        return stats
    last = ""
    restarts = 0
    attempt = 1
    while attempt <= policy.attempts:
        try:
            _one_request(url, dest, expected_size, policy.timeout, progress, stats)
            return stats
        except _Restart as exc:
            last = str(exc)
            restarts += 1
            if restarts <= 2:
                continue  # the partial file is gone: a fresh request does not count as a retry
            attempt += 1
        except _Retryable as exc:
            last = str(exc)
            if attempt < policy.attempts:
                sleep(policy.delay(attempt))
            attempt += 1
    raise DownloadError(f"download failed after {policy.attempts} attempt(s): {last}", hint=MIRROR_HINT)


def copy_local(src: Path, dest: Path, *, progress: ProgressSink | None = None) -> TransferStats:
    """Copy ``src`` (a file of a directory mirror) into ``dest`` from scratch."""
    progress = progress or NullProgress()
    stats = TransferStats(requests=1)
    if not src.is_file():
        raise DownloadError(f"download failed: {src} does not exist in the mirror folder", hint=MIRROR_HINT)
    total = src.stat().st_size
    progress.start(total, 0)
    done = 0
    try:
        with open(src, "rb") as fin, open(dest, "wb") as fout:
            while True:
                block = fin.read(1 << 20)
                if not block:
                    break
                fout.write(block)
                done += len(block)
                progress.update(done)
    except OSError as exc:
        raise DownloadError(f"cannot copy {src} to {dest}: {exc}") from exc
    stats.bytes_transferred = done
    return stats


__all__ = [
    "MIRROR_HINT", "RetryPolicy", "TransferStats", "NullProgress", "ProgressSink",
    "sha256_file", "fetch_http", "copy_local",
]
