"""Cached model loading: each detector/backend is built once per process and options.

Every function reads the spec of the named model set in :mod:`faceanon.models.registry`, whose
builders are the only code of ``faceanon.models`` that talks to the asset store (the model classes
take explicit file paths). Usage::

    from faceanon.assets import get_store
    store = get_store()
    detector = get_detector(store, threshold=0.5, min_face_size=40)
    backend = get_backend(store, "lite")
    fits = [backend.fit(rgb, d) for d in detector.detect(rgb)]
"""

from __future__ import annotations

import numpy as np

from faceanon.models.base import FaceDetector, ReconstructionBackend
from faceanon.models.registry import DEFAULT_MODEL, MODEL_NAMES, DetectorSettings, clear_cache, get_model

__all__ = ["MODELS", "get_detector", "get_backend", "get_mean_face", "get_shape_basis", "required_assets",
           "clear_cache"]

#: the names of the model sets (``--model``)
MODELS = MODEL_NAMES


def get_detector(store, model: str = DEFAULT_MODEL, *, threshold: float | None = None, min_face_size: float = 0.0,
                 max_faces: int | None = None, max_side: int | None = 1600) -> FaceDetector:
    """The face detector of ``model`` (``lite``: CenterFace; ``3ddfa-v3``: its RetinaFace), loaded
    once per options.

    threshold: score threshold, None = the model's default (:attr:`ModelSpec.threshold`);
    min_face_size: minimum box mean side in px; max_faces: keep at most this many (highest score
    first), None or 0 = all; max_side (lite only): detect on a copy downscaled to this long side
    when the image is larger.
    """
    spec = get_model(model)
    settings = DetectorSettings(threshold=threshold, min_face_size=min_face_size,
                                max_faces=int(max_faces) if max_faces else None, max_side=max_side)
    return spec.detector(store, settings)


def get_backend(store, name: str = DEFAULT_MODEL, *, refine: bool = True) -> ReconstructionBackend:
    """The reconstruction backend ``name`` (``lite`` or ``3ddfa-v3``), loaded once per process.
    refine (lite only): run the second, landmark-ROI pass."""
    return get_model(name).backend(store, refine)


def required_assets(model: str = DEFAULT_MODEL) -> list[str]:
    """The asset names ``model`` actually loads (a run verifies exactly these before any work)."""
    return list(get_model(model).loads)


def get_mean_face(store, model: str = DEFAULT_MODEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean_vertices (N, 3) float32 model frame y up, triangles (M, 3) int32 project winding,
    uv (N, 2) float32) of ``model``'s face model."""
    return get_model(model).mean_face(store)


def get_shape_basis(store, model: str = DEFAULT_MODEL):
    """The identity and expression bases of ``model``'s face model
    (:class:`faceanon.models.base.ShapeBasis`), or None when it has none; loaded once per process."""
    return get_model(model).shape_basis(store)
