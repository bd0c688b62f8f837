"""The lite reconstruction backend: 3DDFA_V2's mb05 regressor + the rebuilt no-neck BFM.

Pipeline per face (docs/lite_model.md, sections 1-4):

1. ROI from the detector box (2.1), crop from the BGR image with zero padding (2.3), resize to
   120x120, normalise (1.3), regress the 62 parameters and de-normalise them (1.4);
2. the 68 landmarks of that fit (3.3/3.4) give a second, tighter ROI (2.2, the "landmark" crop
   policy of 3DDFA_V2's video demo); the face is regressed again from it and that refined fit is
   the result (NME 0.050 instead of 0.058 on the fixtures);
3. dense vertices in image px (3.4), pose from the camera matrix (4).

All conversions from the network's crop frame (120x120, y UP) to image coordinates (x right, y
down) happen in :func:`crop_to_image`, once.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import torch

from faceanon.models.base import ReconstructionBackend, as_rgb_uint8
from faceanon.models.bfm import BFMModel, BFMSources, load_bfm, load_param_stats
from faceanon.models.mb05 import INPUT_SIZE, MobileNetV1, load_mb05
from faceanon.models.registry import LITE
from faceanon.types import Detection, FaceFit

#: side of the 3DDFA-V3 crop that ``FaceFit.trans_params`` refers to (see :meth:`LiteBackend.fit`)
V3_CROP = 224.0


def roi_from_box(box: np.ndarray) -> np.ndarray:
    """First-pass ROI (docs/lite_model.md, section 2.1) from a detector box [x1, y1, x2, y2(, ...)] -> (4,) float64
    [sx, sy, ex, ey] (square, side ``int(1.58 * mean side)``, centre 14 % of the side lower)."""
    left, top, right, bottom = (float(v) for v in np.asarray(box, np.float64)[:4])
    old_size = ((right - left) + (bottom - top)) / 2
    cx = right - (right - left) / 2
    cy = bottom - (bottom - top) / 2 + old_size * 0.14
    size = int(old_size * 1.58)
    sx, sy = cx - size / 2, cy - size / 2
    return np.array([sx, sy, sx + size, sy + size], np.float64)


def roi_from_points(points: np.ndarray) -> np.ndarray:
    """Second-pass ROI (docs/lite_model.md, section 2.2) from points (K, >=2) in image px -> (4,) float64: the
    square enclosing the points, enlarged to its own diagonal, same centre."""
    p = np.asarray(points, np.float64)
    x0, y0 = p[:, 0].min(), p[:, 1].min()
    x1, y1 = p[:, 0].max(), p[:, 1].max()
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = math.sqrt(2) * max(x1 - x0, y1 - y0)
    sx, sy = cx - side / 2, cy - side / 2
    return np.array([sx, sy, sx + side, sy + side], np.float64)


def crop_roi(image: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """Crop ``roi`` [sx, sy, ex, ey] (floats, may leave the image) from an (H, W, C) image
    (docs/lite_model.md, section 2.3): each number rounded half-to-even independently, the part outside the image
    is black. An ROI entirely outside the image gives an all-black crop; a degenerate ROI is
    widened to 1 px. Returns (ey - sy, ex - sx, C), same dtype."""
    h, w = image.shape[:2]
    sx, sy, ex, ey = (int(round(float(v))) for v in roi)
    ex, ey = max(ex, sx + 1), max(ey, sy + 1)
    out = np.zeros((ey - sy, ex - sx) + image.shape[2:], image.dtype)
    ix0, iy0, ix1, iy1 = max(sx, 0), max(sy, 0), min(ex, w), min(ey, h)
    if ix1 > ix0 and iy1 > iy0:
        out[iy0 - sy:iy1 - sy, ix0 - sx:ix1 - sx] = image[iy0:iy1, ix0:ix1]
    return out


def crop_to_image(points_crop: np.ndarray, roi: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Map (N, 3) points from the network's crop frame (x right, y UP, ``size`` px) to image
    coordinates (x right, y DOWN) with the unrounded ROI (docs/lite_model.md, section 3.4):
    ``x = (xc - 1) * kx + sx``, ``y = (size - yc) * ky + sy``, ``z = (zc - 1) * (kx + ky) / 2``.
    z keeps its sign (larger = nearer); no min-shift here. Returns (N, 3) float64."""
    p = np.asarray(points_crop, np.float64)
    sx, sy, ex, ey = (float(v) for v in roi)
    kx, ky = (ex - sx) / size, (ey - sy) / size
    out = np.empty_like(p)
    out[:, 0] = (p[:, 0] - 1) * kx + sx
    out[:, 1] = (size - p[:, 1]) * ky + sy
    out[:, 2] = (p[:, 2] - 1) * (kx + ky) / 2
    return out


