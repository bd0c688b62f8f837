"""The asset store: where model files live, how they are downloaded, verified and handed out.

Layout of the data dir (``platformdirs.user_data_dir("faceanon")`` or ``$FACEANON_HOME``)::

    <data>/<name>                  every manifest file, e.g. <data>/3ddfa_v2/mb05_120x120.pth,
                                   <data>/3ddfa_v3/net_recon.pth
    <data>/<name>.incomplete       a download in progress (resumed with HTTP Range)
    <data>/<name>.lock             the file lock serialising downloads of <name> across processes
    <data>/derived/                caches other code builds from the assets
    <data>/verified.json           name -> size, mtime_ns, sha256 of files already hashed
    <data>/tofu.json               name -> sha256 recorded at the first download (3ddfa-v3 set)
    <data>/license_accepted.json   when the BFM licence notice was accepted

Environment: ``FACEANON_HOME`` (data dir), ``FACEANON_ASSETS_MIRROR`` (a folder or an http(s) base URL
holding ``<mirror>/<name>``), ``FACEANON_OFFLINE=1`` (never open a connection), and
``FACEANON_DOWNLOAD_RETRIES`` / ``_BACKOFF`` / ``_TIMEOUT`` (see :class:`RetryPolicy`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import platformdirs
from filelock import FileLock

from faceanon.assets.download import (
    MIRROR_HINT,
    NullProgress,
    ProgressSink,
    RetryPolicy,
    TransferStats,
    copy_local,
    fetch_http,
    sha256_file,
)
from faceanon.assets.manifest import (
    ALL,
    BFM_NOTICE,
    DEFAULT_MODEL,
    MODEL_CHOICES,
    AssetEntry,
    download_hint,
    entries as manifest_entries,
    get_entry,
)
from faceanon.errors import AssetError, ChecksumError, LicenseNotAccepted

ENV_HOME = "FACEANON_HOME"
ENV_MIRROR = "FACEANON_ASSETS_MIRROR"
ENV_OFFLINE = "FACEANON_OFFLINE"

VERIFIED_FILE = "verified.json"
TOFU_FILE = "tofu.json"
LICENSE_FILE = "license_accepted.json"
_STATE_LOCK = ".state.lock"

# Statuses
VERIFIED = "verified"
MISSING = "missing"
CORRUPT = "corrupt"
PRESENT = "present"  # on disk, not hashed yet (only from status(); verify() always hashes)
DOWNLOADED = "downloaded"


def env_flag(name: str) -> bool:
    """True when the environment variable holds 1/true/yes/on."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def default_data_dir() -> Path:
    """``$FACEANON_HOME`` or the platform's per-user data dir for faceanon."""
    env = os.environ.get(ENV_HOME, "").strip()
    if env:
        return Path(env).expanduser().resolve()
    return Path(platformdirs.user_data_dir("faceanon"))


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Mirror:
    """Where files come from instead of their upstream URLs: ``kind`` is "dir" or "http"."""

    kind: str
    base: str

    @classmethod
    def parse(cls, value: str | os.PathLike | None) -> "Mirror | None":
        if value is None:
            return None
        text = os.fspath(value).strip()
        if not text:
            return None
        lower = text.lower()
        if lower.startswith(("http://", "https://")):
            return cls("http", text.rstrip("/"))
        if lower.startswith("file://"):
            path = urllib.request.url2pathname(urllib.parse.urlparse(text).path)
            return cls("dir", str(Path(path).resolve()))
        if "://" in text:
            raise AssetError(f"unsupported asset mirror {text!r}: use a local folder or an http(s) base URL",
                             hint=MIRROR_HINT)
        return cls("dir", str(Path(text).expanduser().resolve()))

    def location(self, name: str) -> str:
        if self.kind == "http":
            return f"{self.base}/{urllib.parse.quote(name)}"
        return str(Path(self.base, *name.split("/")))

    def __str__(self) -> str:
        return self.base


@dataclass(frozen=True)
class DownloadResult:
    """What :meth:`AssetStore.download` did with one file."""

    entry: AssetEntry
    path: Path
    status: str  # "downloaded" or "present" (already there and verified)
    sha256: str
    source: str | None = None  # URL or mirror path it came from (None when already present)
    bytes_transferred: int = 0
    resumed_from: int = 0  # bytes already on disk when the successful transfer started

    @property
    def name(self) -> str:
        return self.entry.name


