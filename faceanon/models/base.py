"""Abstract face detector and reconstruction backend (one small module per implementation).

Every implementation takes and returns data in the project convention (``faceanon.types``):
RGB uint8 images of shape (H, W, 3), image coordinates x right / y down with pixel centres at
integer coordinates.
"""

from __future__ import annotations

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

    def visible_labels(self, fit: FaceFit, height: int, width: int) -> np.ndarray:
        """(height, width) uint8 visible part labels of ``fit`` (docs/conventions.md, section 3):
        by default the visible surface of the fitted mesh (:func:`faceanon.models.labels.visible_label_map`)."""
        from faceanon.models.labels import visible_label_map

        return visible_label_map(fit, height, width)
