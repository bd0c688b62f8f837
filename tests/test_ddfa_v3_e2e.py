"""3DDFA-V3 end to end with synthetic checkpoints: download over HTTP, then reconstruct and run.

The official files come from Hugging Face, which this machine cannot reach. The synthetic set has
exactly the official key names, shapes and wrappings (see ddfa_v3/testing.py), and is served by a
real HTTP server on 127.0.0.1 acting as the asset mirror, so this exercises the same code path as a
user with the real files: trust-on-first-use download, strict loading, every stage of `run`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from faceanon.cli import app
from faceanon.io.mesh import read_obj
from faceanon.io.records import load_projections
from faceanon.models.loader import clear_cache
from tests.support.http_server import FileServer

PHOTOS = ("alison1.jpg", "kim3.jpg")


@pytest.fixture(scope="module")
def synthetic_mirror(tmp_path_factory):
    from ddfa_v3.testing import write_synthetic_assets

    root = tmp_path_factory.mktemp("v3mirror")
    write_synthetic_assets(root / "3ddfa_v3")
    with FileServer(root=root) as server:
        yield server


@pytest.fixture
def v3_env(tmp_path, monkeypatch, synthetic_mirror):
    monkeypatch.setenv("FACEANON_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FACEANON_ASSETS_MIRROR", synthetic_mirror.url)
    monkeypatch.delenv("FACEANON_OFFLINE", raising=False)
    monkeypatch.setenv("FACEANON_DOWNLOAD_BACKOFF", "0.01")
    clear_cache()
    yield tmp_path
    clear_cache()


def _invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result


def _photos(photos_dir: Path, dest: Path) -> Path:
    dest.mkdir()
    for name in PHOTOS:
        shutil.copy(photos_dir / name, dest / name)
    return dest


def test_download_then_run_with_3ddfa_v3(v3_env, photos_dir, synthetic_mirror):
    r = _invoke("assets", "download", "--model", "3ddfa-v3", "--accept-license")
    assert r.exit_code == 0, r.output
    requested = {rec.path for rec in synthetic_mirror.requests}
    for name in ("net_recon.pth", "face_model.npy", "large_base_net.pth",
                 "retinaface_resnet50_2020-07-20_old_torch.pth", "similarity_Lm3D_all.mat"):
        assert any(p.endswith(name) for p in requested), name
    # trust on first use: the hashes are recorded
    tofu = json.loads((v3_env / "home" / "tofu.json").read_text())
    assert len(tofu) >= 5

    inp = _photos(photos_dir, v3_env / "in")
    out = v3_env / "out"
    r = _invoke("run", inp, out, "--model", "3ddfa-v3", "--tex-size", "256", "--img-size", "128",
                "--outputs", "all")  # face3d/ and seg/ too: the seed's file set, checked below
    assert r.exit_code == 0, r.output
    report = json.loads((out / "report.json").read_text())
    assert [i["status"] for i in report["images"]] == ["ok", "ok"]
    for name in PHOTOS:
        stem = Path(name).stem
        rec = load_projections(out / "face3d" / stem / f"{stem}_projections.npz")
        assert rec["backend"] == "3ddfa-v3"
        h, w = rec["seg_visible_labels_full"].shape
        assert (w, h) == tuple(rec["img_size"])
        assert rec["v2d_full"].shape[1] == 2 and rec["trans_params"].dtype == np.float32
        assert (rec["seg_visible_labels_full"] > 0).any()
        v, uv, tri, tex = read_obj(out / "face3d" / stem / f"{stem}_extractTex.obj")
        assert v.shape[0] == rec["v2d_full"].shape[0] and tex is not None and tex.is_file()
        for rel in (f"seg/{stem}_masked.png", f"anon/{stem}/{stem}.obj", f"anon/{stem}/{stem}.mtl",
                    f"anon/{stem}/{stem}_texture.png", f"render/{stem}_front.png", f"anonymized/{stem}.jpg"):
            assert (out / rel).is_file() and (out / rel).stat().st_size > 0, rel


def test_reconstruct_writes_the_lite_file_set(v3_env, photos_dir, mirror_dir, monkeypatch):
    """--model 3ddfa-v3 writes exactly the files the lite backend writes."""
    inp = _photos(photos_dir, v3_env / "in")
    r = _invoke("assets", "download", "--model", "3ddfa-v3", "--accept-license")
    assert r.exit_code == 0, r.output
    r = _invoke("reconstruct", inp, v3_env / "v3", "--model", "3ddfa-v3", "--tex-size", "128")
    assert r.exit_code == 0, r.output

    monkeypatch.setenv("FACEANON_ASSETS_MIRROR", str(mirror_dir))
    clear_cache()
    r = _invoke("assets", "download", "--model", "lite", "--accept-license")
    assert r.exit_code == 0, r.output
    r = _invoke("reconstruct", inp, v3_env / "lite", "--tex-size", "128")
    assert r.exit_code == 0, r.output

    def files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}

    assert files(v3_env / "v3") == files(v3_env / "lite")
    a = np.load(v3_env / "v3" / "kim3" / "kim3_projections.npz")
    b = np.load(v3_env / "lite" / "kim3" / "kim3_projections.npz")
    assert set(a.files) == set(b.files)
    for k in a.files:  # same dtypes (strings: same kind) and ranks; N differs between the models
        assert a[k].dtype.kind == b[k].dtype.kind and a[k].ndim == b[k].ndim, k
        if a[k].dtype.kind != "U":
            assert a[k].dtype == b[k].dtype, k


def test_a_renamed_key_on_the_server_is_refused(v3_env, photos_dir, tmp_path, monkeypatch):
    """A checkpoint with one key renamed: refused at load with a line naming the key."""
    import torch

    from ddfa_v3.testing import write_synthetic_assets

    bad_root = tmp_path / "bad"
    paths = write_synthetic_assets(bad_root / "3ddfa_v3", seed=1)
    ck = torch.load(paths["net_recon"], map_location="cpu", weights_only=True)
    sd = ck["net_recon"]
    sd["final_layers.9.weight"] = sd.pop("final_layers.6.weight")
    torch.save(ck, paths["net_recon"])
    with FileServer(root=bad_root) as server:
        monkeypatch.setenv("FACEANON_ASSETS_MIRROR", server.url)
        r = _invoke("assets", "download", "--model", "3ddfa-v3", "--accept-license")
        assert r.exit_code == 0, r.output
        inp = _photos(photos_dir, tmp_path / "in2")
        r = _invoke("reconstruct", inp, tmp_path / "o", "--model", "3ddfa-v3")
    assert r.exit_code == 1
    assert "final_layers.6.weight" in r.output and "final_layers.9.weight" in r.output
    assert "Traceback" not in r.output
