"""Five points, POS alignment, the 224 crop and the mapping back to the photo (docs/ddfa_v3.md, sections 4, 8 and 11).

Three row conventions meet here; each has its own named function and test:

* **5-point input to POS** is y-up in the photo: ``y_up = H0 - 1 - y`` (:func:`flip_y`);
* **landmark / texture convention** in the 224 crop: ``row = 223 - v2d_y``, ``col = v2d_x``
  (:func:`v2d_to_crop_px`) - used for ``v2d_full`` and every point output;
* **seed CPU-rasterizer convention**: ``row = 224 - v2d_y`` (:func:`v2d_to_cpu_raster_px`) - what the
  seed's label maps followed (seed bug S-9: one crop pixel lower than ``v2d_full``).

``trans_params = [W0, H0, s, tx, ty]`` (tx, ty y-up). The crop geometry (w, h, left, up) is always
recomputed from it with the seed's int32 truncations (:func:`crop_geometry`), so a float32 copy of
trans_params reproduces the stored maps bit-exactly (:func:`back_resize_crop_img`, PIL NEAREST).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

__all__ = [
    "LM5_FROM_106",
    "TEMPLATE_5",
    "CROP",
    "RESCALE",
    "flip_y",
    "five_points_from_106",
    "template_from_lm68",
    "load_template",
    "pos",
    "CropGeometry",
    "crop_geometry",
    "align_crop",
    "v2d_to_crop_px",
    "v2d_to_cpu_raster_px",
    "back_resize_ldms",
    "back_resize_crop_img",
    "labels_from_parts",
    "back_resize_labels",
]

CROP = 224
RESCALE = 102.0
#: 106-point ids of image-left eye centre, image-right eye centre, nose tip, left and right mouth corners
LM5_FROM_106 = (74, 83, 54, 84, 90)
#: the 5-point template derived from similarity_Lm3D_all.mat (checked against the real file in tests)
TEMPLATE_5 = np.array(
    [
        [-0.31148657, 0.29036078, 0.13377953],
        [0.30979887, 0.28972036, 0.13179526],
        [0.00325350, -0.04617932, 0.55244243],
        [-0.25216928, -0.38133916, 0.22405732],
        [0.24846620, -0.38128236, 0.22235769],
    ],
    np.float32,
)


# --- conversions ------------------------------------------------------------------------------------
def flip_y(points: np.ndarray, height: int) -> np.ndarray:
    """Image px (y down) <-> y-up px of an image of ``height`` rows: y' = height - 1 - y (self-inverse)."""
    p = np.array(points, dtype=np.float32, copy=True)
    p[..., 1] = (height - 1) - p[..., 1]
    return p


def five_points_from_106(ldm106: np.ndarray, height: int) -> np.ndarray:
    """(106, 2) image px -> (5, 2) float32 y-up points [l-eye, r-eye, nose, l-mouth, r-mouth] for POS."""
    ldm106 = np.asarray(ldm106, np.float32)
    if ldm106.shape != (106, 2):
        raise ValueError(f"ldm106 must have shape (106, 2), got {ldm106.shape}")
    return flip_y(ldm106[list(LM5_FROM_106)], height)


def v2d_to_crop_px(v2d: np.ndarray) -> np.ndarray:
    """Model v2d (y-up, 224 crop) -> top-origin crop px (col, row) = (x, 223 - y): landmark convention."""
    v = np.asarray(v2d)
    out = np.array(v, dtype=np.result_type(v.dtype, np.float32), copy=True)
    out[..., 1] = (CROP - 1) - out[..., 1]
    return out


def v2d_to_cpu_raster_px(v2d: np.ndarray) -> np.ndarray:
    """Model v2d -> the seed CPU rasterizer's pixel frame (x, 224 - y) (pixels sampled at integers)."""
    v = np.asarray(v2d)
    out = np.array(v, dtype=np.result_type(v.dtype, np.float32), copy=True)
    out[..., 1] = CROP - out[..., 1]
    return out


