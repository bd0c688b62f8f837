"""Interruption: ``kill -9`` of a ``faceanon run`` mid-batch, then the same command again.

The rerun must complete, every file in OUT must be whole (images decode, npz load, OBJ parse, no
temporary file left), and the images finished before the kill must be skipped, not redone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.badinputs import check_tree_intact, face_photo, jpeg_bytes, snapshot
from tests.support.lite_home import cli_env, faceanon_command, lite_home  # noqa: F401 (fixture)

pytestmark = [pytest.mark.assets, pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="SIGKILL")]

# every output folder: the tests check the whole seed layout (face3d/, seg/ included)
FAST = ["--tex-size", "256", "--img-size", "128", "--outputs", "all"]
PHOTOS = {"p1.jpg": "alison1.jpg", "p2.jpg": "barry12.jpg", "p3.jpg": "caroline1.jpg", "p4.jpg": "dbell1.jpg",
          "p5.jpg": "kim3.jpg"}


def _wait_for(predicate, timeout: float, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"faceanon run exited ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


def _marker_times(out: Path) -> dict[str, int]:
    done = out / ".done"
    return {p.name: p.stat().st_mtime_ns for p in done.glob("*.json")} if done.is_dir() else {}


def test_kill_9_mid_batch_then_rerun(lite_home, photos_dir, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    for name, photo in PHOTOS.items():
        (inp / name).write_bytes(jpeg_bytes(face_photo(photos_dir, photo, 0.5)))
    inputs_before = snapshot(inp)
    out = tmp_path / "out"
    cmd = [*faceanon_command(), "run", str(inp), str(out), *FAST]
    env = cli_env(lite_home)

    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: (out / ".done" / "p2.json").is_file(), 300, proc, "the 2nd image's marker")
        # the 3rd image has started writing: kill it in the middle of its outputs
        third = out / "face3d" / "p3"
        _wait_for(lambda: third.is_dir() and any(third.iterdir()), 60, proc, "the 3rd image's first output")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
        log.close()
    assert proc.returncode == -signal.SIGKILL

    finished = sorted(Path(n).stem for n in _marker_times(out))
    assert finished[:2] == ["p1", "p2"] and len(finished) < len(PHOTOS), finished
    # what a rerun would trust is whole already: the finished images' outputs and report.json
    before = {}
    for stem in finished:
        marker = json.loads((out / ".done" / f"{stem}.json").read_text())
        for rel in [*marker["report"]["outputs"], f".done/{stem}.json"]:
            st = (out / rel).stat()
            before[rel] = st.st_mtime_ns
    if (out / "report.json").exists():
        json.loads((out / "report.json").read_text())
    if "p3" not in finished:
        assert not (out / ".done" / "p3.json").exists()

    second = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stderr
    assert f"skipping {len(finished)} image(s) already complete" in second.stderr

    counts = check_tree_intact(out)  # every PNG/JPG decodes, npz loads, OBJ parses, no .tmp left
    assert counts["npz"] == len(PHOTOS) and counts["obj"] == 2 * len(PHOTOS)
    report = json.loads((out / "report.json").read_text())
    status = {e["stem"]: e["status"] for e in report["images"]}
    assert status == {Path(n).stem: ("skipped" if Path(n).stem in finished else "ok") for n in PHOTOS}
    assert report["summary"]["skipped"] == len(finished) and report["summary"]["failed"] == 0
    for e in report["images"]:
        assert all((out / o).is_file() for o in e["outputs"]), e["stem"]
    # not redone: the finished images' files were not rewritten
    after = {rel: (out / rel).stat().st_mtime_ns for rel in before}
    assert after == before
    assert snapshot(inp) == inputs_before


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_kill_9_of_a_jobs_run_takes_its_workers_down(lite_home, photos_dir, tmp_path):
    """The --jobs workers die with their parent: none goes on writing into OUT after `kill -9`
    (which also released OUT's lock for the next run)."""
    inp = tmp_path / "in"
    inp.mkdir()
    for name, photo in PHOTOS.items():
        (inp / name).write_bytes(jpeg_bytes(face_photo(photos_dir, photo, 0.5)))
    out = tmp_path / "out"
    cmd = [*faceanon_command(), "run", str(inp), str(out), *FAST, "--jobs", "2"]
    proc = subprocess.Popen(cmd, env=cli_env(lite_home), cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        # both workers have loaded the models and are working: the first image is done
        _wait_for(lambda: (out / ".done").is_dir() and any((out / ".done").glob("*.json")), 300, proc,
                  "the first image's marker")
        workers = [c for c in _children(proc.pid) if "python" in Path(f"/proc/{c}/cmdline").read_bytes().decode(
            errors="replace")]
        assert len(workers) >= 2, workers
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 20
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(w) for w in workers), "a --jobs worker outlived its killed parent"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
    markers = set(_marker_times(out))
    time.sleep(1.0)
    assert set(_marker_times(out)) == markers  # nothing landed after the kill
