"""The seed's texture extraction, "extractTex", and its UV renderer (docs/ddfa_v3.md, section 10).

**Not the project's default texture.** ``faceanon reconstruct`` bakes its texture with
:mod:`faceanon.stages.texture`: sampled from the full-resolution photo, visibility-aware in image
space (occluded texels are not given the occluder's pixels), mirror / push-pull filled, with a UV
gutter. This module reproduces the seed's ``extractTex_uv`` for compatibility and comparison only:
the colours come from the 224x224 aligned crop, so the result is low resolution whatever the UV
size (seed bug S-12, docs/seed_compatibility.md), and the uint8 casts before ``cv2.seamlessClone`` truncate (and wrap) as
in the seed.

extractTex (:func:`extract_texture_seed`):

1. ``uv_color_pca`` = UV render of clip(face_texture, 0, 1) (the SH-lit PCA albedo);
2. ``img_colors`` = per-vertex bilinear sample of the crop (RGB, float [0, 1]) at
   (v2d_x, 223 - v2d_y), with the seed's clamping quirk (:func:`bilinear_sample_seed`);
3. ``uv_color_img`` = UV render of ``img_colors``;
4. ``uv_weight`` = UV render of (1 - visible) (0 on the background outside the UV islands);
5. result = ``cv2.seamlessClone(src=uint8(uv_color_img 255), dst=uint8(uv_color_pca 255),
   mask=uint8((1 - uv_weight) 255), centre=(S//2, S//2), NORMAL_CLONE) / 255``: visible texels and
   the background take the gradients of the image colours, invisible ones those of the PCA
   texture (OpenCV zeroes the mask's 1-px image border).

UV render (:func:`uv_screen_vertices`, :func:`uv_render`): the seed's UV screen mapping
pixel_x = u S + eps S / 2, pixel_y = (1 - v) S - eps S / 2 (eps = 1e-6; row 0 = v 1, the OBJ
convention), constant depth, per-vertex attributes blended with screen-space barycentrics,
background 0. It uses the project rasterizer (:func:`faceanon.raster.rasterize`: pixel centres at
integer coordinates like the seed's, ties to the lower triangle index like the seed's strict
z-test), **not** the seed's CPU rasterizer quirks (the 2-px border where the inside test is
skipped; degenerate triangles painting their bbox). The rasterizer snaps vertices to 1/256 px, so
the eps offset (1e-3 px at S = 2048) is below its resolution.

Differences from the seed that come from the inputs: ``visible`` is :meth:`DDFAv3.fit`'s
(project rasterizer, rows ``223 - v2d_y`` unless ``seed_label_rows``; triangle 0 counts), not
the seed's CPU-raster ``visible_idx``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from . import align

__all__ = ["SEED_UV_EPS", "SEED_UV_SIZE", "uv_screen_vertices", "uv_render", "bilinear_sample_seed",
           "uint8_seed", "vertex_colors_from_uv", "extract_texture_seed"]

#: the seed's UV renderer's epsilon (docs/ddfa_v3.md, section 10)
SEED_UV_EPS = 1e-6
#: dermaself's UV size (upstream 3DDFA-V3 used 1024)
SEED_UV_SIZE = 2048
_UV_DEPTH = 1.0


def uv_screen_vertices(uv, size: int, eps: float = SEED_UV_EPS) -> np.ndarray:
    """(N, 3) float64 screen vertices of the seed's UV renderer: (u S + eps S/2, (1 - v) S - eps S/2, 1).

    Project screen convention: x right, y down, pixel centres at integer coordinates.
    """
    uv = np.asarray(uv, np.float64)
    if uv.ndim != 2 or uv.shape[1] < 2:
        raise ValueError(f"uv must have shape (N, 2), got {uv.shape}")
    s = float(size)
    out = np.empty((uv.shape[0], 3), np.float64)
    out[:, 0] = uv[:, 0] * s + eps * s / 2.0
    out[:, 1] = (1.0 - uv[:, 1]) * s - eps * s / 2.0
    out[:, 2] = _UV_DEPTH
    return out


def _rasterize_uv(uv, triangles, size: int, rasterize: Callable | None):
    if rasterize is None:
        from faceanon.raster import rasterize  # noqa: PLC0415 - compiled extension, optional at import
    verts = np.ascontiguousarray(uv_screen_vertices(uv, size), np.float32)
    return rasterize(verts, np.ascontiguousarray(triangles, np.int32), int(size), int(size), cull=None)


def _interpolate(r, triangles, attrs: np.ndarray) -> np.ndarray:
    """(H, W, C) float64 barycentric blend of per-vertex ``attrs`` (N, C); 0 where ``tri_id`` < 0."""
    try:
        from faceanon.raster import RasterResult, interpolate  # noqa: PLC0415
    except ImportError:  # pragma: no cover - the compiled rasterizer is not built
        RasterResult = interpolate = None
    if RasterResult is not None and isinstance(r, RasterResult):
        return np.asarray(interpolate(r, attrs), np.float64)
    tri_id = np.asarray(r.tri_id)
    out = np.zeros(tri_id.shape + (attrs.shape[1],), np.float64)
    cov = tri_id >= 0
    tv = np.asarray(triangles)[tri_id[cov]]  # (P, 3)
    bary = np.asarray(r.bary, np.float64)[cov]  # (P, 3)
    out[cov] = np.einsum("pk,pkc->pc", bary, attrs[tv])
    return out


def uv_render(uv, triangles, attrs, size: int, rasterize: Callable | None = None) -> np.ndarray:
    """UV-space render of per-vertex ``attrs`` ((N,) or (N, C)) -> (S, S[, C]) float64, background 0.

    ``rasterize``: the project rasterizer signature ``rasterize(vertices, triangles, h, w, cull=None)``
    (default :func:`faceanon.raster.rasterize`); any result with ``tri_id`` / ``bary`` works.
    """
    a = np.asarray(attrs, np.float64)
    flat = a.reshape(a.shape[0], -1)
    r = _rasterize_uv(uv, triangles, size, rasterize)
    out = _interpolate(r, triangles, flat)
    return out[..., 0] if a.ndim == 1 else out


def bilinear_sample_seed(image, x, y) -> np.ndarray:
    """The seed's bilinear sampler: ``image`` (H, W[, C]) at points (x, y) (col, row) -> (K[, C]) float64.

    x0 = floor(x), x1 = x0 + 1, y0 = floor(y), y1 = y0 + 1; all four are clamped to the image and
    the standard weights are computed with the **clamped** integers:
    (x1 - x)(y1 - y), (x1 - x)(y - y0), (x - x0)(y1 - y), (x - x0)(y - y0). Inside [0, W-1) x
    [0, H-1) this is ordinary bilinear interpolation; wherever the clamping makes x0 == x1 (x < 0 or
    x >= W - 1, the last column included) or y0 == y1, the weights sum to 0 and the sample is 0.
    """
    img = np.asarray(image, np.float64)
    h, w = img.shape[:2]
    x = np.asarray(x, np.float64).reshape(-1)
    y = np.asarray(y, np.float64).reshape(-1)
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    x1, y1 = x0 + 1, y0 + 1
    x0, x1 = np.clip(x0, 0, w - 1), np.clip(x1, 0, w - 1)
    y0, y1 = np.clip(y0, 0, h - 1), np.clip(y1, 0, h - 1)
    wa = (x1 - x) * (y1 - y)
    wb = (x1 - x) * (y - y0)
    wc = (x - x0) * (y1 - y)
    wd = (x - x0) * (y - y0)
    if img.ndim == 3:
        wa, wb, wc, wd = wa[:, None], wb[:, None], wc[:, None], wd[:, None]
    return wa * img[y0, x0] + wb * img[y1, x0] + wc * img[y0, x1] + wd * img[y1, x1]


def uint8_seed(a) -> np.ndarray:
    """The seed's float -> uint8 cast: truncation toward zero, then modulo 256 (300 -> 44, -1 -> 255).

    Non-finite values become 0. (numpy's direct cast of out-of-range floats is platform-dependent;
    this is the x86 behaviour, made explicit.)
    """
    a = np.asarray(a, np.float64)
    t = np.trunc(np.where(np.isfinite(a), a, 0.0))
    return (t.astype(np.int64) & 0xFF).astype(np.uint8)


def vertex_colors_from_uv(tex, uv) -> np.ndarray:
    """The seed's per-vertex ``extractTex``: ``tex`` (S, S, C) sampled (bilinear, seed
    clamping) at (u (S - 1), (S - 1) - v (S - 1)) -> (N, C) float64."""
    t = np.asarray(tex)
    uv = np.asarray(uv, np.float64)
    s1 = t.shape[0] - 1
    return bilinear_sample_seed(t, uv[:, 0] * s1, s1 - uv[:, 1] * s1)


def _triangles_and_uv(face_model, fit_result: dict) -> tuple[np.ndarray, np.ndarray]:
    """The model's stored triangles (seed order and winding) and uv_coords from a FaceModel or dict."""
    if isinstance(face_model, dict):
        tri, uv = face_model["tri"], face_model["uv_coords"]
    elif face_model is not None:
        tri, uv = face_model.tri, face_model.uv
    else:
        tri, uv = fit_result["triangles"], fit_result["uv"]
    tri = tri.numpy() if hasattr(tri, "numpy") else np.asarray(tri)
    return np.asarray(tri, np.int64), np.asarray(uv, np.float64)[:, :2]


