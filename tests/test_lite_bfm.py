"""Lite model files (real assets from the mirror): strict mb05 loading, the de-normalisation
statistics, the derived no-neck BFM cache and the per-vertex part labels."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from faceanon.errors import AssetError, CheckpointError
from faceanon.models import bfm as bfm_mod
from faceanon.models.bfm import BFMSources, load_bfm, load_param_stats
from faceanon.models.mb05 import load_mb05

pytestmark = pytest.mark.assets


@pytest.fixture(scope="module")
def sources(mirror_dir: Path) -> BFMSources:
    return BFMSources.from_root(mirror_dir)


@pytest.fixture(scope="module")
def model(sources, tmp_path_factory):
    return load_bfm(sources, tmp_path_factory.mktemp("bfm_cache"))


# ------------------------------------------------------------------------------------------ mb05


def test_mb05_loads_strictly(mirror_dir):
    net = load_mb05(mirror_dir / "3ddfa_v2/mb05_120x120.pth")
    assert not net.training
    assert all(not p.requires_grad for p in net.parameters())
    raw = torch.load(mirror_dir / "3ddfa_v2/mb05_120x120.pth", map_location="cpu", weights_only=True)
    torch.testing.assert_close(net.fc.weight, raw["state_dict"]["module.fc_param.weight"])
    torch.testing.assert_close(net.fc_lm.bias, raw["state_dict"]["module.fc_lm.bias"])


def test_mb05_refuses_a_renamed_key(mirror_dir, tmp_path):
    raw = torch.load(mirror_dir / "3ddfa_v2/mb05_120x120.pth", map_location="cpu", weights_only=True)
    sd = raw["state_dict"]
    sd["module.dw3_1.conv_dw.weights"] = sd.pop("module.dw3_1.conv_dw.weight")
    bad = tmp_path / "renamed.pth"
    torch.save(raw, bad)
    with pytest.raises(CheckpointError) as exc:
        load_mb05(bad)
    msg = exc.value.one_line()
    assert "missing keys: dw3_1.conv_dw.weight" in msg
    assert "unexpected keys: dw3_1.conv_dw.weights" in msg


def test_mb05_refuses_a_wrong_shape_and_garbage(mirror_dir, tmp_path):
    raw = torch.load(mirror_dir / "3ddfa_v2/mb05_120x120.pth", map_location="cpu", weights_only=True)
    raw["state_dict"]["module.fc_param.bias"] = torch.zeros(61)
    bad = tmp_path / "shape.pth"
    torch.save(raw, bad)
    with pytest.raises(CheckpointError, match=r"fc.bias \(61,\) != \(62,\)"):
        load_mb05(bad)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_mb05(junk)


def test_param_stats(mirror_dir):
    mean, std = load_param_stats(mirror_dir / "3ddfa_v2/param_mean_std_62d_120x120.pkl")
    assert mean.dtype == np.float32 and mean.shape == (62,)
    assert mean[3] == pytest.approx(60.168, abs=1e-3)
    assert mean[7] == pytest.approx(74.278, abs=1e-3)
    assert mean[11] == pytest.approx(-66.672, abs=1e-3)


# ----------------------------------------------------------------------------------- BFM content


def test_bfm_shapes_and_landmark_ids(model):
    assert model.u.shape == (115095,) and model.w_shp.shape == (115095, 40) and model.w_exp.shape == (115095, 10)
    assert model.tri.shape == (76073, 3) and model.tri.dtype == np.int32
    assert model.uv.shape == (38365, 2) and model.labels.shape == (38365,)
    # docs/lite_model.md, section 3.2: first no-neck landmark ids and the nose tip / outer eye corners
    assert model.kp68[:4].tolist() == [17440, 17716, 17222, 16770]
    assert model.kp68[[30, 36, 45]].tolist() == [8192, 2215, 14066]
    assert len(np.unique(model.tri)) == 38365  # every vertex is used


def test_bfm_axes_uv_and_winding(model):
    mv = model.mean_vertices
    lm = mv[model.kp68]
    assert lm[45, 0] > lm[36, 0]  # +x = image right: landmark 45 (image-right eye) has larger x
    assert lm[27, 1] > lm[8, 1]  # +y = up: nose bridge above chin
    assert np.argmax(mv[:, 2]) in np.nonzero(np.linalg.norm(mv - lm[30], axis=1) < 3000)[0]  # nose tip nearest
    uv = model.uv
    assert uv[model.kp68[8], 1] < uv[model.kp68[30], 1] < uv[model.kp68[19], 1]  # v grows upward
    assert uv[model.kp68[36], 0] < 0.5 < uv[model.kp68[45], 0]  # u grows with +x
    # project winding (reversed tri.pkl): CCW seen from the front in the y-up model frame,
    # i.e. outward normals (+z) for the frontal triangles
    t = model.triangles
    np.testing.assert_array_equal(t[: len(model.tri)], model.tri[:, ::-1])
    a, b, c = mv[t[:, 0]], mv[t[:, 1]], mv[t[:, 2]]
    nz = np.cross(b - a, c - a)[:, 2]
    frontal = np.all(mv[t][:, :, 2] > 100_000, axis=1)
    assert (nz[frontal] > 0).mean() > 0.95


def test_mouth_opening_is_closed_with_the_lip_vertices(model):
    """tri.pkl leaves a hole between the lips (a 78-vertex loop); the project's triangles close it, so
    the visible label map has lip labels there and renders have no gap between the lips."""
    from faceanon.models.topology import boundary_loops

    raw = [len(loop) for loop in boundary_loops(model.tri[:, ::-1])]
    assert len(raw) == 2 and min(raw) == 78
    closed = boundary_loops(model.triangles)
    assert len(closed) == 1 and len(closed[0]) == max(raw)  # only the outer boundary is left
    cap = model.triangles[len(model.tri):]
    assert np.isin(model.labels[cap], (6, 7)).all()  # built from the lip vertices only: no new vertex
    mv = model.mean_vertices.astype(np.float64)
    nz = np.cross(mv[cap[:, 1]] - mv[cap[:, 0]], mv[cap[:, 2]] - mv[cap[:, 0]])[:, 2]
    assert (nz > 0).mean() > 0.6  # wound like the surrounding lips (front faces toward +z)


def test_shape_and_sparse_landmarks_agree(model):
    rng = np.random.default_rng(0)
    a_shp = rng.normal(0, 2e4, 40).astype(np.float32)
    a_exp = rng.normal(0, 0.5, 10).astype(np.float32)
    dense = model.shape(a_shp, a_exp)
    np.testing.assert_allclose(model.landmarks_shape(a_shp, a_exp), dense[model.kp68], rtol=1e-5, atol=0.5)


# ----------------------------------------------------------------------------------- BFM cache


def test_bfm_cache_built_once_then_reused(sources, tmp_path):
    cache = tmp_path / "cache"
    m1 = load_bfm(sources, cache)
    files = list(cache.glob("bfm_noneck_*.npz"))
    assert files == [m1.path]
    mtime = m1.path.stat().st_mtime_ns
    os.utime(m1.path, ns=(mtime - 10**9, mtime - 10**9))  # a rewrite would move the mtime forward
    before = m1.path.stat().st_mtime_ns
    t = time.perf_counter()
    m2 = load_bfm(sources, cache)
    elapsed = time.perf_counter() - t
    assert m2.path == m1.path and m2.path.stat().st_mtime_ns == before
    assert not list(cache.glob("*.incomplete"))
    np.testing.assert_array_equal(m1.labels, m2.labels)
    np.testing.assert_array_equal(m1.w_shp, m2.w_shp)
    assert elapsed < 1.0, f"loading the cached BFM took {elapsed:.2f} s"
    # with hashes already known (the asset store verified them) it skips hashing
    hashes = {role: bfm_mod.sha256_file(p) for role, p in sources.items()}
    t = time.perf_counter()
    m3 = load_bfm(sources, cache, source_sha256=hashes)
    elapsed = time.perf_counter() - t
    assert m3.path == m1.path
    assert elapsed < 0.3, f"loading the cached BFM took {elapsed:.2f} s"


def test_bfm_cache_rebuilt_when_a_source_changes(sources, tmp_path):
    src = tmp_path / "src"
    for role, path in sources.items():
        dst = src / BFMSources.NAMES[role]
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.symlink_to(path)
    cache = tmp_path / "cache"
    first = load_bfm(BFMSources.from_root(src), cache)
    # replace u_exp by a slightly different file
    u_exp = src / "bfm/u_exp.npy"
    arr = np.load(u_exp)
    u_exp.unlink()
    np.save(u_exp, arr + np.float32(1.0))
    second = load_bfm(BFMSources.from_root(src), cache)
    assert second.path != first.path
    assert list(cache.glob("bfm_noneck_*.npz")) == [second.path]  # the stale one is gone
    np.testing.assert_allclose(second.u - first.u, 1.0, atol=0.02)


def test_bfm_corrupt_cache_is_rebuilt(sources, tmp_path):
    cache = tmp_path / "cache"
    m = load_bfm(sources, cache)
    m.path.write_bytes(b"truncated")
    again = load_bfm(sources, cache)
    assert again.path == m.path and again.path.stat().st_size > 20_000_000


def test_bfm_missing_source_is_an_asset_error(sources, tmp_path):
    broken = BFMSources(**{**{r: p for r, p in sources.items()}, "uv": tmp_path / "nope.mat"})
    with pytest.raises(AssetError, match="nope.mat"):
        load_bfm(broken, tmp_path / "cache")


# -------------------------------------------------------------------------------------- labels


def test_vertex_labels_follow_the_landmarks(model):
    lab = model.labels
    kp = model.kp68
    assert set(np.unique(lab).tolist()) == set(range(1, 9))
    assert (lab[kp[36:42]] == 1).all()  # right eye = image left
    assert (lab[kp[42:48]] == 2).all()
    assert (lab[kp[17:22]] == 3).all() and (lab[kp[22:27]] == 4).all()
    assert (lab[kp[27:36]] == 5).all()
    assert lab[kp[51]] == 6 and lab[kp[57]] == 7 and lab[kp[62]] == 6 and lab[kp[66]] == 7
    assert (lab[kp[:17]] == 8).all()
    mv = model.mean_vertices
    assert (mv[lab == 1, 0] < 0).all() and (mv[lab == 2, 0] > 0).all()  # image left / right
    # generous but bounded: each eye region is a few times the eye polygon, far from the whole face
    assert 300 < (lab == 1).sum() < 2000 and 300 < (lab == 2).sum() < 2000


def test_shape_basis_tells_identity_from_expression(model, mirror_dir):
    """The morph past the mean face pushes only the identity: on a face of the real model, the basis
    gives back exactly its identity part (w_shp a), whatever its expression."""
    _mean, std = load_param_stats(mirror_dir / "3ddfa_v2/param_mean_std_62d_120x120.pkl")
    rng = np.random.default_rng(11)
    a = (rng.normal(size=40) * std[12:52]).astype(np.float32)  # the spread of the regressor's fits
    e = (rng.normal(size=10) * std[52:62]).astype(np.float32)
    face = model.shape(a, e).astype(np.float64)
    ident = model.shape(a, np.zeros(10, np.float32)).astype(np.float64) - model.mean_vertices
    got = model.shape_basis.identity_part(face - model.mean_vertices)
    scale = np.abs(ident).max()
    np.testing.assert_allclose(got, ident, atol=1e-3 * scale)
    expr = face - model.mean_vertices - ident
    assert np.abs(expr).max() > 0.05 * scale  # the expression was there to be left out
    assert model.shape_basis is model.shape_basis  # built once per model
