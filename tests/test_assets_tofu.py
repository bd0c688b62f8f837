"""3ddfa-v3 files have no known sha256: the first download is trusted and recorded, later ones must match."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from typer.testing import CliRunner

from faceanon.assets import get_store
from faceanon.assets.manifest import entries
from faceanon.cli import app
from faceanon.errors import ChecksumError
from tests.support import FileServer, asset_home  # noqa: F401 (fixture)

V3 = [e.name for e in entries("3ddfa-v3")]


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def v3_server():
    """Small fake 3DDFA-V3 files (distinct random bytes) under 3ddfa_v3/."""
    with FileServer() as server:
        for name in V3:
            server.put(name, os.urandom(2048 + len(name)))
        yield server


def test_first_download_records_hashes_and_a_changed_file_is_refused(asset_home, v3_server):
    result = cli("assets", "download", "--model", "3ddfa-v3", "--mirror", v3_server.url, "--accept-license")
    assert result.exit_code == 0, result.output
    tofu = json.loads((asset_home / "tofu.json").read_text())
    assert set(tofu) == set(V3)
    for name in V3:
        served = v3_server.content(name)
        assert (asset_home / name).read_bytes() == served
        assert tofu[name]["sha256"] == sha(served) and tofu[name]["size"] == len(served)
        assert tofu[name]["source"] == f"{v3_server.url}/{name}"
    result = cli("assets", "verify", "--model", "3ddfa-v3")
    assert result.exit_code == 0, result.output

    changed = "3ddfa_v3/net_recon.pth"
    old = v3_server.content(changed)
    v3_server.put(changed, b"upstream replaced this file" * 50)
    result = cli("assets", "download", "--model", "3ddfa-v3", "--mirror", v3_server.url, "--force")
    assert result.exit_code == 1
    [line] = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert changed in line and "differs" in line and "first download" in line
    assert sha(old) in line and sha(v3_server.content(changed)) in line
    # nothing changed on disk: the trusted file and its record stay
    assert (asset_home / changed).read_bytes() == old
    assert json.loads((asset_home / "tofu.json").read_text())[changed]["sha256"] == sha(old)
    assert not (asset_home / (changed + ".incomplete")).exists()
    assert get_store().require(changed) == asset_home.resolve() / changed


def test_a_changed_file_is_refused_after_the_local_copy_was_deleted(asset_home, v3_server):
    store = get_store(mirror=v3_server.url)
    store.download(model="3ddfa-v3", accept_license=True, progress=False)
    name = "3ddfa_v3/large_base_net.pth"
    (asset_home / name).unlink()
    v3_server.put(name, b"something else")
    with pytest.raises(ChecksumError, match="first download"):
        store.download(model="3ddfa-v3", progress=False)
    assert not (asset_home / name).exists()
    # without --force, files already verified are not fetched again
    assert [r.path for r in v3_server.requests].count(V3[0]) == 1


def test_a_locally_modified_v3_file_is_corrupt(asset_home, v3_server):
    store = get_store(mirror=v3_server.url)
    store.download(model="3ddfa-v3", accept_license=True, progress=False)
    name = "3ddfa_v3/similarity_Lm3D_all.mat"
    (asset_home / name).write_bytes(b"edited")
    status = dict((e.name, s) for e, s in store.verify("3ddfa-v3"))
    assert status[name] == "corrupt"
    assert {s for n, s in status.items() if n != name} == {"verified"}
    with pytest.raises(ChecksumError, match="--model 3ddfa-v3"):
        store.require(name)


def test_a_complete_partial_file_is_finished_without_transferring_a_body(asset_home, v3_server):
    # a previous run received everything but died before the rename; the size is unknown upfront
    name = "3ddfa_v3/net_recon.pth"
    served = v3_server.content(name)
    partial = asset_home / (name + ".incomplete")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(served)
    [result] = get_store(mirror=v3_server.url).download(model="3ddfa-v3", names=[name], progress=False)
    [request] = v3_server.requests_for(name)
    assert (request.range, request.status) == (f"bytes={len(served)}-", 416)
    assert result.status == "downloaded" and result.bytes_transferred == 0
    assert (asset_home / name).read_bytes() == served and not partial.exists()
    assert json.loads((asset_home / "tofu.json").read_text())[name]["sha256"] == sha(served)


def test_a_partial_file_longer_than_the_served_one_restarts_without_using_a_retry(asset_home, v3_server, monkeypatch):
    monkeypatch.setenv("FACEANON_DOWNLOAD_RETRIES", "1")
    name = "3ddfa_v3/large_base_net.pth"
    served = v3_server.content(name)
    partial = asset_home / (name + ".incomplete")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(served + b"junk")
    get_store(mirror=v3_server.url).download(model="3ddfa-v3", names=[name], progress=False)
    assert [(r.range, r.status) for r in v3_server.requests_for(name)] == [(f"bytes={len(served) + 4}-", 416),
                                                                           (None, 200)]
    assert (asset_home / name).read_bytes() == served
