"""faceanon.io.records: the <stem>_projections.npz contract (seed keys + extras), strict loading."""

from __future__ import annotations

import numpy as np
import pytest

from faceanon.errors import FaceanonError
from faceanon.io.records import EXTRA_KEYS, REQUIRED_KEYS, load_projections, save_projections
from faceanon.types import Detection, FaceFit

W, H, N = 64, 48, 50


def make_fit(n: int = N, backend: str = "lite") -> FaceFit:
    rng = np.random.default_rng(0)
    v = np.c_[rng.uniform(5, W - 5, n), rng.uniform(5, H - 5, n), rng.uniform(0, 30, n)].astype(np.float32)
    det = Detection(box=np.array([4, 3, 60, 45], np.float32), score=0.93,
                    landmarks5=rng.uniform(10, 40, (5, 2)).astype(np.float32))
    return FaceFit(
        vertices=v, triangles=np.array([[0, 1, 2]], np.int32), uv=rng.random((n, 2)).astype(np.float32),
        vertex_labels=rng.integers(0, 9, n).astype(np.uint8),
        landmarks68=rng.uniform(0, 60, (68, 2)).astype(np.float32),
        pose=np.array([12.5, -3.0, 1.25], np.float32), model_vertices=v.copy(), mean_vertices=v.copy(),
        trans_params=np.array([W, H, 0.25, 30.5, 20.25], np.float32), detection=det, backend=backend)


def make_labels() -> np.ndarray:
    labels = np.zeros((H, W), np.uint8)
    labels[10:30, 10:50] = 8
    labels[15:18, 20:25] = 1
    return labels


def raw_arrays(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# ----------------------------------------------------------------------------------------------
# the seed's real files
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stem,size,tp", [
    ("edo", (1200, 1600), [1200, 1600, 0.20748179, 539.74774, 715.93005]),
    ("sis", (740, 1109), [740, 1109, 0.29762411, 350.40878, 496.11905]),
])
def test_loads_the_seed_reference_files(reference_dir, stem, size, tp):
    rec = load_projections(reference_dir / f"{stem}_projections.npz", expected_size=size)
    assert set(rec) == set(REQUIRED_KEYS)
    assert rec["trans_params"].dtype == np.float32 and rec["trans_params"].shape == (5,)
    assert np.allclose(rec["trans_params"], tp, rtol=1e-6)
    assert rec["img_size"].dtype == np.int32 and rec["img_size"].tolist() == list(size)
    labels = rec["seg_visible_labels_full"]
    assert labels.dtype == np.uint8 and labels.shape == (size[1], size[0]) and labels.max() == 8
    assert rec["v2d_full"].dtype == np.float32 and rec["v2d_full"].shape == (35709, 2)


def test_seed_file_size_mismatch(reference_dir):
    with pytest.raises(FaceanonError, match=r"'img_size' is 1200×1600 but the image is 1600×1200"):
        load_projections(reference_dir / "edo_projections.npz", expected_size=(1600, 1200))


# ----------------------------------------------------------------------------------------------
# round trip
# ----------------------------------------------------------------------------------------------

def test_save_writes_exact_keys_and_dtypes(tmp_path):
    fit = make_fit()
    fit.landmark_ids = np.arange(68) % N
    p = tmp_path / "a_projections.npz"
    save_projections(p, fit, (W, H), make_labels(), face_index=1, face_count=2)
    raw = raw_arrays(p)
    assert set(raw) == set(REQUIRED_KEYS) | set(EXTRA_KEYS)
    spec = {
        "trans_params": (np.float32, (5,)), "img_size": (np.int32, (2,)),
        "seg_visible_labels_full": (np.uint8, (H, W)), "v2d_full": (np.float32, (N, 2)),
        "landmarks68": (np.float32, (68, 2)), "pose": (np.float32, (3,)), "box": (np.float32, (4,)),
        "score": (np.float32, ()), "face_index": (np.int32, ()), "face_count": (np.int32, ()),
        "vertex_labels": (np.uint8, (N,)), "landmarks5": (np.float32, (5, 2)), "landmark_ids": (np.int32, (68,)),
    }
    for key, (dtype, shape) in spec.items():
        assert raw[key].dtype == dtype and raw[key].shape == shape, key
    assert raw["backend"].dtype.kind == "U" and raw["backend"].shape == () and str(raw["backend"]) == "lite"
    assert raw["img_size"].tolist() == [W, H]
    assert np.array_equal(raw["v2d_full"], fit.vertices[:, :2])
    assert [p.name for p in tmp_path.iterdir()] == ["a_projections.npz"]