class _RichProgress:
    """One rich progress display (stderr) with a bar per transferred file: bytes, speed, ETA."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )

    def __enter__(self) -> "_RichProgress":
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def sink(self, name: str) -> ProgressSink:
        progress = self._progress
        task = progress.add_task(name, total=None, start=False)

        class _Sink:
            def start(self, total: int | None, completed: int) -> None:
                progress.reset(task, total=total, completed=completed)
                progress.start_task(task)

            def update(self, completed: int) -> None:
                progress.update(task, completed=completed)

        return _Sink()


class _NoProgress:
    def __enter__(self) -> "_NoProgress":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def sink(self, name: str) -> ProgressSink:
        return NullProgress()


def _progress_display(enabled: bool):
    """A rich progress display when enabled and stderr is a terminal (logs get the per-file summary only)."""
    if enabled:
        from rich.console import Console

        if Console(stderr=True).is_terminal:
            return _RichProgress()
    return _NoProgress()


def _stderr_notice(text: str) -> None:
    sys.stderr.write(text.rstrip("\n") + "\n")
    sys.stderr.flush()


class AssetStore:
    """Model files on disk: lookup, verification, download.

    Use :func:`get_store` to build one from the environment.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike,
        mirror: str | os.PathLike | Mirror | None = None,
        offline: bool = False,
        policy: RetryPolicy | None = None,
        notify: Callable[[str], None] = _stderr_notice,
        lock_timeout: float = -1,
    ) -> None:
        self._data_dir = Path(data_dir)
        self.mirror: Mirror | None = mirror if isinstance(mirror, Mirror) or mirror is None else Mirror.parse(mirror)
        self.offline = bool(offline)
        self.policy = policy or RetryPolicy.from_env()
        self.notify = notify
        self.lock_timeout = lock_timeout
        self._notice_shown = False

    # ------------------------------------------------------------------ layout
    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def derived_dir(self) -> Path:
        """``<data>/derived``: caches built from assets (created on first access when possible)."""
        path = self._data_dir / "derived"
        with contextlib.suppress(OSError):
            path.mkdir(parents=True, exist_ok=True)
        return path

    def entries(self, model: str = DEFAULT_MODEL) -> list[AssetEntry]:
        """Manifest entries of ``lite``, ``3ddfa-v3`` or ``all``."""
        try:
            return manifest_entries(model)
        except ValueError as exc:
            raise AssetError(str(exc), hint=f"use --model {' / '.join(MODEL_CHOICES)}") from None

    def entry(self, name: str) -> AssetEntry:
        found = get_entry(name)
        if found is None:
            raise AssetError(f"unknown model file {name!r} (not in the asset manifest)",
                             hint="run `faceanon assets list` to see the known files")
        return found

    def path_for(self, name: str) -> Path:
        """Where ``name`` lives in the data dir (whether or not it is there)."""
        entry = self.entry(name)
        return self._data_dir.joinpath(*entry.name.split("/"))

    def source_for(self, entry: AssetEntry) -> str:
        """The URL or mirror path ``entry`` is fetched from."""
        return self.mirror.location(entry.name) if self.mirror else entry.url

    # ------------------------------------------------------------------ state files
    def _state_path(self, filename: str) -> Path:
        return self._data_dir / filename

    def _read_state(self, filename: str) -> dict:
        try:
            data = json.loads(self._state_path(filename).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @contextlib.contextmanager
    def _edit_state(self, filename: str) -> Iterator[dict]:
        """Read-modify-write a JSON state file under a cross-process lock, written atomically."""
        self._data_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self._data_dir / _STATE_LOCK), timeout=self.lock_timeout):
            data = self._read_state(filename)
            yield data
            path = self._state_path(filename)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            os.replace(tmp, path)

    def _remember_verified(self, entry: AssetEntry, path: Path, sha: str) -> None:
        with contextlib.suppress(OSError):
            st = path.stat()
            with self._edit_state(VERIFIED_FILE) as data:
                data[entry.name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha}

    def _forget_verified(self, entry: AssetEntry) -> None:
        if entry.name not in self._read_state(VERIFIED_FILE):
            return
        with contextlib.suppress(OSError):
            with self._edit_state(VERIFIED_FILE) as data:
                data.pop(entry.name, None)

    def tofu_record(self, name: str) -> dict | None:
        """The hash recorded at the first download of a trust-on-first-use file, or None."""
        record = self._read_state(TOFU_FILE).get(name)
        return record if isinstance(record, dict) and "sha256" in record else None

    def _record_tofu(self, entry: AssetEntry, sha: str, size: int, source: str | None) -> dict:
        """Record ``sha`` as the trusted hash of ``entry`` unless one is recorded; return the record."""
        with self._edit_state(TOFU_FILE) as data:
            existing = data.get(entry.name)
            if isinstance(existing, dict) and "sha256" in existing:
                return existing
            data[entry.name] = {"sha256": sha, "size": size, "source": source, "recorded": _now()}
            return data[entry.name]

    def expected_sha256(self, entry: AssetEntry) -> str | None:
        """The manifest hash, or for trust-on-first-use files the recorded one (None before the first download)."""
        if entry.sha256:
            return entry.sha256
        record = self.tofu_record(entry.name)
        return record["sha256"] if record else None

    # ------------------------------------------------------------------ verification
    def _check(self, entry: AssetEntry, *, rehash: bool, record_tofu: bool = True) -> tuple[str, str | None]:
        """(status, sha256 of the file or None). Uses the verified cache unless ``rehash``."""
        path = self.path_for(entry.name)
        try:
            st = path.stat()
        except FileNotFoundError:
            return MISSING, None
        if not path.is_file():
            return CORRUPT, None
        expected = self.expected_sha256(entry)
        if not rehash and expected:
            cached = self._read_state(VERIFIED_FILE).get(entry.name)
            if (isinstance(cached, dict) and cached.get("size") == st.st_size
                    and cached.get("mtime_ns") == st.st_mtime_ns and cached.get("sha256") == expected):
                return VERIFIED, expected
        if expected is None and not record_tofu:
            return PRESENT, None  # no hash to compare with and not allowed to record one
        sha = sha256_file(path)
        if expected is None:
            try:
                expected = self._record_tofu(entry, sha, st.st_size, None)["sha256"]
            except OSError:  # read-only data dir: trust the file without recording it
                expected = sha
        if sha == expected:
            self._remember_verified(entry, path, sha)
            return VERIFIED, sha
        self._forget_verified(entry)
        return CORRUPT, sha

    def status(self, name: str) -> str:
        """``missing``, ``verified`` (hash known good for this size/mtime) or ``present`` (not hashed yet).

        Never hashes: meant for listings.
        """
        entry = self.entry(name)
        path = self.path_for(name)
        try:
            st = path.stat()
        except FileNotFoundError:
            return MISSING
        expected = self.expected_sha256(entry)
        cached = self._read_state(VERIFIED_FILE).get(entry.name)
        if (expected and isinstance(cached, dict) and cached.get("size") == st.st_size
                and cached.get("mtime_ns") == st.st_mtime_ns and cached.get("sha256") == expected):
            return VERIFIED
        return PRESENT

    def require(self, name: str) -> Path:
        """The verified path of ``name``.

        Hashes the file only when its size or mtime changed since it was last verified. Raises
        :class:`AssetError` (missing) or :class:`ChecksumError` (corrupt) with the download hint.
        """
        entry = self.entry(name)
        status, sha = self._check(entry, rehash=False)
        path = self.path_for(name)
        if status == MISSING:
            raise AssetError(f"model file {name} is missing (expected at {path})", hint=download_hint(entry.model))
        if status == CORRUPT:
            raise ChecksumError(
                f"model file {name} is corrupt: sha256 {sha} differs from the expected {self.expected_sha256(entry)}"
                f" ({path})",
                hint=download_hint(entry.model),
            )
        return path

    def verify(self, model: str = DEFAULT_MODEL) -> list[tuple[AssetEntry, str]]:
        """Hash every file of ``model``: a list of (entry, "verified" | "missing" | "corrupt")."""
        return [(entry, self._check(entry, rehash=True)[0]) for entry in self.entries(model)]

    # ------------------------------------------------------------------ licence
    def license_accepted(self) -> dict | None:
        """The recorded acceptance of the BFM licence notice, or None."""
        data = self._read_state(LICENSE_FILE)
        return data if data.get("accepted") is True else None

    def accept_license(self) -> None:
        """Remember that the user accepted the BFM (non-commercial research) licence."""
        self.show_license_notice()
        with self._edit_state(LICENSE_FILE) as data:
            if data.get("accepted") is not True:
                data.clear()
                data.update({"accepted": True, "date": _now(), "notice": BFM_NOTICE})

    def license_notice(self, files: Iterable[AssetEntry] = ()) -> str:
        names = [e.name for e in files]
        text = "NOTICE: " + BFM_NOTICE
        if names:
            text += "\nBFM-derived files: " + ", ".join(names)
        return text

    def show_license_notice(self, files: Iterable[AssetEntry] = ()) -> None:
        """Print the BFM notice on stderr (once per store)."""
        if not self._notice_shown:
            self._notice_shown = True
            self.notify(self.license_notice(files))

    def pending_license(self, model: str = DEFAULT_MODEL, force: bool = False,
                        names: Iterable[str] | None = None) -> list[AssetEntry]:
        """BFM-derived files a download would fetch while the licence is not accepted yet."""
        if self.license_accepted():
            return []
        return [e for e in self._to_fetch(self._select(model, names), force) if e.bfm_derived]

    # ------------------------------------------------------------------ download
    def _select(self, model: str, names: Iterable[str] | None) -> list[AssetEntry]:
        selected = self.entries(model)
        if names is None:
            return selected
        if isinstance(names, str):
            names = [names]
        wanted = [self.entry(n) for n in names]
        if model != ALL:
            for e in wanted:
                if e.model != model:
                    raise AssetError(f"{e.name} is not part of the {model} model set", hint=f"use --model {e.model}")
        return wanted

    def _to_fetch(self, selected: list[AssetEntry], force: bool) -> list[AssetEntry]:
        if force:
            return list(selected)
        return [e for e in selected if self._check(e, rehash=False, record_tofu=False)[0] != VERIFIED]

    def download(
        self,
        model: str = DEFAULT_MODEL,
        force: bool = False,
        accept_license: bool = False,
        progress: bool = True,
        names: Iterable[str] | None = None,
    ) -> list[DownloadResult]:
        """Make every file of ``model`` (or only ``names``) present and verified.

        Files already verified are skipped unless ``force``. Raises :class:`LicenseNotAccepted` when
        BFM-derived files are to be fetched and the licence was never accepted (``accept_license``
        accepts it and remembers that), :class:`AssetError` in offline mode when files are missing,
        :class:`DownloadError` / :class:`ChecksumError` when a transfer fails.
        """
        selected = self._select(model, names)
        todo = self._to_fetch(selected, force)

        if accept_license and any(e.bfm_derived for e in selected) and not self.license_accepted():
            self.show_license_notice([e for e in todo if e.bfm_derived])
            self.accept_license()
        pending = [e for e in todo if e.bfm_derived] if not self.license_accepted() else []
        if pending:
            shown = ", ".join(e.name for e in pending[:3]) + (f" (+{len(pending) - 3} more)" if len(pending) > 3 else "")
            raise LicenseNotAccepted(
                f"{len(pending)} file(s) to download are BFM-derived, for non-commercial research use only "
                f"(Basel Face Model licence), and the licence was not accepted: {shown}",
                hint="rerun with `--accept-license` (faceanon assets download --accept-license)",
            )

        if todo:
            self._check_can_fetch(todo, model)
            self._data_dir.mkdir(parents=True, exist_ok=True)

        todo_names = {e.name for e in todo}
        results: list[DownloadResult] = []
        display = _progress_display(progress and bool(todo))
        with display:
            for entry in selected:
                if entry.name in todo_names:
                    results.append(self._fetch_locked(entry, force, display))
                else:
                    results.append(DownloadResult(entry, self.path_for(entry.name), "present",
                                                  self.expected_sha256(entry) or ""))
        return results

    def _check_can_fetch(self, todo: list[AssetEntry], model: str) -> None:
        local_mirror = self.mirror is not None and self.mirror.kind == "dir"
        if self.offline and not local_mirror:
            shown = ", ".join(e.name for e in todo)
            raise AssetError(
                f"offline mode (FACEANON_OFFLINE / --offline) and {len(todo)} model file(s) missing or unverified "
                f"in {self._data_dir}: {shown}",
                hint=(f"run `faceanon assets download --model {model}` without --offline / FACEANON_OFFLINE, or set "
                      f"FACEANON_ASSETS_MIRROR (or --mirror) to a local folder holding the files"),
            )
        if local_mirror and not Path(self.mirror.base).is_dir():
            raise AssetError(f"the asset mirror folder {self.mirror.base} does not exist", hint=MIRROR_HINT)

    def _fetch_locked(self, entry: AssetEntry, force: bool, display) -> DownloadResult:
        target = self.path_for(entry.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock", timeout=self.lock_timeout):
            if not force:
                # another process may have finished this file while we waited for the lock
                status, sha = self._check(entry, rehash=False, record_tofu=False)
                if status == VERIFIED and sha:
                    return DownloadResult(entry, target, "present", sha)
            return self._fetch(entry, target, force, display)

    def _transfer(self, entry: AssetEntry, tmp: Path, display) -> TransferStats:
        source = self.source_for(entry)
        sink = display.sink(entry.name)
        if self.mirror is not None and self.mirror.kind == "dir":
            return copy_local(Path(source), tmp, progress=sink)
        return fetch_http(source, tmp, expected_size=entry.size, policy=self.policy, progress=sink)

    def _fetch(self, entry: AssetEntry, target: Path, force: bool, display) -> DownloadResult:
        tmp = target.with_name(target.name + ".incomplete")
        source = self.source_for(entry)
        if force:
            tmp.unlink(missing_ok=True)
        for attempt in (1, 2):
            stats = self._transfer(entry, tmp, display)
            sha = sha256_file(tmp)
            expected = self.expected_sha256(entry)
            if expected is None or sha == expected:
                break
            tmp.unlink(missing_ok=True)
            if attempt == 1 and stats.resumed_from > 0:
                continue  # the resumed prefix may be stale: one clean download before giving up
            record = self.tofu_record(entry.name) if entry.sha256 is None else None
            if record is not None:
                raise ChecksumError(
                    f"refusing {entry.name} from {source}: its sha256 {sha} differs from the sha256 {expected} "
                    f"recorded at its first download on {record.get('recorded', '?')} (trust on first use); "
                    f"nothing was changed",
                    hint=(f"if the upstream file really changed, remove the {entry.name!r} entry from "
                          f"{self._state_path(TOFU_FILE)} and download again"),
                )
            raise ChecksumError(
                f"sha256 mismatch for {entry.name} from {source}: got {sha}, expected {expected}; "
                f"the download was discarded",
                hint="the source serves a different file; check the mirror (FACEANON_ASSETS_MIRROR or --mirror) "
                     "or retry later",
            )
        size = tmp.stat().st_size
        if entry.sha256 is None and self.tofu_record(entry.name) is None:
            self._record_tofu(entry, sha, size, source)
        os.replace(tmp, target)
        self._remember_verified(entry, target, sha)
        return DownloadResult(entry, target, DOWNLOADED, sha, source=source,
                              bytes_transferred=stats.bytes_transferred, resumed_from=stats.resumed_from)


def get_store(
    mirror: str | os.PathLike | None = None,
    offline: bool | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    policy: RetryPolicy | None = None,
) -> AssetStore:
    """An :class:`AssetStore` configured from the environment.

    ``mirror`` overrides ``FACEANON_ASSETS_MIRROR`` (pass ``""`` to ignore the variable and use the
    upstream URLs), ``offline`` overrides ``FACEANON_OFFLINE``, ``data_dir`` overrides ``FACEANON_HOME``.
    """
    if mirror is None:
        mirror = os.environ.get(ENV_MIRROR) or None
    if offline is None:
        offline = env_flag(ENV_OFFLINE)
    return AssetStore(
        data_dir=Path(data_dir) if data_dir is not None else default_data_dir(),
        mirror=mirror,
        offline=offline,
        policy=policy,
    )
