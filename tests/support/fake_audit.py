"""A test double of a face recognizer for the audit, and small fake runs built around it (no dlib).

:class:`RegionMean` implements the audit's recognizer interface (``faceanon.audit.recognizer.Recognizer``)
with a descriptor whose answer is known by construction: the mean RGB colour of one region placed
relative to the landmarks' bounding box.

* ``where="face"``: the central half of the landmark box - what a recognizer of the face itself sees;
  the eraser's grey box covers it.
* ``where="context"``: the ring between 1.4x and 1.8x the box's half-size around its centre - hair and
  background; outside the eraser's grey box (grown by only 5 % of the face size).

Distance: Euclidean between the mean colours (RGB units), same person below ``threshold`` (4).
Its detector "finds" every face it was told about whose central region is textured (standard
deviation > 20), i.e. it loses a face painted flat.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from faceanon.audit import synthetic as S
from faceanon.audit.recognizer import FreshFace, Recognizer


def _box(lm: np.ndarray) -> np.ndarray:
    lm = np.asarray(lm, dtype=np.float64)
    return np.concatenate([lm.min(axis=0), lm.max(axis=0)])


def region_mask(shape_hw, landmarks68: np.ndarray, where: str) -> np.ndarray:
    h, w = shape_hw
    x1, y1, x2, y2 = _box(landmarks68)
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
    yy, xx = np.mgrid[0:h, 0:w]
    # a "box norm": 1 on the box's border, 0 at its centre
    t = np.maximum(np.abs(xx - cx) / hw, np.abs(yy - cy) / hh)
    if where == "face":
        return t <= 0.5
    if where == "context":
        return (t >= 1.4) & (t <= 1.8)
    raise ValueError(where)


class RegionMean(Recognizer):
    """Test double: descriptor = mean RGB of a region relative to the landmarks (see the module doc)."""

    can_detect = True

    def __init__(self, name: str, where: str, threshold: float = 4.0,
                 known_faces: Sequence[np.ndarray] = ()) -> None:
        self.name, self.where, self.threshold = name, where, float(threshold)
        self.known_faces = [np.asarray(f, dtype=np.float64) for f in known_faces]
        self.calls = 0

    def embed(self, image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
        self.calls += 1
        img = np.asarray(image)
        m = region_mask(img.shape[:2], landmarks68, self.where)
        return img[m].astype(np.float64).mean(axis=0)

    def detect(self, image: np.ndarray) -> List[FreshFace]:
        out = []
        for lm in self.known_faces:
            m = region_mask(image.shape[:2], lm, "face")
            if image[m].astype(np.float64).std(axis=0).max() > 20:  # per channel: a flat colour has none
                out.append(FreshFace(rect=_box(lm), landmarks68=lm.astype(np.float32), score=1.0))
        return out


def textured(h: int = 240, w: int = 320, colour=(200, 120, 60), seed: int = 0) -> np.ndarray:
    """A coloured noise image (mean ``colour``, +-40 per channel): far from grey 128, so the eraser shows."""
    rng = np.random.default_rng(seed)
    return np.clip(np.asarray(colour) + rng.integers(-40, 41, (h, w, 3)), 0, 255).astype(np.uint8)


def save_png(path: Path, rgb: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path


def fake_face(shape_hw, lm: np.ndarray, pose=(0.0, 0.0, 0.0)) -> S.FakeFace:
    return S.FakeFace(landmarks68=lm, box=_box(lm).astype(np.float32), labels=S.labels_from_landmarks(shape_hw, lm),
                      pose=pose)


def paint_face(rgb: np.ndarray, lm: np.ndarray, colour=(20, 200, 20)) -> np.ndarray:
    """A copy with the landmark box painted one flat colour."""
    out = np.array(rgb, copy=True)
    x1, y1, x2, y2 = np.rint(_box(lm)).astype(int)
    out[y1:y2 + 1, x1:x2 + 1] = colour
    return out


def one_face_run(out: Path, inp: Path, stem: str, original: np.ndarray, composite: Optional[np.ndarray],
                 lm: np.ndarray, pose=(0.0, 0.0, 0.0)) -> dict:
    """Write ``inp/<stem>.png`` and the fake run outputs of one face; returns the report entry."""
    src = save_png(inp / f"{stem}.png", original)
    return S.write_fake_image(out, stem, src, original if composite is None else composite,
                              [fake_face(original.shape[:2], lm, pose)])