def test_landmark_ids_are_optional_and_validated(tmp_path):
    fit = make_fit()
    p = save_projections(tmp_path / "a.npz", fit, (W, H), make_labels())
    assert "landmark_ids" not in raw_arrays(p)  # a fit without them (e.g. the seed's) writes none
    fit.landmark_ids = np.arange(68) % N
    rec = load_projections(save_projections(tmp_path / "b.npz", fit, (W, H), make_labels()))
    assert np.array_equal(rec["landmark_ids"], np.arange(68) % N)
    arrays = raw_arrays(tmp_path / "b.npz")
    arrays["landmark_ids"] = np.full(68, N + 5, np.int32)  # outside the mesh
    np.savez(tmp_path / "c.npz", **arrays)
    with pytest.raises(FaceanonError, match="landmark_ids"):
        load_projections(tmp_path / "c.npz")


def test_roundtrip_values(tmp_path):
    fit = make_fit(backend="3ddfa-v3")
    p = tmp_path / "r.npz"
    save_projections(p, fit, (W, H), make_labels(), face_index=0, face_count=1, quality=np.float32(0.5))
    rec = load_projections(p, expected_size=(W, H))
    assert np.array_equal(rec["trans_params"], fit.trans_params)
    assert np.array_equal(rec["seg_visible_labels_full"], make_labels())
    assert np.array_equal(rec["landmarks68"], fit.landmarks68)
    assert np.array_equal(rec["pose"], fit.pose) and np.array_equal(rec["box"], fit.detection.box)
    assert np.array_equal(rec["landmarks5"], fit.detection.landmarks5)
    assert np.array_equal(rec["vertex_labels"], fit.vertex_labels)
    assert rec["score"] == pytest.approx(0.93) and rec["backend"] == "3ddfa-v3"
    assert rec["face_index"] == 0 and rec["face_count"] == 1
    assert float(rec["quality"]) == 0.5  # extras pass through


@pytest.mark.parametrize("mutate,match", [
    (lambda fit, lab: lab.__setitem__((0, 0), 9), "seg_visible_labels_full values must be in 0..8"),
    (lambda fit, lab: setattr(fit, "trans_params", np.zeros(4, np.float32)), "trans_params must have shape"),
    (lambda fit, lab: fit.vertices.__setitem__((0, 0), np.nan), "v2d_full contains NaN"),
    (lambda fit, lab: setattr(fit, "vertex_labels", np.zeros(3, np.uint8)), "vertex_labels must have shape"),
])
def test_save_validates(tmp_path, mutate, match):
    fit, labels = make_fit(), make_labels()
    mutate(fit, labels)
    with pytest.raises(ValueError, match=match):
        save_projections(tmp_path / "x.npz", fit, (W, H), labels)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_size_mismatch_and_key_clash(tmp_path):
    with pytest.raises(ValueError, match="seg_visible_labels_full"):
        save_projections(tmp_path / "x.npz", make_fit(), (W + 1, H), make_labels())
    with pytest.raises(ValueError, match="clash"):
        save_projections(tmp_path / "x.npz", make_fit(), (W, H), make_labels(), pose=np.zeros(3))


# ----------------------------------------------------------------------------------------------
# validation on load
# ----------------------------------------------------------------------------------------------