# --- template and POS ---------------------------------------------------------------------------------
def template_from_lm68(lm: np.ndarray) -> np.ndarray:
    """68x3 standard landmarks -> (5, 3): eye centres (36/39, 42/45 means), nose 30, mouth 48, 54."""
    lm = np.asarray(lm, np.float32)
    if lm.shape != (68, 3):
        raise ValueError(f"lm must have shape (68, 3), got {lm.shape}")
    return np.stack([lm[[36, 39]].mean(0), lm[[42, 45]].mean(0), lm[30], lm[48], lm[54]]).astype(np.float32)


def load_template(path: str | Path) -> np.ndarray:
    """similarity_Lm3D_all.mat (key 'lm') -> (5, 3) template."""
    from scipy.io import loadmat

    from .errors import AssetError

    path = Path(path)
    try:
        lm = loadmat(str(path))["lm"]
    except FileNotFoundError:
        raise AssetError(f"alignment template {path} not found",
                         "run `faceanon assets download --model 3ddfa-v3`") from None
    except Exception as exc:
        raise AssetError(f"cannot read alignment template {path}: {type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:200]}") from None
    if np.asarray(lm).shape != (68, 3):
        raise AssetError(f"alignment template {path}: 'lm' must be 68x3, got {np.asarray(lm).shape}")
    return template_from_lm68(lm)


