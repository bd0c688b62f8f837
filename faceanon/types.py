"""Typed records that cross the stages (docs/architecture.md; conventions in docs/conventions.md).

Conventions (every model converts to these once, at its boundary):

* image coordinates: x right, y down, pixel centres at integer coordinates, origin top-left;
* depth ``z``: larger = nearer the camera (the rasterizer keeps the largest z);
* triangles: outward-facing, counter-clockwise when seen from the front in a y-UP frame (the OBJ
  convention). In image space (y down) a front-facing triangle therefore has a NEGATIVE signed
  area ``(x1-x0)*(y2-y0) - (x2-x0)*(y1-y0)``;
* UVs: u right, v up (OBJ); texture PNG row 0 is v = 1;
* part labels (3DDFA-V3): 0 background, 1 right eye (subject's right = image left), 2 left eye,
  3 right brow, 4 left brow, 5 nose, 6 upper lip, 7 lower lip, 8 skin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

LABEL_NAMES = {
    0: "background",
    1: "right_eye",
    2: "left_eye",
    3: "right_brow",
    4: "left_brow",
    5: "nose",
    6: "upper_lip",
    7: "lower_lip",
    8: "skin",
}
EYE_LABELS = (1, 2)
BROW_LABELS = (3, 4)
LIP_LABELS = (6, 7)


def removal_parts(*, keep_mouth: bool = False, brows: bool = False) -> tuple[int, ...]:
    """The part labels an anonymization removes: the eyes always, the lips unless ``keep_mouth``,
    the eyebrows when ``brows`` (replaced by the mean face's brows, see faceanon/stages/features.py)."""
    return EYE_LABELS + (() if keep_mouth else LIP_LABELS) + (BROW_LABELS if brows else ())


@dataclass
class Detection:
    """One detected face in image coordinates.

    box: (4,) float32 [x1, y1, x2, y2]; score: float in [0, 1];
    landmarks5: (5, 2) float32 - image-left eye, image-right eye, nose tip, image-left mouth
    corner, image-right mouth corner.
    """

    box: np.ndarray
    score: float
    landmarks5: np.ndarray

    @property
    def size(self) -> float:
        """Mean side length of the box in pixels."""
        return float(((self.box[2] - self.box[0]) + (self.box[3] - self.box[1])) / 2)


@dataclass
class FaceFit:
    """A reconstructed face, everything in the full image's pixel frame.

    vertices:       (N, 3) float32, x right / y down image px, z larger = nearer (min z = 0 not required)
    triangles:      (M, 3) int32, outward CCW in a y-up frame (see module doc)
    uv:             (N, 2) float32 in [0, 1], u right, v up
    vertex_labels:  (N,) uint8 part label per vertex (0..8)
    landmarks68:    (68, 2) float32 image px (iBUG order)
    pose:           (3,) float32 yaw, pitch, roll in degrees (yaw > 0: nose toward image left;
                    pitch > 0: looking down; roll > 0: head rotated counter-clockwise on screen)
    model_vertices: (N, 3) float32 the fitted shape in the model's canonical frame (y up, z toward
                    viewer, model units), i.e. before pose/projection
    mean_vertices:  (N, 3) float32 the population mean face in the same canonical frame
    trans_params:   (5,) float32 [W, H, s, tx, ty] (3DDFA-V3 meaning; the lite backend stores its
                    ROI equivalent, see README)
    detection:      the Detection the fit came from
    backend:        "lite" or "3ddfa-v3"
    landmark_ids:   optional (68,) int64 vertex ids of the iBUG-68 landmarks in the mesh (the
                    identity-free eyes and lips are drawn from the mean face at these vertices)
    """

    vertices: np.ndarray
    triangles: np.ndarray
    uv: np.ndarray
    vertex_labels: np.ndarray
    landmarks68: np.ndarray
    pose: np.ndarray
    model_vertices: np.ndarray
    mean_vertices: np.ndarray
    trans_params: np.ndarray
    detection: Detection
    backend: str
    extras: dict = field(default_factory=dict)
    landmark_ids: Optional[np.ndarray] = None

    @property
    def v2d(self) -> np.ndarray:
        """(N, 2) float32 per-vertex projection in image px."""
        return np.ascontiguousarray(self.vertices[:, :2], dtype=np.float32)

    @property
    def inter_ocular(self) -> float:
        """Distance between the outer eye corners (landmarks 36 and 45) in px."""
        return float(np.linalg.norm(self.landmarks68[36] - self.landmarks68[45]))


@dataclass
class ImageRecord:
    """A decoded input image (EXIF orientation already applied).

    rgb: (H, W, 3) uint8 RGB; icc: the ICC profile bytes or None; fmt: the PIL format name
    ("JPEG", "PNG"...); jpeg_quality: estimated quality of a JPEG input, else None.
    """

    path: "object"
    rgb: np.ndarray
    icc: Optional[bytes] = None
    fmt: Optional[str] = None
    jpeg_quality: Optional[int] = None
    orientation: int = 1

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def bgr(self) -> np.ndarray:
        return np.ascontiguousarray(self.rgb[:, :, ::-1])