def pose_from_camera(P: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Pose from the 3x4 camera matrix [A | t] (docs/lite_model.md, section 4).

    Returns (yaw, pitch, roll) in DEGREES as float64 (3,), the rotation R (3, 3) and the scale s.
    yaw > 0: nose toward image left; pitch > 0: looking down; roll > 0: counter-clockwise on screen.
    """
    P = np.asarray(P, np.float64).reshape(3, 4)
    r1, r2 = P[0, :3], P[1, :3]
    n1, n2 = np.linalg.norm(r1), np.linalg.norm(r2)
    s = (n1 + n2) / 2
    r1, r2 = r1 / n1, r2 / n2
    R = np.stack([r1, r2, np.cross(r1, r2)])
    if R[2, 0] > 0.998:
        yaw, roll = math.pi / 2, 0.0
        pitch = math.atan2(-R[0, 1], -R[0, 2])
    elif R[2, 0] < -0.998:
        yaw, roll = -math.pi / 2, 0.0
        pitch = math.atan2(R[0, 1], R[0, 2])
    else:
        yaw = math.asin(R[2, 0])
        c = math.cos(yaw)
        pitch = math.atan2(R[2, 1] / c, R[2, 2] / c)
        roll = math.atan2(R[1, 0] / c, R[0, 0] / c)
    return np.degrees([yaw, pitch, roll]), R, float(s)


class LiteBackend(ReconstructionBackend):
    """mb05 + no-neck BFM (3DDFA_V2 compatible), two passes (box ROI, then landmark ROI).

    Args:
        regressor: a loaded :class:`MobileNetV1` (see :func:`faceanon.models.mb05.load_mb05`).
        param_mean, param_std: (62,) float32 de-normalisation statistics.
        bfm: the no-neck :class:`BFMModel`.
        refine: run the second (landmark-ROI) pass; default True. False reproduces 3DDFA_V2's
            still-image demo (one box pass).

    Use :meth:`from_files` to build it from file paths. ``torch.set_num_threads`` is left to the
    caller.
    """

    name = LITE

    def __init__(self, regressor: MobileNetV1, param_mean: np.ndarray, param_std: np.ndarray,
                 bfm: BFMModel, *, refine: bool = True) -> None:
        self.net = regressor.eval()
        self.param_mean = np.asarray(param_mean, np.float32).reshape(62)
        self.param_std = np.asarray(param_std, np.float32).reshape(62)
        self.bfm = bfm
        self.refine = refine

    @classmethod
    def from_files(cls, checkpoint: str | Path, param_mean_std: str | Path, bfm_sources: BFMSources,
                   cache_dir: str | Path, **kwargs) -> "LiteBackend":
        """checkpoint: ``3ddfa_v2/mb05_120x120.pth``; param_mean_std:
        ``3ddfa_v2/param_mean_std_62d_120x120.pkl``; bfm_sources: the BFM files; cache_dir: where
        the derived BFM ``.npz`` is kept."""
        mean, std = load_param_stats(param_mean_std)
        return cls(load_mb05(checkpoint), mean, std, load_bfm(bfm_sources, cache_dir), **kwargs)

    # -- steps -----------------------------------------------------------------------------

    @staticmethod
    def preprocess(rgb: np.ndarray, roi: np.ndarray) -> np.ndarray:
        """Crop ``roi`` of an RGB uint8 image, resize to 120x120 (bilinear), swap to the BGR order the
        network was trained on (docs/lite_model.md, section 1.3; swapping after cropping avoids copying a large
        photo) and normalise -> (1, 3, 120, 120) float32, channels B, G, R."""
        crop = cv2.resize(crop_roi(rgb, roi), (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
        x = (crop[:, :, ::-1].astype(np.float32) - 127.5) / 128.0
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])

    def regress(self, rgb: np.ndarray, roi: np.ndarray) -> np.ndarray:
        """The 62 de-normalised parameters for ``roi`` of an RGB uint8 image -> (62,) float32."""
        with torch.inference_mode():
            out = self.net(torch.from_numpy(self.preprocess(rgb, roi)))[0].numpy()
        return (out * self.param_std + self.param_mean).astype(np.float32)

    @staticmethod
    def split_params(params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(62,) -> camera matrix P (3, 4), alpha_shp (40,), alpha_exp (10,)."""
        p = np.asarray(params, np.float32)
        return p[:12].reshape(3, 4), p[12:52], p[52:62]

    def landmarks(self, params: np.ndarray, roi: np.ndarray) -> np.ndarray:
        """Sparse reconstruction: the 68 landmarks in image px -> (68, 3) float64 (z unshifted)."""
        P, a_shp, a_exp = self.split_params(params)
        pts = self.bfm.landmarks_shape(a_shp, a_exp) @ P[:, :3].T + P[:, 3]
        return crop_to_image(pts, roi)

    # -- public ----------------------------------------------------------------------------

    def shape_basis(self):
        """The BFM's identity and expression bases (:attr:`faceanon.models.bfm.BFMModel.shape_basis`)."""
        return self.bfm.shape_basis

    def fit(self, rgb: np.ndarray, detection: Detection) -> FaceFit:
        """Reconstruct the face of ``detection`` in ``rgb`` ((H, W, 3) uint8 RGB).

        The result's ``trans_params`` are [W, H, s, tx, ty] with the 3DDFA-V3 meaning applied to
        the final (refined) ROI of side L px centred at (cx, cy): s = 224 / L, tx = cx,
        ty = H - cy (y up). A 3DDFA-V3-style 224x224 crop built from them (resize the image by s,
        centre the crop on (tx, H - ty) * s) is exactly this ROI. ``extras`` holds ``roi``
        (final, float [sx, sy, ex, ey]), ``roi_pass1``, ``params`` (62, final), ``params_pass1``,
        ``camera`` ([R | t3d], 3x4, crop frame) and ``scale``.
        """
        rgb = as_rgb_uint8(rgb)
        h, w = rgb.shape[:2]

        roi1 = roi_from_box(detection.box)
        params1 = self.regress(rgb, roi1)
        roi, params = roi1, params1
        if self.refine:
            roi = roi_from_points(self.landmarks(params1, roi1)[:, :2])
            params = self.regress(rgb, roi)

        P, a_shp, a_exp = self.split_params(params)
        shape = self.bfm.shape(a_shp, a_exp)  # (N, 3) model frame
        verts = crop_to_image(shape @ P[:, :3].T + P[:, 3], roi)
        verts[:, 2] -= verts[:, 2].min()
        vertices = verts.astype(np.float32)
        ypr, R, s = pose_from_camera(P)

        side = ((roi[2] - roi[0]) + (roi[3] - roi[1])) / 2
        cx, cy = (roi[0] + roi[2]) / 2, (roi[1] + roi[3]) / 2
        trans = np.array([w, h, V3_CROP / side, cx, h - cy], np.float32)
        return FaceFit(
            vertices=vertices,
            triangles=self.bfm.triangles,
            uv=self.bfm.uv,
            vertex_labels=self.bfm.labels,
            landmarks68=np.ascontiguousarray(vertices[self.bfm.kp68, :2]),
            pose=ypr.astype(np.float32),
            model_vertices=shape.astype(np.float32),
            mean_vertices=self.bfm.mean_vertices,
            trans_params=trans,
            detection=detection,
            backend=self.name,
            extras={"roi": roi, "roi_pass1": roi1, "params": params, "params_pass1": params1,
                    "camera": np.concatenate([R, P[:, 3:].astype(np.float64)], axis=1), "scale": s},
            landmark_ids=self.bfm.kp68,
        )
