"""Adapters of the 3DDFA-V3 model (package ``ddfa_v3``) to the project's detector/backend interfaces.

One :class:`ddfa_v3.model.DDFAv3` instance (detector + landmark net + reconstruction net + face
model) is shared by the detector and the backend; it is loaded once per process by
:mod:`faceanon.models.loader`.

This is the package boundary: ``ddfa_v3`` imports nothing from ``faceanon``, so its records
(:class:`ddfa_v3.retinaface.FaceBox`, the :meth:`~ddfa_v3.model.DDFAv3.fit` dict) become
:class:`~faceanon.types.Detection` / :class:`~faceanon.types.FaceFit` here, and its errors
(:mod:`ddfa_v3.errors`) become the project's family (:func:`project_errors`).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from faceanon import errors
from faceanon.models.base import FaceDetector, ReconstructionBackend, as_rgb_uint8
from faceanon.models.registry import V3 as NAME
from faceanon.types import Detection, FaceFit


@contextmanager
def project_errors():
    """Re-raise a :class:`ddfa_v3.errors.DDFAv3Error` as the project error of the same name
    (CheckpointError, AssetError, ImageError, NoFaceError), message and hint unchanged."""
    from ddfa_v3 import errors as v3_errors

    try:
        yield
    except v3_errors.DDFAv3Error as exc:
        cls = getattr(errors, type(exc).__name__, errors.FaceanonError)
        raise cls(exc.message, exc.hint) from exc


def face_model_basis(fm):
    """The :class:`faceanon.models.base.ShapeBasis` of a ``ddfa_v3.face_model.FaceModel`` (built once
    per face model object)."""
    from faceanon.models.base import ShapeBasis

    basis = getattr(fm, "_faceanon_basis", None)
    if basis is None:
        basis = ShapeBasis(fm.id_base.numpy(), fm.exp_base.numpy())
        fm._faceanon_basis = basis
    return basis


def to_detection(face) -> Detection:
    """A :class:`ddfa_v3.retinaface.FaceBox` as a :class:`faceanon.types.Detection` (same fields)."""
    return Detection(box=np.asarray(face.box, np.float32), score=float(face.score),
                     landmarks5=np.asarray(face.landmarks5, np.float32))


def to_facefit(result: dict, detection: Detection, backend: str = NAME) -> FaceFit:
    """Wrap a :meth:`ddfa_v3.model.DDFAv3.fit` dict as a :class:`FaceFit` (other keys go to extras)."""
    from ddfa_v3.model import FACEFIT_KEYS

    fields = {k: result[k] for k in FACEFIT_KEYS}
    extras = {k: v for k, v in result.items() if k not in FACEFIT_KEYS}
    return FaceFit(detection=detection, backend=backend, extras=extras, **fields)


class DDFAv3Detector(FaceDetector):
    """RetinaFace-ResNet50 of 3DDFA-V3, with the project's size and count filters."""

    def __init__(self, model, *, min_face_size: float = 0.0, max_faces: int | None = None) -> None:
        self.model = model
        self.min_face_size = float(min_face_size)
        self.max_faces = max_faces

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        return self.detect_with_rejected(rgb)[0]

    def detect_with_rejected(self, rgb: np.ndarray) -> tuple[list[Detection], list[Detection]]:
        with project_errors():
            found = [to_detection(f) for f in self.model.detect(as_rgb_uint8(rgb))]
        dets = [d for d in found if d.size >= self.min_face_size]
        dets.sort(key=lambda d: -d.score)
        return (dets[: self.max_faces] if self.max_faces else dets), [d for d in found if d.size < self.min_face_size]


class DDFAv3Backend(ReconstructionBackend):
    """3DDFA-V3 reconstruction (106 landmarks -> POS crop -> ResNet-50 -> BFM front face)."""

    name = NAME

    def __init__(self, model) -> None:
        self.model = model

    def shape_basis(self):
        """The face model's identity (``id``) and expression (``exp``) bases."""
        return face_model_basis(self.model.face_model)

    def fit(self, rgb: np.ndarray, detection: Detection) -> FaceFit:
        from faceanon.raster import rasterize

        from faceanon.models.topology import closed_triangles

        with project_errors():
            result = self.model.fit(as_rgb_uint8(rgb), detection, rasterize)
        fit = to_facefit(result, detection, backend=NAME)
        # the opening between the lips is closed as for the lite model (see faceanon/models/topology.py)
        fit.triangles = closed_triangles(fit.mean_vertices, fit.triangles)
        fit.landmark_ids = np.asarray(self.model.face_model.ldm68, np.int64)
        return fit

    def visible_labels(self, fit: FaceFit, height: int, width: int) -> np.ndarray:
        """The seed's label map, computed by the model in its 224 crop (``ddfa_v3/model.py``)."""
        labels = fit.extras.get("seg_visible_labels_full")
        return super().visible_labels(fit, height, width) if labels is None else labels
