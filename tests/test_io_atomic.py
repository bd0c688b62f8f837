"""faceanon.io.atomic: all-or-nothing writes, OSError -> OutputError, stale temp cleanup, npz."""

from __future__ import annotations

import errno
import os
import stat
import time
import zipfile

import numpy as np
import pytest

from faceanon.errors import OutputError
from faceanon.io import atomic as atomic_mod
from faceanon.io.atomic import atomic_save_npz, atomic_write, clean_stale_temp_files


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_write_bytes_and_text(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_write(target) as fh:
        fh.write(b"abc")
        # nothing visible at the target while writing; the temp file is hidden, in the same folder
        assert not target.exists()
        [tmp] = [p for p in tmp_path.iterdir()]
        assert tmp.name.startswith(".out.bin.") and tmp.name.endswith(".tmp")
    assert target.read_bytes() == b"abc"
    assert listing(tmp_path) == ["out.bin"]

    text = tmp_path / "t é.txt"
    with atomic_write(text, "w") as fh:
        fh.write("héllo\nworld\n")
    assert text.read_bytes() == "héllo\nworld\n".encode()


def test_creates_parent_folders(tmp_path):
    target = tmp_path / "a" / "b" / "c.txt"
    with atomic_write(target, "w") as fh:
        fh.write("x")
    assert target.read_text() == "x"


def test_mode_is_validated(tmp_path):
    with pytest.raises(ValueError):
        with atomic_write(tmp_path / "x", "a"):
            pass


def test_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        target = tmp_path / "perm.txt"
        with atomic_write(target, "w") as fh:
            fh.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # not mkstemp's 0600


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt, OSError])
def test_failure_mid_write_leaves_no_file_and_no_temp(tmp_path, exc_type):
    target = tmp_path / "out.bin"
    expected = OutputError if exc_type is OSError else exc_type
    with pytest.raises(expected):
        with atomic_write(target) as fh:
            fh.write(b"half of the data")
            raise exc_type("boom")
    assert listing(tmp_path) == []


def test_failure_keeps_previous_version(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target, "w") as fh:
            fh.write("new but incomplete")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert listing(tmp_path) == ["out.txt"]


@pytest.mark.parametrize("code,reason", [
    (errno.ENOSPC, "no space left on device"),
    (errno.EACCES, "permission denied"),
    (errno.EROFS, "read-only file system"),
])
@pytest.mark.parametrize("where", ["open", "fsync", "replace"])
def test_oserror_becomes_one_line_output_error(tmp_path, monkeypatch, code, reason, where):
    def fail(*a, **k):
        raise OSError(code, os.strerror(code))

    target = tmp_path / "out.bin"
    if where == "open":
        monkeypatch.setattr(atomic_mod.os, "open", fail)
    elif where == "fsync":
        monkeypatch.setattr(atomic_mod.os, "fsync", fail)
    else:
        monkeypatch.setattr(atomic_mod.os, "replace", fail)
    with pytest.raises(OutputError) as ei:
        with atomic_write(target) as fh:
            fh.write(b"data")
    err = ei.value
    assert err.message == f"cannot write {target}: {reason}"
    assert "\n" not in err.one_line() and err.hint
    assert isinstance(err.__cause__, OSError)
    assert listing(tmp_path) == []


def test_target_is_a_folder(tmp_path):
    (tmp_path / "out.png").mkdir()
    with pytest.raises(OutputError, match="out.png"):
        with atomic_write(tmp_path / "out.png") as fh:
            fh.write(b"x")
    assert listing(tmp_path) == ["out.png"]


def test_clean_stale_temp_files(tmp_path):
    old = time.time() - 7200
    stale = tmp_path / ".a.png.0123456789abcdef.tmp"
    fresh = tmp_path / ".b.png.fedcba9876543210.tmp"
    foreign = tmp_path / ".notes.tmp"  # not one of ours
    normal = tmp_path / "a.png"
    sub = tmp_path / "sub"
    sub.mkdir()
    deep = sub / ".c.obj.00112233445566aa.tmp"
    for p in (stale, fresh, foreign, normal, deep):
        p.write_bytes(b"x")
    for p in (stale, foreign, normal, deep):
        os.utime(p, (old, old))
    assert clean_stale_temp_files(tmp_path) == [stale]
    assert fresh.exists() and foreign.exists() and normal.exists() and deep.exists()
    assert clean_stale_temp_files(tmp_path, recursive=True) == [deep]
    assert clean_stale_temp_files(tmp_path, older_than=0) == [fresh]
    assert listing(tmp_path) == [".notes.tmp", "a.png", "sub"]
    assert clean_stale_temp_files(tmp_path / "missing") == []


def test_atomic_save_npz_roundtrip_uncompressed_no_pickle(tmp_path):
    p = tmp_path / "r.npz"
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    atomic_save_npz(p, a=a, file=np.int32(3), path=np.array("text"))
    with zipfile.ZipFile(p) as zf:
        assert sorted(zf.namelist()) == ["a.npy", "file.npy", "path.npy"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
    with np.load(p, allow_pickle=False) as z:
        assert np.array_equal(z["a"], a) and z["a"].dtype == np.float32
        assert z["file"].dtype == np.int32 and int(z["file"]) == 3
        assert str(z["path"]) == "text" and z["path"].dtype.kind == "U"
    assert listing(tmp_path) == ["r.npz"]


def test_atomic_save_npz_refuses_object_arrays(tmp_path):
    with pytest.raises(ValueError, match="object"):
        atomic_save_npz(tmp_path / "o.npz", bad=np.array([{"a": 1}], dtype=object))
    assert listing(tmp_path) == []


def test_atomic_save_npz_interrupted(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(np.lib.format, "write_array", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_save_npz(tmp_path / "i.npz", a=np.zeros(3))
    assert listing(tmp_path) == []