def good_arrays():
    return {
        "trans_params": np.array([W, H, 0.25, 30.5, 20.25], np.float32),
        "img_size": np.array([W, H], np.int32),
        "seg_visible_labels_full": make_labels(),
        "v2d_full": np.zeros((N, 2), np.float32),
    }


def write_raw(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("change,key,match", [
    ({"trans_params": None}, "trans_params", "is missing"),
    ({"v2d_full": None}, "v2d_full", "is missing"),
    ({"trans_params": np.zeros(4, np.float32)}, "trans_params", "must have shape (5,)"),
    ({"trans_params": np.array(["a"] * 5)}, "trans_params", "must be a float array"),
    ({"trans_params": np.array([W, H, 0, 1, 1], np.float32)}, "trans_params", "must be positive"),
    ({"img_size": np.array([W, H, 1], np.int32)}, "img_size", "[W, H]"),
    ({"img_size": np.array([W, H], np.float32)}, "img_size", "int32"),
    ({"img_size": np.array([H, W], np.int32)}, "seg_visible_labels_full", "needs (H, W)"),
    ({"seg_visible_labels_full": np.full((H, W), 9, np.uint8)}, "seg_visible_labels_full", "0..8"),
    ({"seg_visible_labels_full": np.zeros((H, W), np.float32)}, "seg_visible_labels_full", "integer"),
    ({"seg_visible_labels_full": np.zeros((H, W, 1), np.uint8)}, "seg_visible_labels_full", "shape"),
    ({"v2d_full": np.zeros((N, 3), np.float32)}, "v2d_full", "(N, 2)"),
    ({"v2d_full": np.full((N, 2), np.nan, np.float32)}, "v2d_full", "NaN"),
    ({"landmarks68": np.zeros((67, 2), np.float32)}, "landmarks68", "(68, 2)"),
    ({"vertex_labels": np.zeros(N + 1, np.uint8)}, "vertex_labels", "shape"),
    ({"face_index": np.int32(2), "face_count": np.int32(2)}, "face_index", "< face_count"),
    ({"backend": np.array([1.0])}, "backend", "string"),
])
def test_load_rejects_with_file_and_key(tmp_path, change, key, match):
    arrays = good_arrays()
    for k, v in change.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    p = write_raw(tmp_path / "bad_projections.npz", **arrays)
    with pytest.raises(FaceanonError) as ei:
        load_projections(p)
    msg = ei.value.message
    assert str(p) in msg and f"'{key}'" in msg and match in msg, msg


def test_load_accepts_minimal_and_casts(tmp_path):
    arrays = good_arrays()
    arrays["trans_params"] = arrays["trans_params"].astype(np.float64)
    arrays["seg_visible_labels_full"] = arrays["seg_visible_labels_full"].astype(np.int64)
    rec = load_projections(write_raw(tmp_path / "ok.npz", **arrays))
    assert rec["trans_params"].dtype == np.float32 and rec["seg_visible_labels_full"].dtype == np.uint8


def test_load_refuses_pickled_arrays(tmp_path):
    arrays = good_arrays()
    arrays["meta"] = np.array([{"secret": 1}], dtype=object)
    p = write_raw(tmp_path / "pickled.npz", **arrays)
    with pytest.raises(FaceanonError, match=r"'meta' cannot be read without pickle"):
        load_projections(p)


def test_load_missing_and_not_npz(tmp_path):
    with pytest.raises(FaceanonError, match="not found"):
        load_projections(tmp_path / "missing.npz")
    bad = tmp_path / "junk.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(FaceanonError, match="junk.npz: not a readable .npz"):
        load_projections(bad)
    txt = tmp_path / "text.npz"
    txt.write_text("hello")
    with pytest.raises(FaceanonError, match="text.npz"):
        load_projections(txt)
    npy = tmp_path / "array.npz"
    with open(npy, "wb") as fh:
        np.save(fh, np.zeros(3))
    with pytest.raises(FaceanonError, match="array.npz: not an .npz archive"):
        load_projections(npy)
