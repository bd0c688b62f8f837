"""Downloads through a real HTTP server on 127.0.0.1 (and a directory mirror): full set, resume,
Range handling, tampering, 404 / dead host, offline mode, retries and two concurrent processes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faceanon.assets import get_store
from faceanon.assets.manifest import entries
from faceanon.cli import app
from faceanon.errors import AssetError, ChecksumError, DownloadError
from tests.support import FileServer, asset_home, closed_port, http_mirror  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[1]
LITE = [e.name for e in entries("lite")]
BIG = "bfm/w_shp_sim.npy"  # 25.5 MB


def cli(*args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), input=input)


def sha(path_or_bytes) -> str:
    if isinstance(path_or_bytes, (bytes, bytearray)):
        return hashlib.sha256(path_or_bytes).hexdigest()
    return hashlib.sha256(Path(path_or_bytes).read_bytes()).hexdigest()


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def gets(server: FileServer, name: str):
    return [r for r in server.requests_for(name) if r.method == "GET"]


# ---------------------------------------------------------------------------------------------- full set
def test_full_lite_download_over_http_then_verify(asset_home, http_mirror, mirror_dir, monkeypatch):
    monkeypatch.setenv("FACEANON_ASSETS_MIRROR", http_mirror.url)  # the env variable, not --mirror
    result = cli("assets", "download", "--accept-license")
    assert result.exit_code == 0, result.output
    for name in LITE:
        target = asset_home / name
        assert target.is_file(), name
        assert sha(target) == sha(mirror_dir / name), name
        assert not Path(str(target) + ".incomplete").exists()
        assert f"downloaded  {name}" in result.stdout
        assert len(gets(http_mirror, name)) == 1, name
    assert all(r.range is None for r in http_mirror.requests)

    result = cli("assets", "verify")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for name in LITE:
        assert f"verified  {name}" in lines
    assert "missing" not in result.stdout and "corrupt" not in result.stdout

    # a second download finds everything verified and opens no connection
    http_mirror.clear_log()
    result = cli("assets", "download")
    assert result.exit_code == 0, result.output
    assert http_mirror.requests == []
    assert all(f"present     {name}" in result.stdout for name in LITE)

    # `list` now reports each file as verified
    result = cli("assets", "list", "--model", "lite")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if any(n in line for n in LITE)]
    assert len(rows) == len(LITE) and all("verified" in row for row in rows)


def test_directory_mirror_works_like_http(asset_home, mirror_dir):
    result = cli("assets", "download", "--mirror", str(mirror_dir), "--accept-license")
    assert result.exit_code == 0, result.output
    for name in LITE:
        assert sha(asset_home / name) == sha(mirror_dir / name), name
    result = cli("assets", "verify", "--model", "lite")
    assert result.exit_code == 0, result.output
    assert sum(line.startswith("verified") for line in result.stdout.splitlines()) == len(LITE)


def test_directory_mirror_with_tampered_file_is_refused(asset_home, mirror_dir, tmp_path):
    local = tmp_path / "mirror"
    name = "bfm/keypoints_sim.npy"
    (local / "bfm").mkdir(parents=True)
    data = bytearray((mirror_dir / name).read_bytes())
    data[100] ^= 0x01
    (local / name).write_bytes(bytes(data))
    store = get_store(mirror=str(local))
    with pytest.raises(ChecksumError) as info:
        store.download(names=[name], accept_license=True, progress=False)
    assert name in info.value.message and sha(bytes(data)) in info.value.message
    assert not (asset_home / name).exists()
    assert not (asset_home / (name + ".incomplete")).exists()


def test_missing_mirror_folder_is_a_clear_error(asset_home, tmp_path):
    result = cli("assets", "download", "--mirror", str(tmp_path / "nowhere"), "--accept-license")
    assert result.exit_code == 1
    [line] = error_lines(result)
    assert str(tmp_path / "nowhere") in line and "FACEANON_ASSETS_MIRROR" in line


# ---------------------------------------------------------------------------------------------- resume
def test_cut_connection_then_second_download_resumes_with_range(asset_home, http_mirror, mirror_dir, monkeypatch):
    monkeypatch.setenv("FACEANON_DOWNLOAD_RETRIES", "1")  # no retry: the first command fails
    cut = 5_000_000
    http_mirror.cut_after(BIG, cut)
    first = cli("assets", "download", "--mirror", http_mirror.url, "--accept-license")
    assert first.exit_code == 1
    [line] = error_lines(first)
    assert f"{http_mirror.url}/{BIG}" in line
    partial = asset_home / (BIG + ".incomplete")
    assert partial.stat().st_size == cut
    assert not (asset_home / BIG).exists()

    second = cli("assets", "download", "--mirror", http_mirror.url)
    assert second.exit_code == 0, second.output
    requests = gets(http_mirror, BIG)
    assert [r.range for r in requests] == [None, f"bytes={cut}-"]
    assert requests[1].status == 206
    assert sha(asset_home / BIG) == sha(mirror_dir / BIG)
    assert not partial.exists()
    assert "resumed at 5.0 MB" in second.stdout


def test_retry_inside_one_download_resumes(asset_home, http_mirror, mirror_dir):
    http_mirror.cut_after(BIG, 1_234_567)
    store = get_store(mirror=http_mirror.url)
    [result] = store.download(names=[BIG], accept_license=True, progress=False)
    assert result.status == "downloaded"
    assert result.resumed_from == 1_234_567
    assert [r.range for r in gets(http_mirror, BIG)] == [None, "bytes=1234567-"]
    assert sha(asset_home / BIG) == sha(mirror_dir / BIG) == result.sha256


def test_server_answering_200_to_a_range_request_restarts_the_file(asset_home, http_mirror, mirror_dir):
    name = "bfm/w_exp_sim.npy"
    partial = asset_home / (name + ".incomplete")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"\0" * 4096)  # not a prefix of the real file
    http_mirror.ignore_range = True
    [result] = get_store(mirror=http_mirror.url).download(names=[name], accept_license=True, progress=False)
    [request] = gets(http_mirror, name)
    assert request.range == "bytes=4096-" and request.status == 200
    assert result.resumed_from == 0
    assert sha(asset_home / name) == sha(mirror_dir / name)


def test_stale_partial_file_is_discarded_after_a_hash_mismatch(asset_home, http_mirror, mirror_dir):
    name = "bfm/w_exp_sim.npy"
    partial = asset_home / (name + ".incomplete")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"\xff" * 4096)  # the server honours the Range: the result is wrong once
    [result] = get_store(mirror=http_mirror.url).download(names=[name], accept_license=True, progress=False)
    assert [r.range for r in gets(http_mirror, name)] == ["bytes=4096-", None]
    assert sha(asset_home / name) == sha(mirror_dir / name) == result.sha256


def test_transient_http_errors_are_retried(asset_home, http_mirror, mirror_dir):
    name = "bfm/tri.mat"
    http_mirror.fail(name, 503, times=2)
    get_store(mirror=http_mirror.url).download(names=[name], accept_license=True, progress=False)
    assert [r.status for r in gets(http_mirror, name)] == [503, 503, 200]
    assert sha(asset_home / name) == sha(mirror_dir / name)


def test_persistent_http_errors_give_up_after_the_configured_attempts(asset_home, http_mirror):
    name = "bfm/tri.mat"
    http_mirror.fail(name, 503, times=-1)
    with pytest.raises(DownloadError) as info:
        get_store(mirror=http_mirror.url).download(names=[name], accept_license=True, progress=False)
    assert len(gets(http_mirror, name)) == 3
    assert "503" in info.value.message and f"{http_mirror.url}/{name}" in info.value.message
    assert not (asset_home / name).exists()


# ---------------------------------------------------------------------------------------------- failures
def test_tampered_file_on_the_server_is_refused(asset_home, http_mirror, mirror_dir):
    name = "bfm/tri.mat"
    http_mirror.tamper(name)
    result = cli("assets", "download", "--mirror", http_mirror.url, "--accept-license")
    assert result.exit_code == 1
    [line] = error_lines(result)
    assert result.stderr.rstrip("\n").splitlines()[-1] == line
    expected = sha(mirror_dir / name)
    served = sha(http_mirror.content(name))
    assert served != expected
    assert name in line and expected in line and served in line
    assert not (asset_home / name).exists()
    assert not (asset_home / (name + ".incomplete")).exists()


def test_404_names_the_url_and_the_mirror_variable(asset_home, tmp_path):
    with FileServer(root=tmp_path / "empty") as server:
        result = cli("assets", "download", "--mirror", server.url + "/", "--accept-license")
        assert len(server.requests) == 1  # a 404 is not retried
    assert result.exit_code == 1
    [line] = error_lines(result)
    first = entries("lite")[0].name
    assert f"{server.url}/{first}" in line and "404" in line
    assert "FACEANON_ASSETS_MIRROR" in line and "--mirror" in line
    assert "Traceback" not in result.output


def test_dead_host_names_the_url_and_the_mirror_variable(asset_home):
    url = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    result = cli("assets", "download", "--mirror", url, "--accept-license")
    assert time.monotonic() - started < 5
    assert result.exit_code == 1
    [line] = error_lines(result)
    assert f"{url}/{entries('lite')[0].name}" in line
    assert "FACEANON_ASSETS_MIRROR" in line and "3 attempt" in line


def test_offline_with_missing_files_opens_no_connection(asset_home, http_mirror, monkeypatch):
    monkeypatch.setenv("FACEANON_ASSETS_MIRROR", http_mirror.url)
    monkeypatch.setenv("FACEANON_OFFLINE", "1")
    result = cli("assets", "download", "--accept-license")
    assert result.exit_code == 1
    [line] = error_lines(result)
    assert "offline" in line and all(name in line for name in LITE)
    assert "FACEANON_OFFLINE" in line
    assert http_mirror.requests == []

    monkeypatch.delenv("FACEANON_OFFLINE")
    result = cli("assets", "download", "--offline", "--model", "3ddfa-v3", "--accept-license")
    assert result.exit_code == 1 and "3ddfa_v3/net_recon.pth" in error_lines(result)[0]
    assert http_mirror.requests == []


def test_offline_with_everything_present_succeeds_and_a_local_mirror_still_works(asset_home, mirror_dir, monkeypatch):
    monkeypatch.setenv("FACEANON_OFFLINE", "1")
    result = cli("assets", "download", "--mirror", str(mirror_dir), "--accept-license")
    assert result.exit_code == 0, result.output
    result = cli("assets", "download")
    assert result.exit_code == 0, result.output
    assert not any(line.startswith("downloaded") for line in result.stdout.splitlines())
    assert "(0 downloaded, 14 already present)" in result.stdout


# ---------------------------------------------------------------------------------------------- repair / force
def test_corrupt_local_file_is_reported_and_repaired(asset_home, http_mirror, mirror_dir):
    for each in LITE:  # installed by hand (plain copies: the mirror's files are read-only)
        (asset_home / each).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mirror_dir / each, asset_home / each)
    name = "3ddfa_v2/tri.pkl"
    target = asset_home / name
    data = bytearray(target.read_bytes())
    data[10] ^= 0xFF
    target.write_bytes(bytes(data))

    result = cli("assets", "verify")
    assert result.exit_code == 1
    assert f"corrupt   {name}" in result.stdout.splitlines()
    [line] = error_lines(result)
    assert "1 corrupt" in line and "faceanon assets download --model lite" in line

    result = cli("assets", "download", "--mirror", http_mirror.url, "--accept-license")
    assert result.exit_code == 0, result.output
    assert [r.path for r in http_mirror.requests] == [name]
    assert sha(target) == sha(mirror_dir / name)


def test_force_downloads_again(asset_home, http_mirror):
    names = ["bfm/tri.mat", "bfm/keypoints_sim.npy", "3ddfa_v2/param_mean_std_62d_120x120.pkl"]
    store = get_store(mirror=http_mirror.url)
    store.download(names=names, accept_license=True, progress=False)
    assert [r.status for r in store.download(names=names, progress=False)] == ["present"] * 3
    http_mirror.clear_log()
    results = store.download(names=names, force=True, progress=False)
    assert [r.status for r in results] == ["downloaded"] * 3
    assert sorted(r.path for r in http_mirror.requests) == sorted(names)


# ---------------------------------------------------------------------------------------------- concurrency
_CHILD = """
import json, sys
from faceanon.assets import get_store
[r] = get_store(mirror=sys.argv[1]).download(names=[sys.argv[2]], accept_license=True, progress=False)
print(json.dumps({"status": r.status, "sha256": r.sha256}))
"""


def test_two_processes_downloading_the_same_file_end_with_one_good_file(asset_home, http_mirror, mirror_dir):
    http_mirror.delay(BIG, 1.0)  # the first request holds the lock for at least a second
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    procs = [
        subprocess.Popen([sys.executable, "-c", _CHILD, http_mirror.url, BIG], cwd=REPO, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert sorted(r["status"] for r in results) == ["downloaded", "present"]
    assert len(gets(http_mirror, BIG)) == 1  # the waiting process saw the verified file and skipped
    assert sha(asset_home / BIG) == sha(mirror_dir / BIG) == results[0]["sha256"] == results[1]["sha256"]
    assert not (asset_home / (BIG + ".incomplete")).exists()


def test_download_waits_for_the_lock_file_next_to_the_target(asset_home, http_mirror, mirror_dir):
    import threading

    from filelock import FileLock

    name = "bfm/tri.mat"
    target = asset_home / name
    target.parent.mkdir(parents=True)
    store = get_store(mirror=http_mirror.url)
    outcome: list = []
    with FileLock(str(target) + ".lock"):
        worker = threading.Thread(
            target=lambda: outcome.extend(store.download(names=[name], accept_license=True, progress=False)))
        worker.start()
        time.sleep(0.4)
        assert worker.is_alive() and gets(http_mirror, name) == []  # blocked on our lock
        shutil.copyfile(mirror_dir / name, target)  # "another process" finished the file meanwhile
    worker.join(timeout=10)
    assert [r.status for r in outcome] == ["present"]
    assert gets(http_mirror, name) == []


def test_unknown_name_in_the_api_is_an_asset_error(asset_home):
    with pytest.raises(AssetError):
        get_store().download(names=["bfm/nope.npy"], progress=False)
