"""Head pose of an audited face: which yaw the audit uses, and its pose bucket.

* **fitted yaw**: the run's own estimate, npz ``pose`` = (yaw, pitch, roll) in degrees (yaw > 0: the nose
  points toward the image left).
* **ground-truth yaw**: when the original photo has a sibling ``<stem>.mat`` with ``Pose_Para`` (the
  AFLW2000-3D / 300W-LP format: 1 x 7 = pitch, yaw, roll in RADIANS, then tx, ty, tz, scale), its yaw in
  degrees. Same sign convention as the fit (negative: the face turns toward the viewer's right). The file
  describes one face: with landmarks in it (``pt3d_68`` 3 x 68, rows 0-1 image x, y; or ``pt2d`` 2 x 68)
  it goes to the run face whose landmark box overlaps the ground truth's best (IoU >= 0.3); without
  landmarks only to the single face of a one-face image.

The audit prefers the ground truth and records which one it used (``pose_source`` "gt" or "fit").

Buckets of |yaw| (degrees): ``<30`` below 30, ``30-60`` from 30 to 60 inclusive, ``>60`` above 60; ""
when the yaw is unknown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

BUCKETS = ("<30", "30-60", ">60")
BUCKET_TITLES = {"<30": "below 30°", "30-60": "30–60°", ">60": "above 60°", "": "pose unknown"}
GT_MIN_IOU = 0.3


def pose_bucket(yaw_deg: Optional[float]) -> str:
    """The bucket of a yaw in degrees (sign ignored): "<30", "30-60", ">60"; "" for None/NaN."""
    if yaw_deg is None or not math.isfinite(yaw_deg):
        return ""
    a = abs(float(yaw_deg))
    if a < 30.0:
        return "<30"
    if a <= 60.0:
        return "30-60"
    return ">60"


@dataclass
class GroundTruthPose:
    """A ground-truth file's pose: yaw/pitch/roll in degrees, its 68 landmarks (68, 2) image px or None."""

    path: Path
    yaw: float
    pitch: float
    roll: float
    landmarks68: Optional[np.ndarray]


def ground_truth_file(original: Optional[Path]) -> Optional[Path]:
    """The ``.mat`` file next to an original photo (same name, ``.mat``/``.MAT``), or None."""
    if original is None:
        return None
    for suffix in (".mat", ".MAT"):
        p = Path(original).with_suffix(suffix)
        if p.is_file():
            return p
    return None


def read_ground_truth(path: Path) -> GroundTruthPose:
    """Read ``Pose_Para`` (and ``pt3d_68`` / a 2 x 68 ``pt2d``) from an AFLW2000-3D / 300W-LP ``.mat``.

    Raises ValueError (with the reason) when the file has no usable ``Pose_Para``; OSError when unreadable.
    """
    from scipy.io import loadmat  # noqa: PLC0415 - scipy is a core dependency; loaded on use

    try:
        m = loadmat(str(path))
    except (ValueError, NotImplementedError, TypeError) as exc:  # not a MATLAB v4/v5 file, or v7.3 (HDF5)
        raise ValueError(f"not a readable .mat file ({exc})") from None
    if "Pose_Para" not in m:
        raise ValueError("no Pose_Para in the file")
    pp = np.asarray(m["Pose_Para"], dtype=np.float64).reshape(-1)
    if pp.size < 3 or not np.all(np.isfinite(pp[:3])):
        raise ValueError(f"Pose_Para has {pp.size} values, expected >= 3 finite")
    pitch, yaw, roll = (math.degrees(v) for v in pp[:3])
    lm = None
    for key in ("pt3d_68", "pt2d"):
        if key in m:
            a = np.asarray(m[key], dtype=np.float64)
            if a.ndim == 2 and a.shape[0] in (2, 3) and a.shape[1] == 68 and np.all(np.isfinite(a[:2])):
                lm = a[:2].T.copy()
                break
    return GroundTruthPose(path=Path(path), yaw=yaw, pitch=pitch, roll=roll, landmarks68=lm)


def _bbox(lm: np.ndarray) -> np.ndarray:
    return np.concatenate([lm.min(axis=0), lm.max(axis=0)])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def assign_ground_truth(gt: GroundTruthPose, faces_landmarks: Sequence[Optional[np.ndarray]]) -> Optional[int]:
    """Index of the face (in ``faces_landmarks``, each (68, 2) or None) the ground truth describes, or None.

    With ground-truth landmarks: the face whose landmark box has the highest IoU with the ground truth's,
    if >= GT_MIN_IOU. Without: face 0 when there is exactly one face.
    """
    if gt.landmarks68 is None:
        return 0 if len(faces_landmarks) == 1 else None
    ref = _bbox(gt.landmarks68)
    best, best_iou = None, GT_MIN_IOU
    for i, lm in enumerate(faces_landmarks):
        if lm is None or not np.all(np.isfinite(lm)):
            continue
        iou = _iou(_bbox(np.asarray(lm, dtype=np.float64)), ref)
        if iou >= best_iou:
            best, best_iou = i, iou
    return best


def choose_yaw(fit_yaw: float, gt_yaw: Optional[float]) -> tuple[float, str]:
    """(yaw used, source): the ground truth ("gt") when given, else the fit ("fit"); (NaN, "") if neither."""
    if gt_yaw is not None and math.isfinite(gt_yaw):
        return float(gt_yaw), "gt"
    if fit_yaw is not None and math.isfinite(fit_yaw):
        return float(fit_yaw), "fit"
    return float("nan"), ""


def bucket_order(buckets: List[str]) -> List[str]:
    """The buckets present, in table order (<30, 30-60, >60, unknown)."""
    return [b for b in (*BUCKETS, "") if b in buckets]
