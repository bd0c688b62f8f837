"""`faceanon run --scheduler` on a real Dask cluster on 127.0.0.1: a scheduler and two worker
processes started here (`dask scheduler`, `dask worker`), the CLI as a user runs it (a subprocess).

* the fixture photos give byte-identical files to a local run (at the workers' thread count:
  torch's results depend on its thread count by a few grey levels on <0.1 % of the pixels, and a
  `dask worker` under its nanny runs torch on one thread, as `--jobs` workers do);
* a second run skips everything (and needs no worker);
* `kill -9` of a worker while it holds an image: the run completes every image exactly once;
* a worker without the model files stops the run with one line naming that worker;
* no cluster extra, an unreachable scheduler, --jobs with --scheduler: one line each.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.badinputs import check_tree_intact, face_photo, jpeg_bytes, snapshot
from tests.support.dask_cluster import LocalDaskCluster
from tests.support.lite_home import cli_env, faceanon_command, lite_home  # noqa: F401 (fixture)

pytestmark = [pytest.mark.assets, pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="SIGKILL")]

FAST = ["--tex-size", "512", "--img-size", "256"]


def _run(args, env, cwd, timeout=900):
    return subprocess.run([*faceanon_command(), *[str(a) for a in args]], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cluster(lite_home, tmp_path_factory):
    pytest.importorskip("distributed", reason="the cluster extra is not installed: pip install 'faceanon[cluster]'")
    with LocalDaskCluster(tmp_path_factory.mktemp("dask"), workers=2, env=cli_env(lite_home)) as c:
        yield c


@pytest.fixture(scope="module")
def both_runs(cluster, lite_home, photos_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    local = _run(["run", photos_dir, root / "local", *FAST], cli_env(lite_home, OMP_NUM_THREADS="1"), root)
    remote = _run(["run", photos_dir, root / "cluster", *FAST, "--scheduler", cluster.address], cli_env(lite_home), root)
    return root, local, remote


def test_cluster_run_writes_the_files_of_a_local_run(both_runs, cluster, photos_dir):
    root, local, remote = both_runs
    assert local.returncode == 0, local.stderr
    assert remote.returncode == 0, remote.stderr + cluster.logs()
    assert "Traceback" not in remote.stderr
    loc, rem = _report(root / "local"), _report(root / "cluster")
    assert [(e["stem"], e["status"], e["faces"], e["outputs"]) for e in rem["images"]] == \
           [(e["stem"], e["status"], e["faces"], e["outputs"]) for e in loc["images"]]
    assert rem["summary"]["ok"] == len(rem["images"]) == 16
    for folder in ("anonymized", "anon", "render"):
        a, b = _files(root / "local" / folder), _files(root / "cluster" / folder)
        assert sorted(a) == sorted(b) and len(a) >= 16, folder
        differ = [k for k in a if a[k] != b[k]]
        assert differ == [], (folder, differ)
    for stem in (e["stem"] for e in rem["images"]):  # the markers a resume trusts are the client's
        marker = json.loads((root / "cluster" / ".done" / f"{stem}.json").read_text())
        assert marker["report"]["input"] == str((photos_dir / Path(marker["report"]["input"]).name).resolve())
    assert not (root / "cluster" / "face3d").exists() and not (root / "cluster" / "seg").exists()


def test_a_second_cluster_run_skips_everything(both_runs, cluster, lite_home, photos_dir):
    root, _, remote = both_runs
    assert remote.returncode == 0
    out = root / "cluster"
    ignore = ("report.json", ".faceanon.lock")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name not in ignore}
    again = _run(["run", photos_dir, out, *FAST, "--scheduler", cluster.address], cli_env(lite_home), root)
    assert again.returncode == 0, again.stderr
    assert "skipping 16 image(s) already complete" in again.stderr
    assert {e["status"] for e in _report(out)["images"]} == {"skipped"}
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name not in ignore} == before


def _busy_worker(cluster, timeout: float) -> str:
    """The address of a worker that is processing an image (polled through the scheduler)."""
    deadline = time.monotonic() + timeout
    with cluster.client() as c:
        while time.monotonic() < deadline:
            busy = [w for w, keys in c.processing().items() if any("process_remote" in str(k) for k in keys)]
            if busy:
                return busy[0]
            time.sleep(0.02)
    pytest.fail("no worker ever held an image")


def test_kill_9_of_a_worker_mid_run_costs_only_a_retry(cluster, lite_home, photos_dir, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    names = ["alison1.jpg", "barry12.jpg", "caroline1.jpg", "dbell1.jpg", "kim3.jpg", "jenni7.jpg", "hin16.jpg",
             "kay16.jpg"]
    for i, name in enumerate(names):
        (inp / f"p{i}.jpg").write_bytes(jpeg_bytes(face_photo(photos_dir, name, 0.5)))
    inputs_before = snapshot(inp)
    out = tmp_path / "out"
    env = cli_env(lite_home)
    proc = subprocess.Popen([*faceanon_command(), "run", str(inp), str(out), *FAST, "--scheduler", cluster.address],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        victim = _busy_worker(cluster, 300)
        pid = cluster.worker_pids()[victim]
        os.kill(pid, signal.SIGKILL)  # the worker process itself (its nanny starts a new one)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr + cluster.logs()
    assert "Traceback" not in stderr and "failed" not in stderr.replace("0 failed", "")
    report = _report(out)
    assert sorted(e["stem"] for e in report["images"]) == [f"p{i}" for i in range(len(names))]  # each once
    assert {e["status"] for e in report["images"]} == {"ok"}
    assert report["summary"] == {**report["summary"], "images": 8, "ok": 8, "failed": 0}
    assert sorted(p.name for p in (out / "anonymized").iterdir()) == [f"p{i}.jpg" for i in range(len(names))]
    check_tree_intact(out)  # every file decodes, no temporary file left
    assert not list((out / ".done").glob("*.inprogress"))
    assert snapshot(inp) == inputs_before
    cluster.wait_for_workers(2)  # the nanny's new worker: the next test has two again
    again = _run(["run", inp, out, *FAST, "--scheduler", cluster.address], env, tmp_path)
    assert again.returncode == 0 and {e["status"] for e in _report(out)["images"]} == {"skipped"}


def _home_with_licence(lite_home: Path, folder: Path) -> Path:
    """An empty FACEANON_HOME where the BFM licence was accepted (as `faceanon assets download
    --accept-license` on that machine would record it), but no model file is present."""
    folder.mkdir()
    (folder / "license_accepted.json").write_bytes((lite_home / "license_accepted.json").read_bytes())
    return folder


def _one_image(photos_dir: Path, folder: Path) -> Path:
    folder.mkdir()
    (folder / "a.jpg").write_bytes(jpeg_bytes(face_photo(photos_dir, "kim3.jpg", 0.5)))
    return folder


def test_a_worker_without_model_files_stops_the_run_with_one_line_naming_it(lite_home, photos_dir, tmp_path):
    pytest.importorskip("distributed", reason="the cluster extra is not installed: pip install 'faceanon[cluster]'")
    home = _home_with_licence(lite_home, tmp_path / "worker_home")
    inp = _one_image(photos_dir, tmp_path / "in")
    with LocalDaskCluster(tmp_path / "dask", workers=1, env=cli_env(home)) as c:  # offline, no mirror
        worker = next(iter(c.worker_pids()))
        r = _run(["run", inp, tmp_path / "out", *FAST, "--scheduler", c.address], cli_env(lite_home), tmp_path)
    assert r.returncode == 1, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: worker {worker} (") and "offline mode" in lines[0], lines[0]
    assert "detectors/centerface.onnx" in lines[0] and str(home) in lines[0]
    assert "Traceback" not in r.stderr and not [ln for ln in r.stderr.splitlines() if ln.startswith("failed ")]
    assert not (tmp_path / "out" / "anonymized").exists()


def test_a_worker_gets_its_model_files_from_the_mirror(lite_home, mirror_dir, photos_dir, tmp_path):
    """No shared file system: a worker with an empty data dir fetches the files from its mirror,
    by the store's rules (a local mirror folder works offline), verified, once."""
    pytest.importorskip("distributed", reason="the cluster extra is not installed: pip install 'faceanon[cluster]'")
    home = _home_with_licence(lite_home, tmp_path / "worker_home")
    inp = _one_image(photos_dir, tmp_path / "in")
    env = cli_env(home, FACEANON_ASSETS_MIRROR=str(mirror_dir))
    with LocalDaskCluster(tmp_path / "dask", workers=1, env=env) as c:
        r = _run(["run", inp, tmp_path / "out", *FAST, "--scheduler", c.address], cli_env(lite_home), tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "anonymized" / "a.jpg").is_file()
    from faceanon.assets import get_store

    store = get_store(mirror=str(mirror_dir), offline=True, data_dir=home)
    assert {status for _, status in store.verify("lite")} == {"verified"}