def pos(xp: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """Weak-perspective least squares: 2D points xp (K, 2) y-up, 3D points x (K, 3).

    Returns (t (2,), s_pos) with s_pos = (|k[0:3]| + |k[4:7]|) / 2 and t = (k[3], k[7]).
    """
    xp = np.asarray(xp, np.float64)
    x = np.asarray(x, np.float64)
    k = xp.shape[0]
    a = np.zeros((2 * k, 8))
    a[0::2, 0:3] = x
    a[0::2, 3] = 1
    a[1::2, 4:7] = x
    a[1::2, 7] = 1
    b = xp.reshape(-1)
    sol = np.linalg.lstsq(a, b, rcond=None)[0]
    s_pos = (np.linalg.norm(sol[0:3]) + np.linalg.norm(sol[4:7])) / 2.0
    return np.array([sol[3], sol[7]]), float(s_pos)


# --- crop geometry -------------------------------------------------------------------------------------
class CropGeometry(NamedTuple):
    w: int  # resized photo width  = int32(W0 * s)
    h: int  # resized photo height = int32(H0 * s)
    left: int  # crop box left in the resized photo (may be negative)
    up: int  # crop box top in the resized photo (may be negative)


def crop_geometry(trans_params, target: int = CROP) -> CropGeometry:
    """The seed's (w, h, left, up) from trans_params [W0, H0, s, tx, ty] (int32 truncation toward 0).

    Arithmetic follows the seed's numpy types: products in the dtype of ``trans_params`` (float32 for
    a stored npz), ``w / 2`` in float64.
    """
    tp = np.asarray(trans_params)
    if tp.shape != (5,):
        raise ValueError(f"trans_params must have shape (5,), got {tp.shape}")
    w0, h0, s, tx, ty = tp[0], tp[1], tp[2], tp[3], tp[4]
    w = np.int32(w0 * s)
    h = np.int32(h0 * s)
    half = target / 2
    left = np.int32(w / 2 - half + (tx - w0 / 2) * s)
    up = np.int32(h / 2 - half + (h0 / 2 - ty) * s)
    return CropGeometry(int(w), int(h), int(left), int(up))


def align_crop(rgb: np.ndarray | Image.Image, lm5_yup: np.ndarray, template: np.ndarray = TEMPLATE_5,
               target: int = CROP, rescale: float = RESCALE,
               max_pixels: int = 100_000_000) -> tuple[np.ndarray, np.ndarray]:
    """POS-align the photo on the 5 points and cut the ``target`` crop.

    rgb: (H0, W0, 3) uint8 RGB (or a PIL RGB image); lm5_yup: (5, 2) y-up photo px.
    Returns (crop (target, target, 3) uint8 RGB, trans_params (5,) float64 [W0, H0, s, tx, ty]).
    The whole photo is resized with PIL BICUBIC to (w, h), then cropped; outside is black.
    Raises ValueError when the alignment is degenerate (scale not finite or absurd).
    """
    img = rgb if isinstance(rgb, Image.Image) else Image.fromarray(np.ascontiguousarray(rgb))
    w0, h0 = img.size
    t, s_pos = pos(lm5_yup, template)
    if not np.isfinite(s_pos) or s_pos <= 1e-9 or not np.all(np.isfinite(t)):
        raise ValueError(f"degenerate 5-point alignment (scale {s_pos})")
    s = rescale / s_pos
    if w0 * s < 1 or h0 * s < 1 or (w0 * s) * (h0 * s) > max_pixels or max(abs(t[0]), abs(t[1])) * s > 1e9:
        raise ValueError(f"degenerate 5-point alignment (photo would be resized to {w0 * s:.0f}x{h0 * s:.0f})")
    tp = np.array([w0, h0, s, t[0], t[1]], np.float64)
    g = crop_geometry(tp, target)
    resized = img.resize((g.w, g.h), resample=Image.BICUBIC)
    crop = resized.crop((g.left, g.up, g.left + target, g.up + target))
    return np.asarray(crop, np.uint8).copy(), tp


# --- back to the photo ---------------------------------------------------------------------------------
def back_resize_ldms(points: np.ndarray, trans_params, target: int = CROP) -> np.ndarray:
    """Top-origin crop px (col, row) -> photo px: x = (col + left) W0 / w, y = (row + up) H0 / h.

    Uses w/W0 (not s), like the seed. Returns float32 with the input's shape.
    """
    tp = np.asarray(trans_params)
    g = crop_geometry(tp, target)
    w0, h0 = float(tp[0]), float(tp[1])
    p = np.asarray(points, np.float64)
    out = np.empty_like(p)
    out[..., 0] = (p[..., 0] + g.left) * w0 / g.w
    out[..., 1] = (p[..., 1] + g.up) * h0 / g.h
    return out.astype(np.float32)


def back_resize_crop_img(crop: np.ndarray, trans_params, resample=Image.NEAREST, target: int = CROP) -> np.ndarray:
    """Paste a (224, 224[, C]) uint8 crop back into a zero photo of size (H0, W0) the seed's way.

    A zero (w, h) image gets the crop pasted at (left, up) (PIL clips negative offsets), then it is
    resized to (W0, H0) with ``resample`` (PIL NEAREST for label maps).
    """
    tp = np.asarray(trans_params)
    g = crop_geometry(tp, target)
    w0, h0 = int(tp[0]), int(tp[1])
    crop = np.ascontiguousarray(crop, np.uint8)
    src = Image.fromarray(crop)
    canvas = Image.new(src.mode, (g.w, g.h), 0)
    canvas.paste(src, (g.left, g.up))
    return np.asarray(canvas.resize((w0, h0), resample=resample), np.uint8).copy()


def labels_from_parts(masks: np.ndarray) -> np.ndarray:
    """(8, H, W) part masks (bool/0-1) -> (H, W) uint8 labels 1..8, later parts overwrite earlier ones."""
    masks = np.asarray(masks)
    if masks.ndim != 3 or masks.shape[0] != 8:
        raise ValueError(f"masks must have shape (8, H, W), got {masks.shape}")
    out = np.zeros(masks.shape[1:], np.uint8)
    for i in range(8):
        out[masks[i] > 0] = i + 1
    return out


def back_resize_labels(labels_crop: np.ndarray, trans_params) -> np.ndarray:
    """(224, 224) uint8 crop labels -> (H0, W0) uint8 photo labels (PIL NEAREST).

    Equivalent to the seed's per-part back-resize with later parts overwriting: NEAREST picks one
    source pixel per destination pixel, so resizing the merged label map gives the same result.
    """
    return back_resize_crop_img(np.asarray(labels_crop, np.uint8), trans_params, Image.NEAREST)
