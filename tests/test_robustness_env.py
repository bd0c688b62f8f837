"""Environment faults around ``faceanon run``: where OUT is, whether it can be written, damaged model
files, a disk that fills up mid-batch, and outputs of other images that a failure must not touch.

In-process through typer's CliRunner (models stay loaded between tests) except where a real process
boundary matters (a read-only mount).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.support.badinputs import check_tree_intact, face_photo, jpeg_bytes, png_bytes, snapshot
from tests.support.lite_home import cli_env, copy_home, faceanon_command, lite_home  # noqa: F401 (fixture)

# every output folder: the tests check the whole seed layout (face3d/, seg/ included)
FAST = ["--tex-size", "256", "--img-size", "128", "--outputs", "all"]
SCALE = 0.5


def cli(*args):
    from faceanon.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


@pytest.fixture
def home_env(lite_home, monkeypatch):
    monkeypatch.setenv("FACEANON_HOME", str(lite_home))
    monkeypatch.setenv("FACEANON_OFFLINE", "1")
    monkeypatch.delenv("FACEANON_ASSETS_MIRROR", raising=False)
    return lite_home


def write_faces(folder: Path, photos_dir: Path, names: dict[str, str]) -> Path:
    """``names``: output file name -> fixture photo it is made from (downscaled)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, photo in names.items():
        rgb = face_photo(photos_dir, photo, SCALE)
        (folder / name).write_bytes(png_bytes(rgb) if name.endswith(".png") else jpeg_bytes(rgb))
    return folder


def report_of(out: Path) -> dict:
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def entries_by_stem(out: Path) -> dict[str, dict]:
    return {e["stem"]: e for e in report_of(out)["images"]}


def outputs_of(out: Path, stem: str) -> list[Path]:
    """Every file under OUT that belongs to ``stem`` (its folders, its prefixed files, its marker)."""
    base = Path(stem).name
    found = []
    for p in out.rglob("*"):
        if not p.is_file():
            continue
        rel = p.relative_to(out).as_posix()
        if (rel.startswith(f"face3d/{stem}/") and "/" not in rel[len(f"face3d/{stem}/"):]) \
                or rel.startswith(f"anon/{stem}/") or rel in (f"seg/{stem}_masked.png", f"render/{stem}_front.png",
                                                              f".done/{stem}.json") \
                or (rel.startswith("anonymized/") and Path(rel).stem == base):
            found.append(p)
    return found


# -------------------------------------------------------------------------------- OUT placement

@pytest.mark.parametrize("where", ["inside", "same", "symlink_inside"])
def test_out_inside_in_is_refused(tmp_path, photos_dir, where):
    inp = write_faces(tmp_path / "in", photos_dir, {"a.jpg": "alison1.jpg"})
    if where == "inside":
        out = inp / "out"
    elif where == "same":
        out = inp
    else:
        (inp / "sub").mkdir()
        out = tmp_path / "link"
        out.symlink_to(inp / "sub", target_is_directory=True)
    before = snapshot(inp)
    r = cli("run", inp, out, *FAST)
    assert r.exit_code == 2, r.output
    lines = error_lines(r.stderr)
    assert len(lines) == 1 and "inside IN" in lines[0] and str(inp) in lines[0], r.stderr
    assert "Traceback" not in r.output
    assert snapshot(inp) == before  # nothing created or changed in IN


# -------------------------------------------------------------------------------- OUT not writable

def _assert_cannot_write(r, out: Path) -> None:
    assert r.exit_code == 1, r.output
    lines = error_lines(r.stderr)
    assert len(lines) == 1, r.stderr
    assert str(out) in lines[0] and "cannot write" in lines[0]
    assert "Traceback" not in r.output


def test_out_below_a_regular_file(tmp_path, photos_dir):  # refused before any model is needed
    inp = write_faces(tmp_path / "in", photos_dir, {"a.jpg": "alison1.jpg"})
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    out = blocker / "sub"
    _assert_cannot_write(cli("run", inp, out, *FAST), out)
    assert blocker.read_text() == "not a folder"