def test_an_unreachable_scheduler_is_one_line(lite_home, photos_dir, tmp_path):
    pytest.importorskip("distributed", reason="the cluster extra is not installed: pip install 'faceanon[cluster]'")
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.jpg").write_bytes(jpeg_bytes(face_photo(photos_dir, "kim3.jpg", 0.5)))
    r = _run(["run", inp, tmp_path / "out", "--scheduler", f"tcp://127.0.0.1:{port}"],
             cli_env(lite_home, FACEANON_SCHEDULER_TIMEOUT="2"), tmp_path, timeout=120)
    assert r.returncode == 1, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and f"cannot connect to the Dask scheduler at tcp://127.0.0.1:{port}" in lines[0], r.stderr
    assert "dask scheduler" in lines[0]


def test_without_the_cluster_extra_scheduler_is_one_line_naming_it(tmp_path, photos_dir, monkeypatch):
    from typer.testing import CliRunner

    from faceanon.cli import app

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.jpg").write_bytes(jpeg_bytes(face_photo(photos_dir, "kim3.jpg", 0.5)))
    r = CliRunner().invoke(app, ["run", str(inp), str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:1"])
    assert r.exit_code == 1, r.output
    assert r.stderr.strip().splitlines() == [
        "error: --scheduler needs the cluster extra (the `distributed` package), which is not installed "
        "(hint: pip install 'faceanon[cluster]')"]
    assert not (tmp_path / "out").exists()  # refused before OUT is touched


def test_scheduler_from_the_environment_and_jobs_are_exclusive(tmp_path, photos_dir, monkeypatch):
    from typer.testing import CliRunner

    from faceanon.cli import app

    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.jpg").write_bytes(jpeg_bytes(face_photo(photos_dir, "kim3.jpg", 0.5)))
    monkeypatch.setenv("FACEANON_SCHEDULER", "tcp://127.0.0.1:1")
    r = CliRunner().invoke(app, ["run", str(inp), str(tmp_path / "out"), "--jobs", "2"])
    assert r.exit_code == 2, r.output
    assert "--jobs and --scheduler cannot be combined" in r.stderr
