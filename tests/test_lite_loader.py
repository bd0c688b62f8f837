"""faceanon.models.loader: models come from the asset store and are loaded once per process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceanon.errors import UsageError
from faceanon.models import loader

pytestmark = pytest.mark.assets


class MirrorStore:
    """The part of the asset store the loader uses, backed by the mirror folder."""

    def __init__(self, root: Path, derived: Path) -> None:
        self.root, self._derived = root, derived
        self.required: list[str] = []

    def require(self, name: str) -> Path:
        self.required.append(name)
        return self.root / name

    @property
    def derived_dir(self) -> Path:
        self._derived.mkdir(parents=True, exist_ok=True)
        return self._derived


@pytest.fixture()
def store(mirror_dir, tmp_path):
    loader.clear_cache()
    yield MirrorStore(mirror_dir, tmp_path / "derived")
    loader.clear_cache()


def test_models_are_loaded_once(store):
    d1 = loader.get_detector(store, threshold=0.5, min_face_size=40)
    assert loader.get_detector(store, threshold=0.5, min_face_size=40) is d1
    d2 = loader.get_detector(store, threshold=0.3)
    assert d2 is not d1 and d2.threshold == 0.3
    b1 = loader.get_backend(store, "lite")
    assert loader.get_backend(store) is b1 and b1.name == "lite"
    assert "3ddfa_v2/mb05_120x120.pth" in store.required and "bfm/w_shp_sim.npy" in store.required
    assert [p.name for p in store.derived_dir.glob("bfm_noneck_*.npz")] == [b1.bfm.path.name]
    mean, tri, uv = loader.get_mean_face(store, "lite")
    assert mean is b1.bfm.mean_vertices and tri is b1.bfm.triangles and uv.shape == (mean.shape[0], 2)
    assert mean.dtype == np.float32


def test_unknown_model_is_a_usage_error(store):
    with pytest.raises(UsageError, match="available: lite"):
        loader.get_backend(store, "nope")
    with pytest.raises(UsageError):
        loader.get_detector(store, model="nope")


def test_default_threshold_is_the_models(store):
    assert loader.get_detector(store, threshold=None).threshold == 0.5


def test_3ddfa_v3_is_dispatched_to_its_adapter_and_loaded_once(store, monkeypatch):
    """No 3DDFA-V3 files here: a stand-in DDFAv3 checks the wiring (one instance, shared)."""
    import ddfa_v3.model
    from faceanon.models.ddfa_v3_backend import DDFAv3Backend, DDFAv3Detector

    built = []

    class FakeV3:
        def __init__(self, **paths):
            built.append(paths)
            self.detector = type("D", (), {"score_threshold": 0.7, "nms_threshold": 0.4})()
            self.retina_net = object()  # only passed through
            self.mean_vertices = np.zeros((3, 3), np.float32)
            self.triangles = np.array([[0, 1, 2]], np.int32)
            self.face_model = type("F", (), {"uv": np.zeros((3, 2), np.float32)})()

        def detect(self, rgb):
            return []

    monkeypatch.setattr(ddfa_v3.model, "DDFAv3", FakeV3)
    det = loader.get_detector(store, model="3ddfa-v3", min_face_size=40)
    backend = loader.get_backend(store, "3ddfa-v3")
    mean = loader.get_mean_face(store, "3ddfa-v3")
    assert isinstance(det, DDFAv3Detector) and isinstance(backend, DDFAv3Backend)
    assert len(built) == 1 and backend.model is det.model
    assert set(built[0]) == {"net_recon", "face_model", "large_base_net", "retinaface", "similarity_lm3d"}
    assert mean[1].shape == (1, 3)
    assert det.detect(np.zeros((8, 8, 3), np.uint8)) == []


def test_3ddfa_v3_mean_face_alone_reads_only_the_face_model(tmp_path, monkeypatch):
    """`faceanon anonymize --model 3ddfa-v3` needs the mean face only: the networks stay unloaded."""
    import ddfa_v3.model
    from ddfa_v3.face_model import FaceModel
    from ddfa_v3.testing import synthetic_face_model

    loader.clear_cache()
    d = synthetic_face_model()
    d["tri"] = d["tri"][:, [0, 2, 1]]  # stored clockwise: must come back rewound
    np.save(tmp_path / "face_model.npy", d, allow_pickle=True)

    class Store:
        required: list[str] = []

        def require(self, name):
            self.required.append(name)
            return tmp_path / Path(name).name

    def no_networks(**paths):
        raise AssertionError("the whole 3DDFA-V3 model was built")

    monkeypatch.setattr(ddfa_v3.model, "DDFAv3", no_networks)
    store = Store()
    mean, tri, uv = loader.get_mean_face(store, "3ddfa-v3")
    assert store.required == ["3ddfa_v3/face_model.npy"]
    fm = FaceModel(tmp_path / "face_model.npy")
    np.testing.assert_allclose(mean, fm.mean_shape(), rtol=1e-6)
    np.testing.assert_array_equal(tri, np.asarray(d["tri"])[:, [0, 2, 1]])  # counter-clockwise again
    assert uv.shape == (mean.shape[0], 2)
    assert loader.get_mean_face(store, "3ddfa-v3")[0] is mean  # cached
    loader.clear_cache()


def test_3ddfa_v3_shape_basis_from_the_face_model_alone(tmp_path, monkeypatch):
    """The morph past the mean face with --model 3ddfa-v3: the face model's id and exp bases, read from
    the face model file alone (no network), once; they give back a face's identity part."""
    import ddfa_v3.model
    import torch
    from ddfa_v3.face_model import FaceModel
    from ddfa_v3.testing import synthetic_face_model

    from faceanon.models.ddfa_v3_backend import DDFAv3Backend

    loader.clear_cache()
    np.save(tmp_path / "face_model.npy", synthetic_face_model(), allow_pickle=True)

    class Store:
        def require(self, name):
            return tmp_path / Path(name).name

    monkeypatch.setattr(ddfa_v3.model, "DDFAv3", lambda **paths: (_ for _ in ()).throw(AssertionError("networks")))
    basis = loader.get_shape_basis(Store(), "3ddfa-v3")
    assert loader.get_shape_basis(Store(), "3ddfa-v3") is basis  # cached
    fm = FaceModel(tmp_path / "face_model.npy")
    assert basis.identity.shape == tuple(fm.id_base.shape) and basis.expression.shape == tuple(fm.exp_base.shape)
    rng = np.random.default_rng(2)
    a = torch.from_numpy(rng.normal(size=(1, fm.id_base.shape[1])).astype(np.float32))
    e = torch.from_numpy(rng.normal(size=(1, fm.exp_base.shape[1])).astype(np.float32))
    face = fm.shape(a, e)[0].numpy().astype(np.float64) - fm.mean_shape()
    ident = fm.shape(a, torch.zeros_like(e))[0].numpy().astype(np.float64) - fm.mean_shape()
    np.testing.assert_allclose(basis.identity_part(face), ident, atol=1e-4 * np.abs(ident).max())
    # the backend of a loaded model gives the same bases, built once per face model
    backend = DDFAv3Backend(type("M", (), {"face_model": fm})())
    assert backend.shape_basis() is backend.shape_basis()
    np.testing.assert_allclose(backend.shape_basis().identity, basis.identity)
    loader.clear_cache()
