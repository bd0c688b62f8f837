"""Cached model loading: each detector/backend is built once per process and options.

This is the only module of ``faceanon.models`` that talks to the asset store; the model classes
take explicit file paths. Usage::

    from faceanon.assets import get_store
    store = get_store()
    detector = get_detector(store, threshold=0.5, min_face_size=40)
    backend = get_backend(store, "lite")
    fits = [backend.fit(rgb, d) for d in detector.detect(rgb)]
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from faceanon.cache import BoundedCache
from faceanon.errors import UsageError
from faceanon.models.base import FaceDetector, ReconstructionBackend

LITE = "lite"
V3 = "3ddfa-v3"
MODELS = (LITE, V3)

#: every model loaded in this process, by its files and options (a handful: never evicted)
_CACHE: BoundedCache[object] = BoundedCache(None)


def _cached(key: tuple, build: Callable[[], object]):
    # built outside the cache's lock: loading can take a while; a racing duplicate is harmless
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


def _lite_bfm(store):
    from faceanon.models.bfm import BFMSources, load_bfm

    sources = BFMSources.from_resolver(store.require)
    hashes = {role: _known_sha256(store, name) for role, name in BFMSources.NAMES.items()}
    cache_dir = Path(store.derived_dir)
    return _cached(("bfm", str(cache_dir), tuple(str(p) for _, p in sources.items())),
                   lambda: load_bfm(sources, cache_dir, source_sha256=hashes))


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise UsageError(f"unknown model {model!r} (available: {', '.join(MODELS)})",
                         hint=f"use --model {LITE}")


def _v3_model(store):
    """The one 3DDFA-V3 instance (detector + landmark net + reconstruction net + face model)."""
    from faceanon.models.ddfa_v3_backend import V3_FILES, project_errors

    paths = {arg: store.require(name) for arg, name in V3_FILES.items()}

    def build():
        from ddfa_v3.model import DDFAv3

        with project_errors():
            return DDFAv3(**paths)

    return _cached(("v3", tuple(sorted((k, str(p)) for k, p in paths.items()))), build)


def get_detector(store, model: str = LITE, *, threshold: float | None = None, min_face_size: float = 0.0,
                 max_faces: int | None = None, max_side: int | None = 1600) -> FaceDetector:
    """The face detector of ``model`` (``lite``: CenterFace; ``3ddfa-v3``: its RetinaFace), loaded
    once per options.

    threshold: score threshold, None = the model's default (lite 0.5, 3ddfa-v3 0.7);
    min_face_size: minimum box mean side in px; max_faces: keep at most this many (highest score
    first), None = all; max_side (lite only): detect on a copy downscaled to this long side when
    the image is larger.
    """
    _check_model(model)
    max_faces = int(max_faces) if max_faces else None
    if model == V3:
        from faceanon.models.ddfa_v3_backend import DDFAv3Detector

        m = _v3_model(store)
        source = m
        if threshold is not None and float(threshold) != m.detector.score_threshold:
            from ddfa_v3.retinaface import RetinaFaceDetector

            # same network, another threshold: a second light wrapper, not a second model
            source = RetinaFaceDetector(m.retina_net, float(threshold), m.detector.nms_threshold)
        return DDFAv3Detector(source, min_face_size=min_face_size, max_faces=max_faces)

    from faceanon.models.centerface import CenterFace

    path = store.require("detectors/centerface.onnx")
    opts = dict(threshold=0.5 if threshold is None else float(threshold), min_face_size=float(min_face_size),
                max_faces=max_faces, max_side=max_side)
    return _cached(("detector", model, str(path), tuple(sorted(opts.items()))),
                   lambda: CenterFace(path, **opts))


def get_backend(store, name: str = LITE, *, refine: bool = True) -> ReconstructionBackend:
    """The reconstruction backend ``name`` (``lite`` or ``3ddfa-v3``), loaded once per process.
    refine (lite only): run the second, landmark-ROI pass."""
    _check_model(name)
    if name == V3:
        from faceanon.models.ddfa_v3_backend import DDFAv3Backend

        return DDFAv3Backend(_v3_model(store))

    from faceanon.models.bfm import load_param_stats
    from faceanon.models.lite import LiteBackend
    from faceanon.models.mb05 import load_mb05

    ckpt = store.require("3ddfa_v2/mb05_120x120.pth")
    stats = store.require("3ddfa_v2/param_mean_std_62d_120x120.pkl")
    bfm = _lite_bfm(store)

    def build() -> LiteBackend:
        mean, std = load_param_stats(stats)
        return LiteBackend(load_mb05(ckpt), mean, std, bfm, refine=refine)

    return _cached(("backend", name, str(ckpt), str(stats), id(bfm), refine), build)


def required_assets(model: str = LITE) -> list[str]:
    """The asset names ``model`` actually loads (a run verifies exactly these before any work)."""
    if model == V3:
        from faceanon.models.ddfa_v3_backend import V3_FILES

        return list(V3_FILES.values())
    _check_model(model)
    from faceanon.models.bfm import BFMSources

    return ["detectors/centerface.onnx", "3ddfa_v2/mb05_120x120.pth", "3ddfa_v2/param_mean_std_62d_120x120.pkl",
            *BFMSources.NAMES.values()]


def get_mean_face(store, model: str = LITE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean_vertices (N, 3) float32 model frame y up, triangles (M, 3) int32 project winding,
    uv (N, 2) float32) of ``model``'s face model."""
    _check_model(model)
    if model == V3:
        from faceanon.models.ddfa_v3_backend import V3_FILES, project_errors

        fm_path = store.require(V3_FILES["face_model"])
        # a run that loaded the whole model already has it
        full = next((m for k, m in _CACHE.items() if k[0] == "v3" and ("face_model", str(fm_path)) in k[1]), None)
        if full is not None:
            return full.mean_vertices, full.triangles, full.face_model.uv

        def build():  # only the face model file: no networks for `faceanon anonymize`
            from ddfa_v3.face_model import FaceModel
            from ddfa_v3.model import mean_face

            with project_errors():
                fm = FaceModel(fm_path)
            mean, tri, _ = mean_face(fm)
            return mean, tri, fm.uv

        return _cached(("v3-mean", str(fm_path)), build)
    bfm = _lite_bfm(store)
    return bfm.mean_vertices, bfm.triangles, bfm.uv
