"""The manifest and the store API without a network: env handling, require() and its verified cache,
verify(), mirror parsing, retry policy."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import platformdirs
import pytest

import faceanon.assets.store as store_mod
from faceanon.assets import AssetStore, RetryPolicy, get_store
from faceanon.assets.manifest import ENTRIES, V3_BASE_URL, entries
from faceanon.assets.store import Mirror
from faceanon.errors import AssetError, ChecksumError
from tests.support import asset_home  # noqa: F401 (fixture)


def _manifest_md_rows(mirror_dir: Path) -> list[dict]:
    rows = []
    for line in (mirror_dir / "MANIFEST.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*`([^`]+)`\s*\|\s*(\d+)\s*\|\s*`([0-9a-f]{64})`\s*\|\s*(\S+)\s*\|\s*([^|]+?)\s*\|", line)
        if m:
            rows.append({"name": m[1], "size": int(m[2]), "sha256": m[3], "url": m[4], "license": m[5]})
    return rows


# ---------------------------------------------------------------------------------------------- manifest
def test_lite_set_is_exactly_the_mirror_manifest(mirror_dir):
    rows = _manifest_md_rows(mirror_dir)
    assert len(rows) == 14
    lite = {e.name: e for e in entries("lite")}
    assert set(lite) == {r["name"] for r in rows}
    for row in rows:
        entry = lite[row["name"]]
        assert (entry.size, entry.sha256, entry.url, entry.license) == (
            row["size"], row["sha256"], row["url"], row["license"]), row["name"]
        assert entry.bfm_derived == ("BFM-derived" in row["license"]), row["name"]
        # and the mirror files really have these hashes
        data = (mirror_dir / row["name"]).read_bytes()
        assert len(data) == entry.size and hashlib.sha256(data).hexdigest() == entry.sha256


def test_3ddfa_v3_set_is_trust_on_first_use():
    v3 = entries("3ddfa-v3")
    files = ["net_recon.pth", "face_model.npy", "large_base_net.pth",
             "retinaface_resnet50_2020-07-20_old_torch.pth", "similarity_Lm3D_all.mat"]
    assert [e.name for e in v3] == [f"3ddfa_v3/{f}" for f in files]
    assert all(e.sha256 is None and e.trust_on_first_use for e in v3)
    assert [e.url for e in v3] == [f"{V3_BASE_URL}/{f}" for f in files]
    assert V3_BASE_URL == "https://huggingface.co/datasets/Zidu-Wang/3DDFA-V3/resolve/main/assets"
    assert [e.name for e in v3 if e.bfm_derived] == ["3ddfa_v3/face_model.npy"]
    assert entries("all") == list(ENTRIES) and len(ENTRIES) == 19
    with pytest.raises(ValueError):
        entries("full")


# ---------------------------------------------------------------------------------------------- env
def test_get_store_reads_the_environment(asset_home, monkeypatch, tmp_path):
    store = get_store()
    assert store.data_dir == asset_home.resolve()
    assert store.mirror is None and store.offline is False
    assert store.path_for("3ddfa_v3/net_recon.pth") == asset_home.resolve() / "3ddfa_v3" / "net_recon.pth"
    assert store.derived_dir == asset_home.resolve() / "derived" and store.derived_dir.is_dir()
    entry = store.entry("bfm/tri.mat")
    assert store.source_for(entry) == entry.url  # no mirror: upstream

    monkeypatch.setenv("FACEANON_ASSETS_MIRROR", "http://127.0.0.1:9/base/")
    monkeypatch.setenv("FACEANON_OFFLINE", "1")
    store = get_store()
    assert store.offline is True
    assert store.source_for(entry) == "http://127.0.0.1:9/base/bfm/tri.mat"
    # arguments override the environment
    store = get_store(mirror=str(tmp_path), offline=False)
    assert store.offline is False and store.source_for(entry) == str(tmp_path / "bfm" / "tri.mat")
    assert get_store(mirror="").mirror is None


def test_default_data_dir_is_the_platform_user_data_dir(monkeypatch):
    monkeypatch.delenv("FACEANON_HOME", raising=False)
    assert get_store().data_dir == Path(platformdirs.user_data_dir("faceanon"))


def test_mirror_parsing(tmp_path):
    assert Mirror.parse(None) is None and Mirror.parse("  ") is None
    m = Mirror.parse("https://example.org/x/")
    assert m.kind == "http" and m.location("3ddfa_v3/a b.pth") == "https://example.org/x/3ddfa_v3/a%20b.pth"
    m = Mirror.parse(tmp_path.as_uri())
    assert m.kind == "dir" and m.location("bfm/tri.mat") == str(tmp_path / "bfm" / "tri.mat")
    with pytest.raises(AssetError, match="FACEANON_ASSETS_MIRROR"):
        Mirror.parse("ftp://example.org/x")


def test_retry_policy_from_env(monkeypatch):
    monkeypatch.setenv("FACEANON_DOWNLOAD_RETRIES", "5")
    monkeypatch.setenv("FACEANON_DOWNLOAD_BACKOFF", "0.25")
    monkeypatch.setenv("FACEANON_DOWNLOAD_TIMEOUT", "not a number")
    policy = RetryPolicy.from_env()
    assert policy.attempts == 5 and policy.timeout == RetryPolicy().timeout
    assert [policy.delay(n) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]
    assert RetryPolicy(backoff=1, max_delay=3).delay(10) == 3


# ---------------------------------------------------------------------------------------------- require / verify
def _install(store: AssetStore, mirror_dir: Path, name: str) -> Path:
    target = store.path_for(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mirror_dir / name, target)
    return target


@pytest.mark.parametrize("name, model", [("bfm/u_shp.npy", "lite"), ("3ddfa_v3/face_model.npy", "3ddfa-v3")])
def test_require_missing_names_the_file_and_the_download_command(asset_home, name, model):
    with pytest.raises(AssetError) as info:
        get_store().require(name)
    line = info.value.one_line()
    assert name in line and f"run `faceanon assets download --model {model}`" in line
    assert "\n" not in line


def test_require_unknown_name(asset_home):
    with pytest.raises(AssetError, match="unknown model file"):
        get_store().require("bfm/nope.npy")


def test_require_uses_the_verified_cache_until_size_or_mtime_change(asset_home, mirror_dir, monkeypatch):
    store = get_store()
    name = "bfm/u_exp.npy"
    target = _install(store, mirror_dir, name)
    calls = []
    real = store_mod.sha256_file
    monkeypatch.setattr(store_mod, "sha256_file", lambda p: calls.append(p) or real(p))

    assert store.require(name) == target
    assert len(calls) == 1
    cached = json.loads((asset_home / "verified.json").read_text())[name]
    assert cached["size"] == target.stat().st_size and cached["sha256"] == store.entry(name).sha256

    assert get_store().require(name) == target  # a new process-like store: no rehash
    assert len(calls) == 1
    assert store.status(name) == "verified"

    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # touched: hash again
    assert store.status(name) == "present"
    assert store.require(name) == target
    assert len(calls) == 2


def test_require_detects_a_corrupt_file(asset_home, mirror_dir):
    store = get_store()
    name = "3ddfa_v2/param_mean_std_62d_120x120.pkl"
    target = _install(store, mirror_dir, name)
    store.require(name)
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    os.utime(target, ns=(0, target.stat().st_mtime_ns + 1_000_000_000))
    with pytest.raises(ChecksumError) as info:
        store.require(name)
    line = info.value.one_line()
    assert name in line and hashlib.sha256(bytes(data)).hexdigest() in line
    assert store.entry(name).sha256 in line and "faceanon assets download --model lite" in line
    assert name not in json.loads((asset_home / "verified.json").read_text())


def test_verify_reports_verified_missing_and_corrupt(asset_home, mirror_dir):
    store = get_store()
    good, bad = "bfm/keypoints_sim.npy", "deep3d/similarity_Lm3D_all.mat"
    _install(store, mirror_dir, good)
    store.path_for(bad).parent.mkdir(parents=True, exist_ok=True)
    store.path_for(bad).write_bytes(b"not the file")
    status = {e.name: s for e, s in store.verify("lite")}
    assert status[good] == "verified" and status[bad] == "corrupt"
    assert {s for n, s in status.items() if n not in (good, bad)} == {"missing"}
    assert len(status) == 14
