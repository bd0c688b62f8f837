"""UV texture baking shared by ``reconstruct`` (extractTex) and ``anonymize`` (re-bake).

The bake is per texel, never per triangle in Python:

1. the UV layout is rasterized once per (mesh topology, texture size) and cached: every texel knows
   its triangle and barycentric weights;
2. each texel's position in the photo (and its depth) is interpolated from the per-vertex image
   positions; the photo is sampled there with bilinear interpolation (``cv2.remap``);
3. visibility is decided in IMAGE space with the rasterizer: a texel is taken from the photo only if
   its triangle faces the camera, its (rounded) pixel is covered by the mesh - not background at
   the silhouette - and its depth matches the photo's z-buffer at that pixel (so
   occluded cheeks/nose sides do not receive the occluder's pixels, seed bug S-17 in docs/seed_compatibility.md), and, when
   a ``valid`` mask is given (the alpha of a segmented image), only where that mask is set; the
   visible texels next to a hidden one (within SILHOUETTE_TRIM of the size) are dropped, their
   photo pixels straddle the edge;
4. texels that are not visible are filled from the mirror texel (the BFM UV layout is left/right
   symmetric around u = 0.5) when that one is visible, and the rest by a push-pull (pyramid)
   diffusion that also extends colours past the UV islands into a gutter, so bilinear or mip-mapped
   sampling never picks up a black seam (S-20).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from faceanon._ext import _raster  # bake_sample: the per-texel pass (checked arguments here)
from faceanon.cache import BoundedCache, content_digest
from faceanon.raster import rasterize


@dataclass(frozen=True)
class UVLayout:
    """Per-texel triangle id and barycentrics of a UV atlas (row 0 = v 1)."""

    tri_id: np.ndarray  # (T, T) int32, -1 outside the islands
    bary: np.ndarray  # (T, T, 3) float32
    mirror_texel: np.ndarray | None  # (T, T) int64 flat index of the mirrored texel (u -> 1-u), or None

    @cached_property
    def inside(self) -> np.ndarray:
        """(T, T) bool: texels on the UV islands (computed once per cached layout)."""
        return self.tri_id >= 0

    @cached_property
    def mirror_ok(self) -> np.ndarray:
        """(T, T) bool: texels whose mirror (u -> 1 - u) is also on the islands."""
        if self.mirror_texel is None:
            return np.zeros(self.tri_id.shape, bool)
        return self.mirror_texel >= 0


def uv_to_pixels(uv: np.ndarray, size: int) -> np.ndarray:
    """UV (u right, v up) -> texel coordinates (x right, y down, texel centres at integers)."""
    px = np.empty((uv.shape[0], 3), np.float32)
    px[:, 0] = uv[:, 0] * (size - 1)
    px[:, 1] = (1.0 - uv[:, 1]) * (size - 1)
    px[:, 2] = 0.0
    return px


_LAYOUTS: BoundedCache[UVLayout] = BoundedCache(5)  # `faceanon run` bakes on two threads


def uv_layout(uv: np.ndarray, triangles: np.ndarray, size: int, symmetric: bool = True) -> UVLayout:
    """Rasterize the UV layout once per (uv, triangles, size); later calls hit a small cache."""
    return _LAYOUTS.get_or_build((int(size), bool(symmetric), content_digest(uv, triangles)),
                                 lambda: _build_uv_layout(uv, triangles, size, symmetric))


def _build_uv_layout(uv: np.ndarray, triangles: np.ndarray, size: int, symmetric: bool) -> UVLayout:
    r = rasterize(uv_to_pixels(uv, size), np.ascontiguousarray(triangles, np.int32), size, size)
    mirror = None
    if symmetric:
        inside = r.tri_id >= 0
        cols = np.arange(size)
        mirrored_cols = (size - 1) - cols
        flat = np.arange(size * size, dtype=np.int64).reshape(size, size)
        mirror = flat[:, mirrored_cols]
        # only meaningful where both the texel and its mirror lie on the islands
        mirror = np.where(inside & inside[:, mirrored_cols], mirror, -1)
    return UVLayout(r.tri_id, r.bary, mirror)


def push_pull_fill(color: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill texels with ``weight == 0`` from their surroundings (pyramid push-pull).

    color: (H, W, C) float32; weight: (H, W) float32 in [0, 1]. Known texels are returned unchanged.
    """
    return _push_pull_fill(np.asarray(color, np.float32), np.asarray(weight, np.float32), weight <= 0)


