"""Atomic file writes: readers never see a half-written output, even after a crash or Ctrl-C.

Every output goes through :func:`atomic_write`: the bytes are written to a hidden temporary file
in the *same folder* as the target (``.<name>.<16 hex>.tmp``), flushed and fsync'ed, then moved
over the target with :func:`os.replace` (atomic on POSIX and Windows when both are on the same
file system). On any error - including ``KeyboardInterrupt`` - the temporary file is removed and
the target is left untouched (the previous version, if any, stays in place).

``OSError`` raised while writing (disk full, permission denied, read-only file system...) is
translated into :class:`faceanon.errors.OutputError` carrying one line that names the target path
and the reason. Temporary files left behind by a killed process (SIGKILL, power loss) are hidden;
:func:`clean_stale_temp_files` removes them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import time
import zipfile
from pathlib import Path
from typing import IO, Iterator, Mapping

import numpy as np

from faceanon.errors import OutputError

__all__ = [
    "atomic_write",
    "atomic_save_npz",
    "clean_stale_temp_files",
    "output_error",
    "TEMP_SUFFIX",
]

TEMP_SUFFIX = ".tmp"
_TEMP_RE = re.compile(r"^\..+\.[0-9a-f]{16}\.tmp$", re.DOTALL)

_REASONS = {
    errno.ENOSPC: ("no space left on device", "free some disk space or choose another output folder"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or choose another output folder"),
    errno.EACCES: ("permission denied", "choose an output folder you can write to"),
    errno.EPERM: ("operation not permitted", "choose an output folder you can write to"),
    errno.EROFS: ("read-only file system", "choose an output folder on a writable disk"),
    errno.ENAMETOOLONG: ("file name too long", "shorten the input file names or the output folder path"),
    errno.EISDIR: ("a folder with this name already exists", "remove or rename that folder"),
    errno.ENOTDIR: ("a parent of this path is a file, not a folder", "choose another output folder"),
    errno.EIO: ("input/output error (failing disk or network share?)", None),
}


def output_error(path: Path | str, exc: OSError) -> OutputError:
    """Build the one-line :class:`OutputError` for an ``OSError`` raised while writing ``path``."""
    reason, hint = _REASONS.get(exc.errno or -1, (None, None))
    if reason is None:
        reason = exc.strerror or str(exc) or type(exc).__name__
    err = OutputError(f"cannot write {path}: {reason}", hint=hint)
    err.__cause__ = exc
    return err


def _temp_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(8)}{TEMP_SUFFIX}")


def _create_temp(target: Path) -> tuple[Path, int]:
    """Create a fresh temporary file next to ``target``; returns (path, fd).

    ``os.open(..., 0o666)`` lets the process umask decide the permissions, exactly as for a file
    created with ``open(target, "w")`` (``tempfile.mkstemp`` would force 0600).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = _temp_path(target)
        try:
            return tmp, os.open(tmp, flags, 0o666)
        except FileExistsError:  # pragma: no cover - 64 random bits
            continue
    raise FileExistsError(errno.EEXIST, "could not create a unique temporary file", str(target))  # pragma: no cover


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself (best effort; not supported on Windows)."""
    if os.name != "posix":  # pragma: no cover
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


@contextlib.contextmanager
def atomic_write(path: Path | str, mode: str = "wb", *, encoding: str = "utf-8",
                 make_parents: bool = True) -> Iterator[IO]:
    """Open a temporary file for writing; on success it atomically replaces ``path``.

    Args:
        path: the final file. Its parent folder is created when missing (``make_parents``).
        mode: ``"wb"`` (bytes) or ``"w"`` (text: ``encoding``, ``"\\n"`` line endings).
        encoding: text encoding for ``mode="w"``.

    Yields the open file object. When the ``with`` body finishes normally the file is flushed,
    fsync'ed, closed and renamed over ``path``; when it raises (anything, ``KeyboardInterrupt``
    included) the temporary file is deleted and the exception propagates - an ``OSError`` as
    :class:`OutputError` naming ``path``.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    target = Path(path)
    try:
        if make_parents:
            target.parent.mkdir(parents=True, exist_ok=True)
        tmp, fd = _create_temp(target)
    except OSError as exc:
        raise output_error(target, exc) from exc

    committed = False
    try:
        try:
            if mode == "wb":
                fh: IO = os.fdopen(fd, "wb")
            else:
                fh = os.fdopen(fd, "w", encoding=encoding, newline="\n")
        except BaseException:
            os.close(fd)
            raise
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        committed = True
        _fsync_dir(target.parent)
    except OSError as exc:
        raise output_error(target, exc) from exc
    finally:
        if not committed:
            _unlink_quietly(tmp)


