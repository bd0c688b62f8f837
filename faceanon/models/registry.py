"""The model sets faceanon runs (``--model``): one :class:`ModelSpec` per set, in the style of
rembg's sessions.

A spec names the set, lists its asset files (what ``faceanon assets download/list/verify --model``
handle, and the subset a run loads and verifies first), and builds its detector, its
reconstruction backend and its mean face from an asset store. The loader
(:mod:`faceanon.models.loader`), the asset commands, the ``--model`` option, the units of the OBJ
files (:mod:`faceanon.models.units`) and ``required_assets`` all read :data:`MODELS`; adding a model
set is adding a spec here (and its files to :mod:`faceanon.assets.manifest`).

Importing this module is cheap: the builders import their model code (torch, the 3DDFA-V3
networks) only when called. Every built model is kept in one process-wide cache (:func:`cached`),
keyed by its files and options, so a model is loaded once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from faceanon.cache import BoundedCache
from faceanon.errors import UsageError

__all__ = ["ModelSpec", "DetectorSettings", "MODELS", "MODEL_NAMES", "DEFAULT_MODEL", "LITE", "V3", "get_model",
           "model_of_mesh", "cached", "clear_cache"]

LITE = "lite"
V3 = "3ddfa-v3"


@dataclass(frozen=True)
class DetectorSettings:
    """How a detector filters its faces: ``threshold`` (None: the model's own default),
    ``min_face_size`` (box mean side, px), ``max_faces`` (None: all), ``max_side`` (detect on a copy
    downscaled to this long side, where the detector supports it)."""

    threshold: float | None = None
    min_face_size: float = 0.0
    max_faces: int | None = None
    max_side: int | None = 1600


@dataclass(frozen=True)
class ModelSpec:
    """One model set.

    name:          the ``--model`` value (also ``FaceFit.backend`` and the npz ``backend`` key)
    summary:       one line for help texts
    threshold:     the detector's default score threshold
    vertex_count:  vertices of the model's mesh (recognises the model of an OBJ file)
    mm_per_unit:   millimetres per unit of the model's canonical frame (docs/conventions.md, "Units")
    detector:      ``detector(store, DetectorSettings) -> FaceDetector``
    backend:       ``backend(store, refine: bool) -> ReconstructionBackend``
    mean_face:     ``mean_face(store) -> (mean_vertices (N, 3) float32 y up, triangles (M, 3) int32,
                   uv (N, 2) float32)``
    shape_basis:   ``shape_basis(store) -> faceanon.models.base.ShapeBasis`` (identity and expression
                   bases in the mean face's frame), or None when the model has none
    """

    name: str
    summary: str
    threshold: float
    vertex_count: int
    mm_per_unit: float
    detector: Callable
    backend: Callable
    mean_face: Callable
    _loads: Callable[[], tuple[str, ...]]
    shape_basis: Callable = lambda store: None

    @property
    def assets(self) -> tuple[str, ...]:
        """Every asset file of the set (the manifest's entries of this model), downloaded and
        verified together by ``faceanon assets``."""
        from faceanon.assets.manifest import ENTRIES

        return tuple(e.name for e in ENTRIES if e.model == self.name)

    @property
    def loads(self) -> tuple[str, ...]:
        """The asset files a run of this model loads (verified before any work)."""
        return self._loads()


# ------------------------------------------------------------------------------------ the cache

#: every model loaded in this process, by its files and options (a handful: never evicted)
_CACHE: BoundedCache[object] = BoundedCache(None)


def cached(key: tuple, build: Callable[[], object]):
    """The object built by ``build()`` for ``key``, built once per process (outside the cache's
    lock: loading can take a while; a racing duplicate is harmless)."""
    return _CACHE.get_or_build(key, build)


def clear_cache() -> None:
    """Forget every loaded model (tests; after the asset files changed)."""
    _CACHE.clear()


def _known_sha256(store, name: str) -> str | None:
    """The sha256 the store verified ``name`` against (None when it does not know one)."""
    try:
        return store.expected_sha256(store.entry(name))
    except AttributeError:
        return None


# ------------------------------------------------------------------------------------ lite

_LITE_DETECTOR = "detectors/centerface.onnx"
_LITE_CKPT = "3ddfa_v2/mb05_120x120.pth"
_LITE_STATS = "3ddfa_v2/param_mean_std_62d_120x120.pkl"


def _lite_bfm(store):
    from faceanon.models.bfm import BFMSources, load_bfm

    sources = BFMSources.from_resolver(store.require)
    hashes = {role: _known_sha256(store, name) for role, name in BFMSources.NAMES.items()}
    cache_dir = Path(store.derived_dir)
    return cached(("bfm", str(cache_dir), tuple(str(p) for _, p in sources.items())),
                  lambda: load_bfm(sources, cache_dir, source_sha256=hashes))


def _lite_detector(store, s: DetectorSettings):
    from faceanon.models.centerface import CenterFace

    path = store.require(_LITE_DETECTOR)
    opts = dict(threshold=MODELS[LITE].threshold if s.threshold is None else float(s.threshold),
                min_face_size=float(s.min_face_size), max_faces=s.max_faces, max_side=s.max_side)
    return cached(("detector", LITE, str(path), tuple(sorted(opts.items()))), lambda: CenterFace(path, **opts))


def _lite_backend(store, refine: bool = True):
    from faceanon.models.bfm import load_param_stats
    from faceanon.models.lite import LiteBackend
    from faceanon.models.mb05 import load_mb05

    ckpt, stats = store.require(_LITE_CKPT), store.require(_LITE_STATS)
    bfm = _lite_bfm(store)

    def build():
        mean, std = load_param_stats(stats)
        return LiteBackend(load_mb05(ckpt), mean, std, bfm, refine=refine)

    return cached(("backend", LITE, str(ckpt), str(stats), id(bfm), refine), build)


def _lite_mean_face(store):
    bfm = _lite_bfm(store)
    return bfm.mean_vertices, bfm.triangles, bfm.uv


def _lite_shape_basis(store):
    return _lite_bfm(store).shape_basis


def _lite_loads() -> tuple[str, ...]:
    from faceanon.models.bfm import BFMSources

    return (_LITE_DETECTOR, _LITE_CKPT, _LITE_STATS, *BFMSources.NAMES.values())


# ------------------------------------------------------------------------------------ 3DDFA-V3

#: constructor argument of ``ddfa_v3.model.DDFAv3`` -> asset name
V3_FILES = {
    "net_recon": "3ddfa_v3/net_recon.pth",
    "face_model": "3ddfa_v3/face_model.npy",
    "large_base_net": "3ddfa_v3/large_base_net.pth",
    "retinaface": "3ddfa_v3/retinaface_resnet50_2020-07-20_old_torch.pth",
    "similarity_lm3d": "3ddfa_v3/similarity_Lm3D_all.mat",
}


def _v3_model(store):
    """The one 3DDFA-V3 instance (detector + landmark net + reconstruction net + face model)."""
    from faceanon.models.ddfa_v3_backend import project_errors

    paths = {arg: store.require(name) for arg, name in V3_FILES.items()}

    def build():
        from ddfa_v3.model import DDFAv3

        with project_errors():
            return DDFAv3(**paths)

    return cached(("v3", tuple(sorted((k, str(p)) for k, p in paths.items()))), build)


def _v3_detector(store, s: DetectorSettings):
    from faceanon.models.ddfa_v3_backend import DDFAv3Detector

    m = _v3_model(store)
    source = m
    threshold = MODELS[V3].threshold if s.threshold is None else float(s.threshold)
    if threshold != m.detector.score_threshold:
        from ddfa_v3.retinaface import RetinaFaceDetector

        # same network, another threshold: a second light wrapper, not a second model
        source = RetinaFaceDetector(m.retina_net, threshold, m.detector.nms_threshold)
    return DDFAv3Detector(source, min_face_size=s.min_face_size, max_faces=s.max_faces)


def _v3_backend(store, refine: bool = True):
    from faceanon.models.ddfa_v3_backend import DDFAv3Backend

    return DDFAv3Backend(_v3_model(store))


def _v3_loaded(fm_path):
    """The whole 3DDFA-V3 model already loaded in this process with the face model ``fm_path``, or None."""
    return next((m for k, m in _CACHE.items() if k[0] == "v3" and ("face_model", str(fm_path)) in k[1]), None)


def _v3_mean_face(store):
    from faceanon.models.ddfa_v3_backend import project_errors

    fm_path = store.require(V3_FILES["face_model"])
    # a run that loaded the whole model already has it
    full = _v3_loaded(fm_path)
    if full is not None:
        return full.mean_vertices, full.triangles, full.face_model.uv

    def build():  # only the face model file: no networks for `faceanon anonymize`
        from ddfa_v3.face_model import FaceModel
        from ddfa_v3.model import mean_face

        with project_errors():
            fm = FaceModel(fm_path)
        mean, tri, _ = mean_face(fm)
        return mean, tri, fm.uv

    return cached(("v3-mean", str(fm_path)), build)


def _v3_shape_basis(store):
    from faceanon.models.ddfa_v3_backend import face_model_basis, project_errors

    fm_path = store.require(V3_FILES["face_model"])
    full = _v3_loaded(fm_path)
    if full is not None:
        return face_model_basis(full.face_model)

    def build():  # the face model file alone (`faceanon anonymize` loads no network)
        from ddfa_v3.face_model import FaceModel

        with project_errors():
            return face_model_basis(FaceModel(fm_path))

    return cached(("v3-basis", str(fm_path)), build)


# ------------------------------------------------------------------------------------ the table


#: every model set, by name; the first is the default
MODELS: dict[str, ModelSpec] = {
    LITE: ModelSpec(
        name=LITE, summary="lite (default, CPU-fast)", threshold=0.5,
        vertex_count=38365, mm_per_unit=1e-3,  # the Basel Face Model's micrometres
        detector=_lite_detector, backend=_lite_backend, mean_face=_lite_mean_face, _loads=_lite_loads,
        shape_basis=_lite_shape_basis),
    V3: ModelSpec(
        name=V3, summary="3ddfa-v3", threshold=0.7,
        vertex_count=35709, mm_per_unit=100.0,  # the Deep3DFaceRecon BFM's 100 mm
        detector=_v3_detector, backend=_v3_backend, mean_face=_v3_mean_face, _loads=lambda: tuple(V3_FILES.values()),
        shape_basis=_v3_shape_basis),
}
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)
DEFAULT_MODEL = LITE


def get_model(name: str) -> ModelSpec:
    """The spec of model set ``name``; an unknown name is a :class:`UsageError`."""
    spec = MODELS.get(name)
    if spec is None:
        raise UsageError(f"unknown model {name!r} (available: {', '.join(MODEL_NAMES)})",
                         hint=f"use --model {DEFAULT_MODEL}")
    return spec


def model_of_mesh(vertices: np.ndarray) -> ModelSpec | None:
    """The model set whose mesh has as many vertices as ``vertices`` (N, 3), or None."""
    n = int(np.shape(vertices)[0])
    return next((s for s in MODELS.values() if s.vertex_count == n), None)
