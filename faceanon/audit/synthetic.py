"""Build small fake ``faceanon run`` outputs (for the audit's tests and benchmarks).

The layout is the one :mod:`faceanon.audit.layout` reads; the per-face records come from 68 landmarks
(e.g. dlib's own detector + shape predictor on the original), so nothing here needs the reconstruction
pipeline. Part labels are filled landmark polygons:

* eyes 36-41 -> 1 (image-left eye), 42-47 -> 2; upper lip (48-54 outer, 64-60 inner) -> 6,
  lower lip (54-59, 48 outer, 60, 67-64 inner) -> 7; brows 17-21 -> 3, 22-26 -> 4 (thick polylines);
  nose hull 27-35 -> 5;
* skin (8) = the convex hull of the jaw line and the brows (0-26) minus all of the above.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from faceanon.io import layout
from faceanon.io.atomic import atomic_save_npz

UPPER_LIP = [48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60]
LOWER_LIP = [54, 55, 56, 57, 58, 59, 48, 60, 67, 66, 65, 64]


def labels_from_landmarks(shape_hw: Sequence[int], landmarks68: np.ndarray) -> np.ndarray:
    """(H, W) uint8 part labels 0..8 drawn from iBUG 68 landmarks (see the module doc)."""
    import cv2  # noqa: PLC0415

    h, w = int(shape_hw[0]), int(shape_hw[1])
    lm = np.asarray(landmarks68, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"landmarks68: expected (68, 2), got {lm.shape}")
    pts = np.rint(lm).astype(np.int32)
    labels = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(labels, cv2.convexHull(pts[0:27]), 8)
    skin = labels == 8
    parts = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(parts, cv2.convexHull(pts[27:36]), 5)
    iod = float(np.linalg.norm(lm[36] - lm[45]))
    thick = max(2, int(round(0.08 * iod)))
    cv2.polylines(parts, [pts[17:22]], False, 3, thick)
    cv2.polylines(parts, [pts[22:27]], False, 4, thick)
    cv2.fillPoly(parts, [pts[36:42]], 1)
    cv2.fillPoly(parts, [pts[42:48]], 2)
    cv2.fillPoly(parts, [pts[UPPER_LIP]], 6)
    cv2.fillPoly(parts, [pts[LOWER_LIP]], 7)
    labels[parts > 0] = parts[parts > 0]
    labels[(parts == 0) & ~skin] = 0
    return labels


def crude_landmarks68(cx: float = 100.0, cy: float = 100.0, scale: float = 1.0) -> np.ndarray:
    """(68, 2) iBUG landmarks of a crude frontal face (jaw arc, brows, nose, eyes, lips), about
    120 x 70 px at scale 1, centred on (cx, cy) image px: enough for :func:`labels_from_landmarks`."""
    t = np.linspace(np.pi, 2 * np.pi, 17)
    jaw = np.column_stack([60 * np.cos(t), -70 * np.sin(t)])
    brows = np.column_stack([np.r_[np.linspace(-45, -10, 5), np.linspace(10, 45, 5)], np.full(10, -30)])
    nose = np.column_stack([np.r_[np.zeros(4), np.linspace(-10, 10, 5)], np.r_[np.linspace(-20, 10, 4), np.full(5, 15)]])

    def eye(x0):
        return np.column_stack([x0 + np.array([-12, -6, 6, 12, 6, -6]), -12 + np.array([0, -5, -5, 0, 5, 5])])

    a = np.linspace(np.pi, -np.pi, 13)[:12]
    outer = np.column_stack([25 * np.cos(a), 40 + 10 * np.sin(a)])
    b = np.linspace(np.pi, -np.pi, 9)[:8]
    inner = np.column_stack([15 * np.cos(b), 40 + 2 * np.sin(b)])
    lm = np.vstack([jaw, brows, nose, eye(-25), eye(25), outer, inner])
    return (lm * scale + np.array([cx, cy])).astype(np.float64)


def landmarks5_from_68(lm: np.ndarray) -> np.ndarray:
    """(5, 2) eye centres, nose tip, mouth corners (image-left first) from 68 landmarks."""
    lm = np.asarray(lm, dtype=np.float32)
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]]).astype(np.float32)


@dataclass
class FakeFace:
    """One face of a fake run: 68 landmarks, its box, its label map, its render (RGBA/RGB uint8 or None) and
    its fitted pose (yaw, pitch, roll) in degrees."""

    landmarks68: np.ndarray
    box: np.ndarray
    labels: np.ndarray
    render: Optional[np.ndarray] = None
    score: float = 0.99
    pose: Sequence[float] = (0.0, 0.0, 0.0)


def save_projections_npz(path: Path, face: FakeFace, img_wh, face_index: int, face_count: int) -> None:
    """A projections record with the lead's key set (v2d_full/trans_params are placeholders)."""
    lm = np.asarray(face.landmarks68, np.float32)
    atomic_save_npz(
        path,
        seg_visible_labels_full=np.asarray(face.labels, np.uint8),
        v2d_full=lm.copy(),
        trans_params=np.zeros(5, np.float32),
        img_size=np.asarray(img_wh, np.int32),
        landmarks68=lm,
        landmarks5=landmarks5_from_68(lm),
        box=np.asarray(face.box, np.float32),
        score=np.float32(face.score),
        pose=np.asarray(face.pose, np.float32).reshape(3),
        backend=np.array("synthetic"),
        face_index=np.int32(face_index),
        face_count=np.int32(face_count),
    )


