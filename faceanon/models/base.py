"""Abstract face detector and reconstruction backend (one small module per implementation).

Every implementation takes and returns data in the project convention (``faceanon.types``):
RGB uint8 images of shape (H, W, 3), image coordinates x right / y down with pixel centres at
integer coordinates.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

import numpy as np

from faceanon.checks import check_image
from faceanon.errors import ImageError
from faceanon.types import Detection, FaceFit


def as_rgb_uint8(image: np.ndarray, name: str = "rgb") -> np.ndarray:
    """Check an image argument and return it as a C-contiguous (H, W, 3) uint8 RGB array.

    Accepts (H, W) or (H, W, 1) grey and (H, W, 4) RGBA (alpha dropped) uint8 arrays as a
    convenience; anything else raises :class:`ImageError` naming the argument.
    """
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{name} must be a numpy array, got {type(image).__name__}")
    image = check_image(image[:, :, None] if image.ndim == 2 else image, name, channels=(3, 1, 4), error=ImageError)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image)


class ShapeBasis:
    """A face model's linear shape bases, to tell a fitted face's identity from its expression.

    identity:   (3N, K) float, the identity (shape) basis, rows interleaved x, y, z per vertex
    expression: (3N, E) float, the expression basis (same rows)

    Both in the model's canonical frame (the frame of its mean face: y up, z toward the viewer,
    model units). A face of the model is ``mean + identity @ a + expression @ e``;
    :meth:`identity_part` recovers ``identity @ a`` from a deviation ``face - mean`` by least squares
    on both bases together (so the expression, and whatever neither basis spans, are left out). Used
    by the morph past the mean face (``--alpha`` above 1, docs/anonymization.md, "Past the mean face").
    """

    def __init__(self, identity: np.ndarray, expression: np.ndarray) -> None:
        ident = np.asarray(identity, np.float32)
        expr = np.asarray(expression, np.float32)
        if ident.ndim != 2 or expr.ndim != 2 or ident.shape[0] != expr.shape[0] or ident.shape[0] % 3:
            raise ValueError(f"bases must be (3N, K) and (3N, E) with the same 3N rows, got {ident.shape} "
                             f"and {expr.shape}")
        self.identity = ident
        self.expression = expr
        self._solve: np.ndarray | None = None
        self._lock = threading.Lock()

    @property
    def n_vertices(self) -> int:
        return self.identity.shape[0] // 3

    def _identity_solver(self) -> np.ndarray:
        """(K, 3N) float64: the rows of the joint basis' pseudo-inverse that give the identity
        coefficients (computed once: 0.7 s and 37 MB for the lite model's 115k x 50 bases; float64
        because they cancel the expression basis' share: float32 left 3 % of the identity wrong)."""
        with self._lock:
            if self._solve is None:
                joint = np.concatenate([self.identity, self.expression], axis=1).astype(np.float64)
                self._solve = np.ascontiguousarray(np.linalg.pinv(joint)[: self.identity.shape[1]])
            return self._solve

    def identity_part(self, deviation: np.ndarray) -> np.ndarray:
        """deviation (N, 3) float, a face minus the mean face (canonical frame) -> (N, 3) float64 its
        identity component ``identity @ a`` (least squares, see the class doc)."""
        d = np.asarray(deviation, np.float64)
        if d.shape != (self.n_vertices, 3):
            raise ValueError(f"deviation must be ({self.n_vertices}, 3), got {d.shape}")
        a = self._identity_solver() @ d.reshape(-1)
        return (self.identity @ a.astype(np.float32)).reshape(-1, 3).astype(np.float64)


class FaceDetector(ABC):
    """Finds every face in an image.

    min_face_size: the smallest box mean side (px) the detector keeps; 0 = no size filter.
    """

    min_face_size: float = 0.0

    @abstractmethod
    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Detect faces.

        rgb: (H, W, 3) uint8 RGB image.
        Returns one :class:`Detection` per face (image px), highest score first; an empty list
        when there is none.
        """

    def detect_with_rejected(self, rgb: np.ndarray) -> tuple[list[Detection], list[Detection]]:
        """:meth:`detect`, plus the faces its minimum-size filter dropped (so "no face found" can
        say that a face was seen but was too small). Detectors without a size filter: ``[]``."""
        return self.detect(rgb), []


class ReconstructionBackend(ABC):
    """Fits a 3D face model to one detected face."""

    #: short backend identifier stored in ``FaceFit.backend``
    name: str = ""

    @abstractmethod
    def fit(self, rgb: np.ndarray, detection: Detection) -> FaceFit:
        """Reconstruct the face of ``detection`` in ``rgb`` ((H, W, 3) uint8 RGB)."""

    def shape_basis(self) -> "ShapeBasis | None":
        """The model's identity and expression bases (:class:`ShapeBasis`), or None when the backend
        cannot separate them (the morph past the mean face then pushes the whole deviation)."""
        return None

    def visible_labels(self, fit: FaceFit, height: int, width: int) -> np.ndarray:
        """(height, width) uint8 visible part labels of ``fit`` (docs/conventions.md, section 3):
        by default the visible surface of the fitted mesh (:func:`faceanon.models.labels.visible_label_map`)."""
        from faceanon.models.labels import visible_label_map

        return visible_label_map(fit, height, width)