def _check_npz_arrays(arrays: Mapping[str, object]) -> dict[str, np.ndarray]:
    out = {}
    for key, value in arrays.items():
        if not isinstance(key, str) or not key or "/" in key or key.startswith("."):
            raise ValueError(f"atomic_save_npz: bad array name {key!r}")
        arr = np.asanyarray(value)
        if arr.dtype.hasobject:
            raise ValueError(f"atomic_save_npz: array {key!r} has dtype object, which needs pickle; "
                             "store strings as a unicode array (np.array('text'))")
        out[key] = arr
    return out


def atomic_save_npz(path: Path | str, /, **arrays: object) -> None:
    """Write ``arrays`` to an uncompressed ``.npz`` file, atomically, without pickle.

    Same file format as :func:`numpy.savez` (a ZIP_STORED archive of ``<key>.npy`` members), written
    with ``allow_pickle=False`` (object arrays are refused with ``ValueError``). ``path`` is used as
    given (no ``.npz`` is appended). Any array name is allowed, even ``file`` or ``path``.
    """
    checked = _check_npz_arrays(arrays)
    with atomic_write(path, "wb") as fh:
        # A ZipFile on the raw file object: np.savez does the same (one .npy member per array).
        with zipfile.ZipFile(fh, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for key, arr in checked.items():
                with zf.open(key + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, arr, allow_pickle=False)


def clean_stale_temp_files(folder: Path | str, *, older_than: float = 3600.0,
                           recursive: bool = False) -> list[Path]:
    """Delete temporary files that :func:`atomic_write` left behind after a hard crash.

    Only files named like ours (``.<name>.<16 hex digits>.tmp``) whose modification time is more
    than ``older_than`` seconds old are removed, so that a concurrent writer's in-progress file
    survives; pass ``older_than=0`` to remove them all. Errors are ignored (best effort).
    Returns the removed paths, sorted.
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    now = time.time()
    removed: list[Path] = []
    walker = os.walk(root) if recursive else [(str(root), [], None)]
    for dirpath, _dirs, names in walker:
        if names is None:
            try:
                names = os.listdir(dirpath)
            except OSError:
                continue
        for name in names:
            if not _TEMP_RE.match(name):
                continue
            p = Path(dirpath) / name
            try:
                st = p.lstat()
                if not p.is_file() or p.is_symlink():
                    continue
                if now - st.st_mtime < older_than:
                    continue
                p.unlink()
            except OSError:
                continue
            removed.append(p)
    return sorted(removed)


LOCK_NAME = ".faceanon.lock"


@contextlib.contextmanager
def out_lock(folder: Path | str) -> Iterator[Path]:
    """Hold an exclusive lock on an output folder for the duration of a run (an OS file lock on
    ``<folder>/.faceanon.lock``, released when the run ends, even by ``kill -9``).

    A second run on the same folder fails at once with a one-line :class:`FaceanonError` instead of
    interleaving its files with the first run's and deleting its temporary files.
    """
    from filelock import FileLock, Timeout

    from faceanon.errors import FaceanonError

    path = Path(folder) / LOCK_NAME
    lock = FileLock(str(path), thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise FaceanonError(f"another faceanon run is writing to {folder}",
                            "wait for it to finish, or choose another output folder") from None
    except OSError as exc:
        raise output_error(path, exc) from exc
    try:
        yield path
    finally:
        lock.release()


def output_op(path: Path, op) -> None:
    """``op(path)`` on an output path (unlink, mkdir); an OSError becomes the one-line OutputError."""
    try:
        op(path)
    except OSError as exc:
        raise output_error(path, exc) from exc