def test_out_is_a_regular_file(tmp_path, photos_dir):  # refused before any model is needed
    inp = write_faces(tmp_path / "in", photos_dir, {"a.jpg": "alison1.jpg"})
    out = tmp_path / "out.txt"
    out.write_text("keep me")
    _assert_cannot_write(cli("run", inp, out, *FAST), out)
    assert out.read_text() == "keep me"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_out_in_a_read_only_folder(tmp_path, photos_dir):  # refused before any model is needed
    inp = write_faces(tmp_path / "in", photos_dir, {"a.jpg": "alison1.jpg"})
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        out = ro / "out"
        _assert_cannot_write(cli("run", inp, out, *FAST), out)
    finally:
        ro.chmod(0o755)


def _can_mount_read_only_tmpfs(tmp: Path) -> bool:
    if not shutil.which("unshare"):
        return False
    tmp.mkdir(exist_ok=True)
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o ro,size=64k tmpfs "$0" && ! touch "$0/x"',
                            str(tmp)], capture_output=True, timeout=30)
    return probe.returncode == 0


def test_out_on_a_read_only_file_system(tmp_path, photos_dir):
    """A real read-only mount (works as root too), in a private mount namespace of the subprocess.
    Refused before any model is needed: the home may stay empty."""
    mnt = tmp_path / "mnt"
    if not _can_mount_read_only_tmpfs(mnt):
        pytest.skip("cannot mount a read-only tmpfs here (unshare -rm not permitted)")
    inp = write_faces(tmp_path / "in", photos_dir, {"a.jpg": "alison1.jpg"})
    out = mnt / "out"
    script = 'mount -t tmpfs -o ro,size=64k tmpfs "$0" && exec "$@"'
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script, str(mnt), *faceanon_command(), "run", str(inp),
                           str(out), *FAST], env=cli_env(tmp_path / "home"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and str(out) in lines[0] and "read-only file system" in lines[0].lower(), proc.stderr
    assert "Traceback" not in proc.stderr


# -------------------------------------------------------------------------------- damaged assets

def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def loaded_assets(monkeypatch) -> list[str]:
    """Records every model file handed to a model loader (the spies wrap the real loaders)."""
    import faceanon.models.bfm as bfm
    import faceanon.models.centerface as centerface
    import faceanon.models.mb05 as mb05
    from faceanon.models.loader import clear_cache

    seen: list[str] = []
    real_cf_init, real_mb05, real_bfm = centerface.CenterFace.__init__, mb05.load_mb05, bfm.load_bfm

    def cf_init(self, path, *a, **k):
        seen.append(str(path))
        return real_cf_init(self, path, *a, **k)

    def load_mb05(path, *a, **k):
        seen.append(str(path))
        return real_mb05(path, *a, **k)

    def load_bfm(sources, *a, **k):
        seen.extend(str(p) for _, p in sources.items())
        return real_bfm(sources, *a, **k)

    monkeypatch.setattr(centerface.CenterFace, "__init__", cf_init)
    monkeypatch.setattr(mb05, "load_mb05", load_mb05)
    monkeypatch.setattr(bfm, "load_bfm", load_bfm)
    clear_cache()
    yield seen
    clear_cache()


DAMAGE = {
    "missing_checkpoint": ("3ddfa_v2/mb05_120x120.pth", "missing"),
    "corrupt_detector": ("detectors/centerface.onnx", "corrupt"),
    "corrupt_bfm_source": ("bfm/u_shp.npy", "corrupt"),  # the derived BFM cache is still there
}


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_model_file_is_refused_and_never_loaded(tmp_path, photos_dir, lite_home, monkeypatch,
                                                           loaded_assets, damage, jobs):
    name, how = DAMAGE[damage]
    home = copy_home(lite_home, tmp_path / "home")
    target = home / name
    if how == "missing":
        target.unlink()
    else:
        _flip_byte(target, target.stat().st_size // 2)
        if target.suffix == ".npy":
            assert np.load(target).size > 0  # still a loadable file: only the hash tells
    monkeypatch.setenv("FACEANON_HOME", str(home))
    monkeypatch.setenv("FACEANON_OFFLINE", "1")
    monkeypatch.delenv("FACEANON_ASSETS_MIRROR", raising=False)
    inp = write_faces(tmp_path / "in", photos_dir, {"a.jpg": "alison1.jpg", "b.jpg": "barry12.jpg"})
    out = tmp_path / "out"
    r = cli("run", inp, out, *FAST, "--jobs", jobs)
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    lines = error_lines(r.stderr)
    assert len(lines) == 1, r.stderr
    assert name in lines[0] and "faceanon assets download" in lines[0]
    assert ("missing" if how == "missing" else "sha256") in lines[0]
    assert [line for line in r.stderr.splitlines() if line.startswith("failed ")] == []  # not one line per image
    assert str(target) not in loaded_assets
    written = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert [p for p in written if p.name not in ("report.json", ".faceanon.lock")] == [], written  # nothing processed


# -------------------------------------------------------------------------------- disk full

def install_full_disk(monkeypatch, should_fail) -> list[str]:
    """Make every atomic write whose target satisfies ``should_fail(path, n)`` raise ENOSPC before its rename.

    ``n`` counts the atomic writes so far. The real writer runs underneath (temp file, cleanup), so
    the failure surfaces exactly as a full disk would: as the OutputError of ``atomic_write``.
    Returns the list of targets that failed.
    """
    import importlib
    import pkgutil
    import sys

    import faceanon.io
    import faceanon.io.atomic as atomic
    import faceanon.stages

    # import every writer first: a module imported while the patch is active would keep the fake
    for pkg in (faceanon.io, faceanon.stages):
        for info in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."):
            importlib.import_module(info.name)
    real = atomic.atomic_write
    failed: list[str] = []
    count = [0]

    @contextmanager
    def flaky(path, mode="wb", **kw):
        with real(path, mode, **kw) as fh:
            yield fh
            count[0] += 1
            if should_fail(Path(path), count[0]):
                failed.append(str(path))
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    for mod in list(sys.modules.values()):
        if getattr(mod, "__name__", "").startswith("faceanon") and getattr(mod, "atomic_write", None) is real:
            monkeypatch.setattr(mod, "atomic_write", flaky)
    return failed


FACES3 = {"a1.jpg": "alison1.jpg", "b2.jpg": "barry12.jpg", "c3.png": "caroline1.jpg"}


def test_disk_full_while_writing_one_image(tmp_path, photos_dir, home_env, monkeypatch):
    """ENOSPC once, in the middle of b2's outputs: b2 fails alone and leaves nothing; a1 and c3 are complete."""
    inp = write_faces(tmp_path / "in", photos_dir, FACES3)
    out = tmp_path / "out"
    failed = install_full_disk(monkeypatch, lambda p, n: p.name == "b2.obj" and p.parent.name == "b2")
    r = cli("run", inp, out, *FAST)
    assert failed, "the fault was never triggered"
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    fails = [line for line in r.stderr.splitlines() if line.startswith("failed ")]
    assert len(fails) == 1 and fails[0].startswith(f"failed {inp / 'b2.jpg'}: ") and "no space left" in fails[0], r.stderr
    entries = entries_by_stem(out)
    assert entries["b2"]["status"] == "failed" and "no space left on device" in entries["b2"]["error"]
    assert outputs_of(out, "b2") == []
    assert not (out / "face3d" / "b2").exists() and not (out / "anon" / "b2").exists()
    for stem in ("a1", "c3"):
        assert entries[stem]["status"] == "ok"
        assert all((out / o).is_file() for o in entries[stem]["outputs"])
    check_tree_intact(out)


def test_disk_full_for_good(tmp_path, photos_dir, home_env, monkeypatch):
    """From b2's texture on, every write fails: exit 1 with one line per problem, no partial image."""
    inp = write_faces(tmp_path / "in", photos_dir, FACES3)
    out = tmp_path / "out"
    state = {"full": False}

    def should_fail(p: Path, n: int) -> bool:
        if p.name == "b2_extractTex.png":
            state["full"] = True
        return state["full"]

    failed = install_full_disk(monkeypatch, should_fail)
    r = cli("run", inp, out, *FAST)
    assert failed
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    problem_lines = [line for line in r.stderr.splitlines() if line.startswith(("failed ", "error:"))]
    assert problem_lines and all("no space left on device" in line for line in problem_lines), r.stderr
    assert any(str(inp / "b2.jpg") in line for line in problem_lines)
    # a1 complete before the disk filled up; nothing at all of b2 and c3
    marker = json.loads((out / ".done" / "a1.json").read_text())
    assert all((out / o).is_file() for o in marker["report"]["outputs"])
    assert outputs_of(out, "b2") == [] and outputs_of(out, "c3") == []
    check_tree_intact(out)  # report.json included: the last complete version, never a torn one


# -------------------------------------------------------------------------------- other images' outputs

def test_a_failure_never_removes_another_images_outputs(tmp_path, photos_dir, home_env):
    """`grey.jpg` failing must not take `grey_face.jpg`'s anon/grey_face/ with it (same prefix)."""
    inp = write_faces(tmp_path / "in", photos_dir, {"grey_face.jpg": "jenni7.jpg"})
    out = tmp_path / "out"
    r = cli("run", inp, out, *FAST)
    assert r.exit_code == 0, r.output
    (inp / "grey.jpg").write_bytes(jpeg_bytes(np.full((200, 200, 3), 128, np.uint8)))  # no face
    r = cli("run", inp, out, *FAST)
    assert r.exit_code == 1, r.output
    entries = entries_by_stem(out)
    assert entries["grey"]["status"] == "failed" and "no face" in entries["grey"]["error"]
    assert entries["grey_face"]["status"] == "skipped"
    missing = [o for o in entries["grey_face"]["outputs"] if not (out / o).is_file()]
    assert missing == []


def test_a_failure_never_removes_a_nested_images_outputs(tmp_path, photos_dir, home_env):
    """--recursive: `a.jpg` (no face) failing must not remove `a/b.jpg`'s face3d/a/b/."""
    inp = tmp_path / "in"
    write_faces(inp / "a", photos_dir, {"b.jpg": "kim3.jpg"})
    (inp / "a.jpg").write_bytes(jpeg_bytes(np.full((200, 200, 3), 128, np.uint8)))
    out = tmp_path / "out"
    r = cli("run", inp, out, *FAST, "--recursive")
    assert r.exit_code == 1, r.output
    entries = entries_by_stem(out)
    assert entries["a"]["status"] == "failed" and entries["a/b"]["status"] == "ok"
    missing = [o for o in entries["a/b"]["outputs"] if not (out / o).is_file()]
    assert missing == []
    check_tree_intact(out)


# -------------------------------------------------------------------------------- unexpected errors

def _fail_second(monkeypatch, module, name: str, exc: BaseException) -> None:
    real = getattr(module, name)
    calls = [0]

    def flaky(*a, **k):
        calls[0] += 1
        if calls[0] == 2:  # b2: face3d, seg and anon already written or queued
            raise exc
        return real(*a, **k)

    monkeypatch.setattr(module, name, flaky)


def _fail_second_render(monkeypatch, exc: BaseException) -> None:
    """The render runs on the background writer thread in `run`: a failure there fails the image."""
    import faceanon.stages.render as render

    _fail_second(monkeypatch, render, "render_front", exc)


def _interrupt_second_composite(monkeypatch) -> None:
    """Ctrl-C arrives in the main thread (SIGINT): simulated in a main-thread stage of image b2."""
    import faceanon.stages.composite as composite

    _fail_second(monkeypatch, composite, "composite_image", KeyboardInterrupt())


@pytest.mark.parametrize("debug", [False, True])
def test_a_bug_on_one_image_costs_only_that_image(tmp_path, photos_dir, home_env, monkeypatch, debug):
    inp = write_faces(tmp_path / "in", photos_dir, FACES3)
    out = tmp_path / "out"
    _fail_second_render(monkeypatch, RuntimeError("boom\non two lines"))
    r = cli(*(["--debug"] if debug else []), "run", inp, out, *FAST)
    assert r.exit_code == 1, r.output
    fails = [line for line in r.stderr.splitlines() if line.startswith("failed ")]
    assert len(fails) == 1, r.stderr
    assert fails[0].startswith(f"failed {inp / 'b2.jpg'}: internal error: RuntimeError: boom on two lines")
    assert ("Traceback" in r.stderr) is debug
    entries = entries_by_stem(out)
    assert entries["b2"]["status"] == "failed" and "boom on two lines" in entries["b2"]["error"]
    assert entries["a1"]["status"] == entries["c3"]["status"] == "ok"
    assert outputs_of(out, "b2") == [] and not (out / "face3d" / "b2").exists()
    check_tree_intact(out)


def test_ctrl_c_removes_the_interrupted_image_and_a_rerun_resumes(tmp_path, photos_dir, home_env, monkeypatch):
    inp = write_faces(tmp_path / "in", photos_dir, FACES3)
    out = tmp_path / "out"
    _interrupt_second_composite(monkeypatch)
    r = cli("run", inp, out, *FAST)
    assert r.exit_code == 130, r.output
    assert error_lines(r.stderr) == ["error: interrupted"] and "Traceback" not in r.stderr
    assert outputs_of(out, "b2") == [] and outputs_of(out, "c3") == []
    done = json.loads((out / ".done" / "a1.json").read_text())
    assert all((out / o).is_file() for o in done["report"]["outputs"])
    assert [e["stem"] for e in report_of(out)["images"]] == ["a1"]  # the report of what was finished
    check_tree_intact(out)
    monkeypatch.undo()  # back to the real renderer (and the environment: set it again)
    monkeypatch.setenv("FACEANON_HOME", str(home_env))
    monkeypatch.setenv("FACEANON_OFFLINE", "1")
    monkeypatch.delenv("FACEANON_ASSETS_MIRROR", raising=False)
    r = cli("run", inp, out, *FAST)
    assert r.exit_code == 0, r.output
    assert {e["stem"]: e["status"] for e in report_of(out)["images"]} == {"a1": "skipped", "b2": "ok", "c3": "ok"}


def test_an_image_that_now_fails_leaves_none_of_its_old_outputs(tmp_path, photos_dir, home_env):
    """The photo was replaced by a broken file: its old outputs go, they no longer describe the input."""
    inp = write_faces(tmp_path / "in", photos_dir, {"a1.jpg": "alison1.jpg", "b2.jpg": "barry12.jpg"})
    out = tmp_path / "out"
    assert cli("run", inp, out, *FAST).exit_code == 0
    assert len(outputs_of(out, "a1")) == 11  # 4 face3d, seg, 3 anon, render, composite, marker
    (inp / "a1.jpg").write_bytes((inp / "a1.jpg").read_bytes()[:3000])  # truncated by a bad copy
    r = cli("run", inp, out, *FAST)
    assert r.exit_code == 1, r.output
    entries = entries_by_stem(out)
    assert entries["a1"]["status"] == "failed" and "truncated" in entries["a1"]["error"]
    assert entries["b2"]["status"] == "skipped"
    assert outputs_of(out, "a1") == []
    assert all((out / o).is_file() for o in entries["b2"]["outputs"])