def write_fake_image(run_out: Path, stem: str, original: Path, composite: Optional[np.ndarray],
                     faces: List[FakeFace], composite_ext: str = ".png", composite_file: Optional[Path] = None) -> dict:
    """Write one image's outputs into ``run_out`` (the run's layout, :mod:`faceanon.io.layout`);
    returns its report entry.

    composite: (H, W, 3) uint8 written as the anonymized photo with ``composite_ext``, or
    composite_file copied byte for byte instead.
    """
    from PIL import Image  # noqa: PLC0415

    run_out = Path(run_out)
    with Image.open(original) as im:
        w, h = im.size
    folder = layout.recon_folder(run_out / layout.FACE3D, stem)
    for k, face in enumerate(faces):
        name = layout.face_name(stem, k)
        save_projections_npz(layout.recon_files(folder, name).npz, face, (w, h), k, len(faces))
        if face.render is not None:
            rp = layout.render_file(run_out / layout.RENDER, stem, name)
            rp.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.asarray(face.render, np.uint8)).save(rp)
    ad = run_out / layout.ANONYMIZED
    ad.mkdir(parents=True, exist_ok=True)
    if composite_file is not None:
        shutil.copyfile(composite_file, layout.anonymized_file(ad, stem, Path(composite_file).suffix.lower()))
    elif composite is not None:
        Image.fromarray(np.asarray(composite, np.uint8)).save(layout.anonymized_file(ad, stem, composite_ext))
    return {"input": str(Path(original).resolve()), "stem": stem, "faces": len(faces), "status": "ok"}


def write_report(run_out: Path, entries: List[dict]) -> Path:
    p = Path(run_out) / layout.REPORT
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({"images": entries}, indent=1), encoding="utf-8")
    return p


def write_ground_truth_mat(path: Path, yaw_deg: float, pitch_deg: float = 0.0, roll_deg: float = 0.0,
                           landmarks68: Optional[np.ndarray] = None, key: str = "pt3d_68") -> Path:
    """An AFLW2000-3D-style ``.mat``: ``Pose_Para`` 1 x 7 (pitch, yaw, roll in radians, then tx, ty, tz,
    scale) and, if given, the landmarks as ``pt3d_68`` (3 x 68, z = 0) or ``pt2d`` (2 x 68)."""
    from scipy.io import savemat  # noqa: PLC0415

    d = {"Pose_Para": np.array([[np.radians(pitch_deg), np.radians(yaw_deg), np.radians(roll_deg), 0, 0, 0, 1]])}
    if landmarks68 is not None:
        lm = np.asarray(landmarks68, np.float64).T
        d[key] = np.vstack([lm, np.zeros((1, 68))]) if key == "pt3d_68" else lm
    savemat(str(path), d)
    return Path(path)


def grey_out(rgb: np.ndarray, labels: np.ndarray, value: int = 128) -> np.ndarray:
    """A copy of ``rgb`` whose labelled face (labels > 0) is one flat grey."""
    out = np.array(rgb, copy=True)
    out[np.asarray(labels) > 0] = value
    return out


def face_crop_rgba(rgb: np.ndarray, landmarks68: np.ndarray, margin: float = 0.5) -> np.ndarray:
    """An opaque RGBA crop around the face (landmark box grown by ``margin`` of its size on each side)."""
    lm = np.asarray(landmarks68, dtype=np.float64)
    (x1, y1), (x2, y2) = lm.min(0), lm.max(0)
    mx, my = margin * (x2 - x1), margin * (y2 - y1)
    h, w = rgb.shape[:2]
    xa, ya = max(0, int(x1 - mx)), max(0, int(y1 - my))
    xb, yb = min(w, int(np.ceil(x2 + mx)) + 1), min(h, int(np.ceil(y2 + my)) + 1)
    crop = rgb[ya:yb, xa:xb, :3]
    return np.dstack([crop, np.full(crop.shape[:2], 255, np.uint8)])


def fake_faces_from_dlib(models, rgb: np.ndarray) -> List[FakeFace]:
    """FakeFace records for every face dlib finds in ``rgb`` (landmarks from its shape predictor)."""
    out = []
    for f in models.detect(rgb):
        out.append(FakeFace(landmarks68=f.landmarks68, box=f.rect.astype(np.float32),
                            labels=labels_from_landmarks(rgb.shape[:2], f.landmarks68), score=min(1.0, f.score)))
    return out