def extract_texture_seed(fit_result: dict, face_model, size: int = SEED_UV_SIZE,
                         rasterize: Callable | None = None) -> np.ndarray:
    """The seed's ``extractTex_uv`` (docs/ddfa_v3.md, section 10): (size, size, 3) float64 RGB in [0, 1], row 0 = v 1.

    fit_result: a :meth:`ddfa_v3.model.DDFAv3.fit` dict; reads ``face_texture`` (N, 3),
    ``visible`` (N,), ``crop`` (224, 224, 3) uint8 RGB and ``v2d_crop`` (N, 2) (model coords, y-up).
    face_model: :class:`ddfa_v3.face_model.FaceModel` or the face_model dict (``tri``,
    ``uv_coords``); None takes ``triangles`` / ``uv`` from ``fit_result`` (same triangle order).
    rasterize: the project rasterizer signature (default :func:`faceanon.raster.rasterize`).
    """
    import cv2  # noqa: PLC0415 - heavy import, only needed here

    size = int(size)
    if size < 3:
        raise ValueError(f"size must be >= 3, got {size}")
    tri, uv = _triangles_and_uv(face_model, fit_result)
    face_tex = np.clip(np.asarray(fit_result["face_texture"], np.float64), 0.0, 1.0)
    visible = np.asarray(fit_result["visible"]).astype(np.float64).reshape(-1)
    crop = np.asarray(fit_result["crop"])
    crop = crop.astype(np.float64) / 255.0 if crop.dtype == np.uint8 else crop.astype(np.float64)
    pts = align.v2d_to_crop_px(np.asarray(fit_result["v2d_crop"], np.float64))  # (col, 223 - v2d_y)
    n = uv.shape[0]
    if face_tex.shape != (n, 3) or visible.shape != (n,) or pts.shape != (n, 2):
        raise ValueError(f"fit_result does not match the face model's {n} vertices "
                         f"(face_texture {face_tex.shape}, visible {visible.shape}, v2d_crop {pts.shape})")

    img_colors = bilinear_sample_seed(crop, pts[:, 0], pts[:, 1])  # (N, 3)
    attrs = np.concatenate([face_tex, img_colors, (1.0 - visible)[:, None]], axis=1)  # one layout, 7 channels
    r = _rasterize_uv(uv, tri, size, rasterize)
    ren = _interpolate(r, tri, attrs)
    uv_color_pca, uv_color_img, uv_weight = ren[..., 0:3], ren[..., 3:6], ren[..., 6]

    src = np.ascontiguousarray(uint8_seed(uv_color_img * 255.0))
    dst = np.ascontiguousarray(uint8_seed(uv_color_pca * 255.0))
    mask = np.ascontiguousarray(uint8_seed((1.0 - uv_weight) * 255.0))
    out = cv2.seamlessClone(src, dst, mask, (size // 2, size // 2), cv2.NORMAL_CLONE)
    return out.astype(np.float64) / 255.0
