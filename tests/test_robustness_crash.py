"""A file that crashes the process (a segfault in a native decoder) must not stop a batch for good.

The crash is injected with a ``sitecustomize`` module on the subprocess' PYTHONPATH: it wraps
``faceanon.io.images.load_image`` so that loading the file named by ``FACEANON_TEST_CRASH_ON``
kills the process with SIGSEGV, as a decoder bug would (the product has no test hook).

* single process: the first run dies with the crash (nothing can catch a segfault); the rerun
  processes that image in a separate process, reports it failed and completes the rest; a third
  run does the same without crashing;
* ``--jobs 2``: the crash breaks the worker pool; the same run processes the crasher alone, the
  images that were queued in the broken pool on a new pool, and completes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.support.badinputs import face_photo, jpeg_bytes
from tests.support.lite_home import cli_env, faceanon_command, lite_home  # noqa: F401 (fixture)

pytestmark = [pytest.mark.assets, pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="SIGSEGV")]

FAST = ["--tex-size", "256", "--img-size", "128"]
PHOTOS = {"a.jpg": "alison1.jpg", "boom.jpg": "barry12.jpg", "c.jpg": "caroline1.jpg", "d.jpg": "kim3.jpg"}

HOOK = textwrap.dedent('''
    import os
    _target = os.environ.get("FACEANON_TEST_CRASH_ON")
    if _target:
        import faceanon.io.images as _images
        _load = _images.load_image

        def load_image(path, *args, **kwargs):
            if os.path.basename(str(path)) == _target:
                os.kill(os.getpid(), __import__("signal").SIGSEGV)
            return _load(path, *args, **kwargs)

        _images.load_image = load_image
''')


@pytest.fixture()
def crash_setup(lite_home, photos_dir, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    for name, photo in PHOTOS.items():
        (inp / name).write_bytes(jpeg_bytes(face_photo(photos_dir, photo, 0.5)))
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    env = cli_env(lite_home, FACEANON_TEST_CRASH_ON="boom.jpg")
    env["PYTHONPATH"] = os.pathsep.join([str(hook), env["PYTHONPATH"]])
    return inp, env


def _run(cmd, env, cwd):
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def _status(out: Path) -> dict[str, str]:
    report = json.loads((out / "report.json").read_text())
    return {e["stem"]: e["status"] for e in report["images"]}


def test_a_crashing_file_is_isolated_on_the_rerun(crash_setup, tmp_path):
    inp, env = crash_setup
    out = tmp_path / "out"
    cmd = [*faceanon_command(), "run", str(inp), str(out), *FAST]

    first = _run(cmd, env, tmp_path)
    assert first.returncode == -signal.SIGSEGV, first.stderr  # the injected crash really kills it
    assert (out / ".done" / "boom.inprogress").is_file()

    second = _run(cmd, env, tmp_path)
    assert second.returncode == 1, second.stderr
    assert "were being processed when an earlier run died" in second.stderr
    lines = [ln for ln in second.stderr.splitlines() if ln.startswith("failed ")]
    assert len(lines) == 1 and "boom.jpg" in lines[0] and "crashed" in lines[0], second.stderr
    assert _status(out) in ({"a": "skipped", "boom": "failed", "c": "ok", "d": "ok"},
                            {"a": "ok", "boom": "failed", "c": "ok", "d": "ok"})  # a may have died in flight
    assert (out / "anonymized" / "d.jpg").is_file()
    assert sorted(p.name for p in (out / ".done").glob("*.inprogress")) == ["boom.inprogress"]

    third = _run(cmd, env, tmp_path)  # the crasher stays isolated: no crash of the run
    assert third.returncode == 1, third.stderr
    assert _status(out) == {"a": "skipped", "boom": "failed", "c": "skipped", "d": "skipped"}

    # the file is fixed (replaced by a good photo): processed normally, marker cleared
    healthy = dict(env, FACEANON_TEST_CRASH_ON="")
    fourth = _run(cmd, healthy, tmp_path)
    assert fourth.returncode == 0, fourth.stderr
    assert _status(out)["boom"] == "ok" and not list((out / ".done").glob("*.inprogress"))


def test_jobs_run_survives_a_crashing_worker(crash_setup, tmp_path):
    inp, env = crash_setup
    out = tmp_path / "out"
    r = _run([*faceanon_command(), "run", str(inp), str(out), *FAST, "--jobs", "2"], env, tmp_path)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    status = _status(out)
    assert status == {"a": "ok", "boom": "failed", "c": "ok", "d": "ok"}, r.stderr
    report = json.loads((out / "report.json").read_text())
    boom = next(e for e in report["images"] if e["stem"] == "boom")
    assert "crashed" in boom["error"]
    for stem in ("a", "c", "d"):
        assert (out / "anonymized" / f"{stem}.jpg").is_file()