def _push_pull_fill(color: np.ndarray, weight: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """:func:`push_pull_fill` with the ``missing`` mask given (float path)."""
    nch = color.shape[2] if color.ndim == 3 else 1
    c = _as3(color * weight[..., None] if color.ndim == 3 else color * weight)
    wt = np.ascontiguousarray(weight, np.float32)
    up = _pull(_push(c, wt), (color.shape[0], color.shape[1]))
    out = _as3(np.array(color, np.float32, copy=True))  # texels with weight > 0 keep their colour
    np.copyto(out, up.reshape(out.shape[0], out.shape[1], nch), where=missing[..., None])
    return out if color.ndim == 3 else out[..., 0]


def _as3(a: np.ndarray) -> np.ndarray:
    return a if a.ndim == 3 else a[..., None]


def _push(c: np.ndarray, wt: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pyramid of (premultiplied colour, weight), area-averaged by 2 per level down to 1 px."""
    levels = [(_as3(c), wt)]
    while min(c.shape[0], c.shape[1]) > 1:
        size = ((c.shape[1] + 1) // 2, (c.shape[0] + 1) // 2)
        c = _as3(cv2.resize(c, size, interpolation=cv2.INTER_AREA))
        wt = cv2.resize(wt, size, interpolation=cv2.INTER_AREA)
        levels.append((c, wt))
    return levels


def _blend_level(coarse: np.ndarray, c_l: np.ndarray, w_l: np.ndarray) -> np.ndarray:
    """One pull step: ``w * mean + (1 - w) * up`` with ``mean = c / w`` (w in [0, 1]), computed as
    ``c + (1 - w) * up`` (no division; exact where w = 0 since c = 0 there)."""
    est = _as3(cv2.resize(coarse, (c_l.shape[1], c_l.shape[0]), interpolation=cv2.INTER_LINEAR))
    est = np.asarray(est, np.float32)
    est *= (1.0 - np.clip(w_l, 0.0, 1.0))[..., None]
    est += c_l
    return est


def _pull(levels: list[tuple[np.ndarray, np.ndarray]], shape: tuple[int, int]) -> np.ndarray:
    """Coarse-to-fine: each level's mean where it has weight, the upsampled coarser estimate elsewhere;
    returns the estimate upsampled (bilinear) to ``shape``, float32 (H, W, C)."""
    est_c, est_w = levels[-1]
    est = est_c / np.maximum(est_w, 1e-8)[..., None]
    for c_l, w_l in reversed(levels[1:-1]):
        est = _blend_level(est, c_l, w_l)
    if len(levels) == 1:
        return _as3(est.astype(np.float32))
    return _as3(cv2.resize(est.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR))


def _fill_uint8(image: np.ndarray, known: np.ndarray) -> None:
    """In place: push-pull fill of the texels of ``image`` (H, W, 3) uint8 where ``known`` is False.

    Same algorithm as :func:`push_pull_fill`, but the finest level stays in uint8 and uses cv2's
    masked copies (numpy's broadcast masked ops cost ~0.2 s each at 2048²); the first area
    downsample and the final bilinear upsample run on bytes. Fill colours may differ from the float
    path by a few levels (they are diffused values); known texels are untouched."""
    h, w = known.shape
    if h < 2 or w < 2:
        filled = _push_pull_fill(image.astype(np.float32), known.astype(np.float32), ~known)
        np.copyto(image, np.clip(np.rint(filled), 0, 255).astype(np.uint8), where=~known[..., None])
        return
    known_u8 = known.view(np.uint8)
    premult = cv2.copyTo(image, known_u8)  # zero where unknown
    size = ((w + 1) // 2, (h + 1) // 2)
    c1 = cv2.resize(premult, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    w1 = cv2.resize(known.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    levels = _push(c1, w1)
    est_c, est_w = levels[-1]
    est = est_c / np.maximum(est_w, 1e-8)[..., None]
    for c_l, w_l in reversed(levels[:-1]):
        est = _blend_level(est, c_l, w_l)
    est_u8 = cv2.convertScaleAbs(est)  # rounds and saturates
    up0 = cv2.resize(est_u8, (w, h), interpolation=cv2.INTER_LINEAR)
    cv2.copyTo(up0, (~known).view(np.uint8), image)


SEAM_BAND = 0.03  # width of the mirror-fill transition, as a fraction of the texture size
LOWPASS_SIGMA = 0.04  # scale of the shading that is matched across the face, fraction of the size
_LOW = 8  # the low-frequency terms are computed at 1/_LOW of the texture size


def _low(img: np.ndarray, mask: np.ndarray, small: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean colour, weight) of ``img`` over ``mask`` at ``small`` x ``small`` (area average; the
    averaging runs on bytes, only the small result is float)."""
    m8 = mask.view(np.uint8)
    w = cv2.resize(m8 * np.uint8(255), (small, small), interpolation=cv2.INTER_AREA).astype(np.float32)
    w *= np.float32(1.0 / 255.0)
    c = cv2.resize(cv2.copyTo(img, m8), (small, small), interpolation=cv2.INTER_AREA).astype(np.float32)
    return c / np.maximum(w, 1e-3)[..., None], w


def _mirror_fill(sampled: np.ndarray, visible: np.ndarray, cand: np.ndarray) -> None:
    """In place: fill the ``cand`` texels of ``sampled`` from the mirrored side of the face, re-lit
    to match the photo's side and faded into it near the visible region.

    The two halves of a face are lit differently, so mirrored texels pasted next to sampled ones
    leave a hard seam and a brightness step. The mirrored texture's detail (its difference to its
    own low-pass) is put on the low-pass of the photo's visible colours diffused over the face, and
    within ``SEAM_BAND`` x size texels of the visible region the result fades into that diffusion.
    Low-frequency terms are computed at 1/8 scale; full-resolution work touches only ``cand``.
    """
    size = sampled.shape[0]
    small = max(8, size // _LOW)
    mirrored = cv2.flip(sampled, 1)
    source_ok = visible[:, ::-1]  # mirrored texels that come from a visible photo texel
    vis_c, vis_w = _low(sampled, visible, small)
    diffused = push_pull_fill(vis_c, np.minimum(vis_w * 4.0, 1.0))  # the photo side spread over the face
    sigma = max(1.0, LOWPASS_SIGMA * small)

    def lowpass(c: np.ndarray, w: np.ndarray) -> np.ndarray:
        num = cv2.GaussianBlur(c * w[..., None], (0, 0), sigma)
        den = cv2.GaussianBlur(w, (0, 0), sigma)
        return num / np.maximum(den, 1e-4)[..., None]

    region_w = cv2.resize((visible | cand).view(np.uint8) * np.float32(1.0), (small, small),
                          interpolation=cv2.INTER_AREA)
    mir_c, mir_w = _low(mirrored, source_ok, small)
    low = np.ascontiguousarray(np.concatenate([lowpass(diffused, region_w) - lowpass(mir_c, mir_w), diffused], axis=2))

    ys, xs = np.nonzero(cand)
    k = np.float32(small / size)  # texel centre -> small-image coordinates (cv2.resize convention)
    n = xs.size
    cols = 1024  # cv2.remap maps must stay below 32767 px a side: lay the texel list out in rows
    pad = (-n) % cols
    mapx = np.pad((xs.astype(np.float32) + 0.5) * k - 0.5, (0, pad)).reshape(-1, cols)
    mapy = np.pad((ys.astype(np.float32) + 0.5) * k - 0.5, (0, pad)).reshape(-1, cols)
    both = cv2.remap(low, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(-1, 6)[:n]
    relit = both[:, :3] + mirrored[ys, xs]
    base = both[:, 3:]
    band = max(4.0, SEAM_BAND * size)
    dist = cv2.distanceTransform((~visible).view(np.uint8), cv2.DIST_L2, 3)[ys, xs]
    wgt = np.minimum(dist * np.float32(1.0 / band), np.float32(1.0))[:, None]
    sampled[ys, xs] = np.clip(np.rint(base + wgt * (relit - base)), 0, 255).astype(np.uint8)


MIN_TEXELS_PER_PIXEL = 2.0  # a reduced-size bake keeps at least this many texels per photo px
MIN_WORKING_SIZE = 256
#: The bake samples the photo only on triangles whose normal is within acos(MIN_FACING) = 78 degrees
#: of the viewing direction (see _bake).
MIN_FACING = 0.2


#: Visible texels closer than this fraction of the texture size to a hidden island texel are not kept
#: as sampled (:func:`_trim_silhouette`): 15 texels at 1024², about 2-3 photo px on the dev set's faces.
#: Chosen by eye on the frontal renders of the dev set's profiles: 0.006 left half of the dark lines,
#: 0.015 none, 0.025 looked the same as 0.015 with less of the photo's skin kept.
SILHOUETTE_TRIM = 0.015


def _trim_silhouette(vis_map: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """(T, T) bool: ``vis_map`` without the texels within SILHOUETTE_TRIM x T of the islands' hidden part.

    The texels just inside a visibility edge (a profile's silhouette, the far side of the nose, the
    edge of a ``valid`` mask) are sampled from photo pixels that straddle the edge: background, the
    nostril's shadow, hair. Pasted next to the mirrored or diffused fill they draw dark or bright lines
    along the nose and the face's midline of a frontal render. They are filled like hidden texels.
    """
    hidden = inside & ~vis_map
    r = SILHOUETTE_TRIM * vis_map.shape[0]
    if r < 1.0 or not hidden.any() or not vis_map.any():
        return vis_map
    dist = cv2.distanceTransform((~hidden).view(np.uint8), cv2.DIST_L2, 3)
    return vis_map & (dist > r)


def working_size(vertices: np.ndarray, triangles: np.ndarray, uv: np.ndarray, size: int) -> int:
    """The texture size a bake needs to capture all the photo holds of the face.

    The photo is sampled with bilinear interpolation, so once the texture has more than a few
    texels per photo pixel, more texels only interpolate further between the same pixels. The
    sampling density is measured over the camera-facing triangles as ``sqrt(photo area / texel
    area)`` (photo px per texel, area-weighted); ``size`` is halved while the halved texture still
    has at least ``MIN_TEXELS_PER_PIXEL`` texels per photo pixel along each axis, down to
    ``max(MIN_WORKING_SIZE, size // 4)``. Returns ``size`` itself for faces large in their photo.
    """
    v = np.asarray(vertices, np.float64)
    t = np.asarray(triangles, np.int64)
    if len(t) == 0 or len(v) == 0:
        return int(size)
    a, b, c = v[t[:, 0], :2], v[t[:, 1], :2], v[t[:, 2], :2]
    photo_area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    ut = np.asarray(uv, np.float64)[t] * (size - 1)
    uv_area = np.abs((ut[:, 1, 0] - ut[:, 0, 0]) * (ut[:, 2, 1] - ut[:, 0, 1])
                     - (ut[:, 2, 0] - ut[:, 0, 0]) * (ut[:, 1, 1] - ut[:, 0, 1]))
    facing = np.isfinite(photo_area) & (photo_area < 0)  # front-facing in the photo (y down)
    if not facing.any() or uv_area[facing].sum() <= 0:
        return int(size)
    px_per_texel = float(np.sqrt(-photo_area[facing].sum() / uv_area[facing].sum()))
    work, floor = int(size), max(MIN_WORKING_SIZE, int(size) // 4)
    while work // 2 >= floor and px_per_texel * (size - 1) / (work // 2 - 1) <= 1.0 / MIN_TEXELS_PER_PIXEL:
        work //= 2
    return work


def resize_texture(texture: np.ndarray, size: int, *, nearest: bool = False) -> np.ndarray:
    """Resample a square UV texture to ``size`` x ``size`` keeping the texel-centre convention of
    :func:`uv_to_pixels` (texel i at u = i / (T - 1)), bilinear (or nearest) with edges replicated."""
    n = texture.shape[0]
    s = (n - 1) / (size - 1) if size > 1 else 0.0
    m = np.array([[s, 0.0, 0.0], [0.0, s, 0.0]])
    flags = (cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR) | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(texture, m, (size, size), flags=flags, borderMode=cv2.BORDER_REPLICATE)


def bake_texture(
    image_rgb: np.ndarray,
    vertices: np.ndarray,
    triangles: np.ndarray,
    uv: np.ndarray,
    size: int,
    *,
    valid: np.ndarray | None = None,
    symmetric_fill: bool = True,
    adaptive: bool = True,
    before_resize=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Bake a (size, size, 3) uint8 RGB texture from a photo.

    image_rgb: (H, W, 3) uint8; vertices: (N, 3) float32 image px, larger z nearer; triangles (M, 3)
    int32; uv (N, 2) in [0, 1] (v up); valid: optional (H, W) bool/uint8, pixels allowed as texture
    sources (e.g. alpha > 0 of a segmented image). Returns ``(texture, source)`` where ``source`` is a
    (size, size) uint8 map: 0 = outside the UV islands (gutter), 1 = sampled from the photo,
    2 = mirrored from the symmetric texel, 3 = diffused fill.

    adaptive: bake at :func:`working_size` (the size at which the texture already holds every
    photo pixel of the face at least twice per axis) and resample bilinearly to ``size``. A face a
    few hundred px wide gives ~5 texels per photo px at 2048²: the 1024² bake resampled to 2048²
    differs from the direct one by ~0.5 grey level RMS (53 dB PSNR on the fixtures) at a quarter
    of the work. False bakes at ``size`` directly.

    Implementation: no boolean gathers over the ~2.7 M island texels; the per-texel sampling and
    visibility test is one C++ pass (``texel_core.cpp``: position, nearest z-buffer / ``valid``
    pixel, bilinear colour), the fills are whole-atlas OpenCV operations.

    before_resize: optional ``f(texture) -> texture`` applied to the baked texture at the size it was
    baked at, before the resample to ``size`` (e.g. painting on it: 4x fewer texels at 1024² than at
    2048²).
    """
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError(f"image_rgb must be (H, W, 3) uint8, got {image_rgb.shape} {image_rgb.dtype}")
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must be (N, 3), got {vertices.shape}")
    if uv.shape != (vertices.shape[0], 2):
        raise ValueError(f"uv must be (N, 2) matching vertices, got {uv.shape}")
    if size < 8:
        raise ValueError(f"texture size must be >= 8, got {size}")
    h, w = image_rgb.shape[:2]
    if valid is not None and np.shape(valid) != (h, w):
        raise ValueError(f"valid must be (H, W) = ({h}, {w}), got {np.shape(valid)}")
    work = working_size(vertices, triangles, uv, size) if adaptive else int(size)
    texture, source = _bake(image_rgb, vertices, triangles, uv, work, valid, symmetric_fill)
    if before_resize is not None:
        texture = before_resize(texture)
    if work == size:
        return texture, source
    layout = uv_layout(np.asarray(uv, np.float32), np.ascontiguousarray(triangles, np.int32), size,
                       symmetric=symmetric_fill)
    source = resize_texture(source, size, nearest=True)
    source[~layout.inside] = 0
    source[layout.inside & (source == 0)] = 3  # island texels whose nearest working texel was gutter
    return resize_texture(texture, size), source


def _bake(image_rgb, vertices, triangles, uv, size, valid, symmetric_fill):
    """:func:`bake_texture` at exactly ``size`` (arguments already checked)."""
    h, w = image_rgb.shape[:2]
    tris = np.ascontiguousarray(triangles, dtype=np.int32)
    verts = np.ascontiguousarray(vertices, dtype=np.float32)
    layout = uv_layout(np.asarray(uv, np.float32), tris, size, symmetric=symmetric_fill)
    inside = layout.inside

    # the photo's z-buffer, rasterized only over the face's window of the photo (a 24 MP photo
    # would otherwise cost a full-frame raster per bake)
    finite = np.isfinite(verts[:, :2]).all(axis=1)
    fx, fy = verts[finite, 0], verts[finite, 1]
    wx0 = int(np.clip(np.floor(fx.min()) - 1, 0, w)) if fx.size else 0
    wx1 = int(np.clip(np.ceil(fx.max()) + 2, 0, w)) if fx.size else 0
    wy0 = int(np.clip(np.floor(fy.min()) - 1, 0, h)) if fy.size else 0
    wy1 = int(np.clip(np.ceil(fy.max()) + 2, 0, h)) if fy.size else 0
    if wx1 > wx0 and wy1 > wy0:
        window_depth = rasterize(verts - np.array([wx0, wy0, 0], np.float32), tris, wy1 - wy0, wx1 - wx0).depth
    else:  # the face lies entirely outside the photo
        window_depth = np.full((1, 1), -np.inf, np.float32)
    v, t = verts, tris
    area = (v[t[:, 1], 0] - v[t[:, 0], 0]) * (v[t[:, 2], 1] - v[t[:, 0], 1]) - (v[t[:, 2], 0] - v[t[:, 0], 0]) * (
        v[t[:, 1], 1] - v[t[:, 0], 1]
    )
    # grazing triangles (seen under more than ~78 degrees) are not sampled: at a profile's silhouette
    # their pixels are mostly background (the fit is a few px off there) - they are filled like hidden
    # texels instead (mirror / diffusion)
    e1 = v[t[:, 1]] - v[t[:, 0]]
    e2 = v[t[:, 2]] - v[t[:, 0]]
    n3 = np.linalg.norm(np.cross(e1, e2), axis=1)
    front = np.ascontiguousarray((area < 0) & (-area >= MIN_FACING * n3)).view(np.uint8)
    zr = float(np.ptp(verts[:, 2])) if len(verts) else 1.0
    tol = max(0.02 * zr, 1.0)
    vmask = None if valid is None else np.ascontiguousarray(np.asarray(valid) > 0).view(np.uint8)
    # One C++ pass per texel (texel_core.cpp): position in the photo by each triangle's affine
    # texel -> photo map (= the barycentric blend of the vertex positions); visible = front-facing triangle, the texel's rounded pixel covered by
    # the mesh (not background at the silhouette, not outside the photo) with the texel's depth
    # not behind the photo's z-buffer there, and allowed by ``valid``; the colour is a bilinear
    # sample of the photo (only the visible texels' colours are kept below).
    uvpx = np.ascontiguousarray(uv_to_pixels(np.asarray(uv, np.float32), size)[:, :2])
    sampled, vis_map = _raster.bake_sample(layout.tri_id, uvpx, tris, verts, front, window_depth,
                                           wx0, wy0, tol, np.ascontiguousarray(image_rgb), vmask)
    vis_map = _trim_silhouette(vis_map, inside)
    source = vis_map.view(np.uint8).copy()
    known = vis_map

    if symmetric_fill and layout.mirror_texel is not None:
        # the layout's mirror is the horizontal flip u -> 1 - u (valid where both texels are on islands)
        cand = layout.mirror_ok & ~vis_map & vis_map[:, ::-1]
        cand_u8 = cand.view(np.uint8)
        if cand.any():
            _mirror_fill(sampled, vis_map, cand)
        known = vis_map | cand
        source += cand_u8 * np.uint8(2)

    if not known.any():
        # nothing of the face is visible / allowed: a flat fill with the mean allowed photo colour
        pool = image_rgb if valid is None else image_rgb[np.asarray(valid) > 0]
        fill = pool.reshape(-1, 3).mean(axis=0) if pool.size else np.full(3, 128.0)
        sampled[:] = np.clip(np.rint(fill), 0, 255).astype(np.uint8)
    elif not known.all():
        _fill_uint8(sampled, known)
    source += (inside & ~known).view(np.uint8) * np.uint8(3)
    return sampled, source
