"""Composite stage: render every anonymized face back into the photo at its original pose.

Pure functions on arrays (no Typer/Rich); :func:`write_composite` is the one file-level helper,
used by ``faceanon composite`` and ``faceanon run``.

For each face (:class:`CompositeFace`: the morphed mesh at the ORIGINAL pose in image px, its UVs
and its baked texture):

1. the mesh is rasterized with the project rasterizer (:func:`faceanon.raster.rasterize`) inside its
   bounding box only (vertices offset to a crop window), at the photo's native resolution;
2. the UVs are interpolated per pixel and the texture is sampled bilinearly (``cv2.remap``;
   u -> x = u (T-1), v -> y = (1-v) (T-1), texture row 0 = v 1);
3. the render is blended into the base image with a feather weight: the coverage mask eroded by
   half the feather width, Gaussian-blurred (sigma = a quarter of it), times the coverage. The
   weight is therefore 0 outside the rendered pixels, rises over ``feather`` px inside the face
   border and is exactly 1 in the interior (values within 1e-4 of 0/1 are snapped).

Why feathering and not Poisson (``cv2.seamlessClone``): the texture was baked from this very photo,
so colours already match at the border and a short alpha ramp hides the seam. Poisson blending
would instead re-solve the colour of the WHOLE face from the boundary - shifting skin tone and
flattening lesions, redness and pigmentation, which are the clinical content users need intact - it
is not local (one odd boundary pixel tints the face), and it is much slower on large faces.

Faces are composited in increasing order of :attr:`CompositeFace.depth` (default: the face's
apparent size, since per-face z frames are not comparable across faces), so nearer faces are drawn
last and win where faces overlap. Only pixels covered by a face's render (or in the ``removed``
mask of :func:`composite_image`) change: every pixel outside the faces' boxes is exactly the base.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from faceanon.checks import check_image
from faceanon.io.formats import WRITE_BACK_EXTENSIONS, fallback_extension
from faceanon.stages.geometry import mask_window
from faceanon.stages.imageops import gaussian_blur
from faceanon.types import ImageRecord

__all__ = [
    "CompositeFace",
    "FaceFeatures",
    "composite_image",
    "render_face_crop",
    "sample_texture",
    "default_feather_px",
    "composite_extension",
    "write_composite",
    "posed_image_vertices",
    "FEATHER_FRACTION",
]

#: Default feather width as a fraction of the face size (square root of its rendered area, px).
FEATHER_FRACTION = 0.02
_SNAP = 1e-4


@dataclass
class CompositeFace:
    """One anonymized face to paint back into the photo.

    vertices: (N, 3) float32 image px - x right, y down, z larger = nearer - the morphed face AT THE
              ORIGINAL POSE (``AnonymizedFace.posed_image_vertices``)
    triangles:(M, 3) int32 indices into ``vertices``
    uv:       (N, 2) float in [0, 1], u right, v up
    texture:  (T, T', 3) uint8 RGB, row 0 = v 1
    depth:    optional compositing key, larger = nearer (drawn later); default: the face size
    source_vertices: optional (N, 3) float image px, the ORIGINAL fit (same vertex order). With it the
              face is composited IN PLACE (:mod:`faceanon.stages.warp`): the photo itself is warped
              so that the face takes the morphed shape, silhouette included, and the texture is drawn
              only where ``overlay`` asks for it and where the morphed face shows a surface point the
              photo did not see. Without it, the textured mesh is pasted over the photo.
    overlay:  optional (N,) float in [0, 1], per-vertex weight of the TEXTURE over the warped photo
              (e.g. 1 on the eyes and lips, whose identity-free replacements live in the texture,
              fading to 0 around them); only used with ``source_vertices``
    features: optional :class:`FaceFeatures` drawn on the warped photo (only with ``source_vertices``)
    """

    vertices: np.ndarray
    triangles: np.ndarray
    uv: np.ndarray
    texture: np.ndarray
    depth: Optional[float] = None
    source_vertices: Optional[np.ndarray] = None
    overlay: Optional[np.ndarray] = None
    features: Optional["FaceFeatures"] = None


@dataclass
class FaceFeatures:
    """Identity-free features to draw ON the warped photo (in place), through the morphed mesh's UVs.

    layers:     :class:`faceanon.stages.features.FeatureLayers` of the atlas the face's UVs refer to
    keep_mouth: the lips were kept: no lip colour and no line between the lips
    brow_rgb:   optional (3,) colour of the drawn eyebrows; None = the person's brows were kept
    chroma:     how colourful the skin is (faceanon.stages.features.skin_chroma): lips and eye shadows
                of a greyscale photo are darkened, not tinted

    Drawn this way the features take the light and colour of the photo right where they land (the
    warped, inpainted skin) - a texture rendered from the atlas would carry the light of wherever its
    texels were sampled (e.g. mirrored from the other side of the face).
    """

    layers: object
    keep_mouth: bool = False
    brow_rgb: Optional[np.ndarray] = None
    chroma: float = 1.0


def default_feather_px(face_size: float) -> float:
    """Feather width for a face whose rendered area is ``face_size``² px: max(2, 2 % of the size)."""
    return max(2.0, FEATHER_FRACTION * float(face_size))


def _check_face(i: int, f: CompositeFace, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    v = np.asarray(f.vertices)
    if v.ndim != 2 or v.shape[1] != 3 or not np.issubdtype(v.dtype, np.floating):
        raise ValueError(f"composite_image: faces[{i}].vertices must be (N, 3) float, got {v.shape} {v.dtype}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"composite_image: faces[{i}].vertices contain NaN or inf")
    n = v.shape[0]
    t = np.asarray(f.triangles)
    if t.ndim != 2 or t.shape[1] != 3 or not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"composite_image: faces[{i}].triangles must be (M, 3) int, got {t.shape} {t.dtype}")
    if t.size and (t.min() < 0 or t.max() >= n):
        raise ValueError(f"composite_image: faces[{i}].triangles index outside [0, {n})")
    uv = np.asarray(f.uv)
    if uv.shape != (n, 2):
        raise ValueError(f"composite_image: faces[{i}].uv must be ({n}, 2), got {uv.shape}")
    tex = check_image(f.texture, f"faces[{i}].texture", where="composite_image")
    return (np.ascontiguousarray(v, np.float32), np.ascontiguousarray(t, np.int32),
            np.asarray(uv, np.float64), np.ascontiguousarray(tex))


def _window(v: np.ndarray, h: int, w: int, pad: int) -> Optional[tuple[int, int, int, int]]:
    """Integer crop window (x0, y0, x1, y1) holding the vertices' bbox + pad, clipped; None if off-image."""
    x0 = int(np.floor(v[:, 0].min())) - pad
    y0 = int(np.floor(v[:, 1].min())) - pad
    x1 = int(np.ceil(v[:, 0].max())) + pad + 1
    y1 = int(np.ceil(v[:, 1].max())) + pad + 1
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def render_face_crop(vertices: np.ndarray, triangles: np.ndarray, uv: np.ndarray, texture: np.ndarray,
                     window: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Render a textured mesh (image px) inside ``window`` = (x0, y0, x1, y1).

    Returns ``(rgb (h, w, 3) uint8, covered (h, w) bool)`` for the window.
    """
    from faceanon.raster import rasterize

    x0, y0, x1, y1 = window
    local = vertices.copy()
    local[:, 0] -= x0
    local[:, 1] -= y0
    # No back-face culling: the z-buffer already keeps the nearest surface, and culling would turn a
    # mesh with the opposite winding (a mirrored fit) into NO face at all, i.e. the original photo
    # would survive - the one failure an anonymizer must not have.
    r = rasterize(local, triangles, y1 - y0, x1 - x0)
    return sample_texture(r, uv, texture), r.tri_id >= 0


def sample_texture(r, uv: np.ndarray, texture: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8: ``texture`` sampled bilinearly at the UVs interpolated over a raster ``r``
    (:class:`faceanon.raster.RasterResult`); 0 where the raster is empty."""
    from faceanon.raster import interpolate

    return texture_at(interpolate(r, np.asarray(uv)), r.tri_id >= 0, texture)


def texture_at(uvp: np.ndarray, covered: np.ndarray, texture: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8: ``texture`` sampled bilinearly at per-pixel UVs ``uvp`` (h, w, 2) (u right, v
    up); 0 where ``covered`` is False."""
    th, tw = texture.shape[:2]
    mapx = (uvp[..., 0] * (tw - 1)).astype(np.float32)
    mapy = ((1.0 - uvp[..., 1]) * (th - 1)).astype(np.float32)
    rgb = cv2.remap(texture, mapx, mapy, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    rgb[~covered] = 0
    return rgb


def _feather_weight(covered: np.ndarray, width: float) -> np.ndarray:
    """(h, w) float32 in [0, 1]: 0 off the coverage, ramping to exactly 1 over ``width`` px inside."""
    cov = covered.astype(np.float32)
    if width <= 0:
        return cov
    e = max(1, int(round(width / 2.0)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * e + 1, 2 * e + 1))
    # the image border counts as covered (erode's default border): no fade where a face is cut by it
    core = cv2.erode(covered.astype(np.uint8), kernel).astype(np.float32)
    sigma = max(width / 4.0, 0.5)
    wgt = gaussian_blur(core, sigma, border=cv2.BORDER_REPLICATE) * cov
    wgt[wgt < _SNAP] = 0.0
    wgt[wgt > 1.0 - _SNAP] = 1.0
    return wgt


def composite_image(base_rgb: np.ndarray, faces: Sequence[CompositeFace], *,
                    blend_px: Optional[float] = None, removed: Optional[np.ndarray] = None) -> np.ndarray:
    """Render every anonymized face into ``base_rgb`` at its original pose, blended at the border.

    base_rgb: (H, W, 3) uint8 RGB - normally the segmented photo's RGB (eyes/mouth inpainted)
    faces:    the faces (:class:`CompositeFace`), any order (sorted by ``depth``/size here)
    blend_px: width of the blend ramp inside the border of each PASTED face (one without
              ``source_vertices``) in px; ``None`` = 2 % of the face size (at least 2 px); 0 = hard edge
    removed:  optional (H, W) bool, pixels of the base that must not survive a pasted face (the
              segment stage's removed eyes/mouth): where a pasted face covers them its render
              replaces them at full weight, where none does they are re-inpainted from the
              composite. Harmless with a segmented base, and a safety net when the base is the
              original photo

    Returns a new (H, W, 3) uint8 image; ``base_rgb`` is not modified. Pixels outside every face's
    render (and the ``removed`` mask) are exactly the base.
    """
    base = check_image(base_rgb, "base_rgb", where="composite_image")
    if blend_px is not None and (not np.isfinite(blend_px) or blend_px < 0):
        raise ValueError(f"composite_image: blend_px must be >= 0 or None, got {blend_px}")
    h, w = base.shape[:2]
    if removed is not None and np.shape(removed) != (h, w):
        raise ValueError(f"composite_image: removed must be ({h}, {w}), got {np.shape(removed)}")
    checked = [(f, *_check_face(i, f, h, w)) for i, f in enumerate(faces)]

    def key(item) -> float:
        f, v = item[0], item[1]
        if f.depth is not None:
            return float(f.depth)
        return float(np.sqrt(max(np.ptp(v[:, 0]), 0.0) * max(np.ptp(v[:, 1]), 0.0)))

    checked.sort(key=key)  # stable: equal keys keep the given order
    removed_any = np.zeros((h, w), bool)
    covered_any = np.zeros((h, w), bool)
    in_place = [c for c in checked if c[0].source_vertices is not None]
    pasted = [c for c in checked if c[0].source_vertices is None]
    out = _composite_in_place(base, in_place, covered_any) if in_place else base.copy()
    removed = None if removed is None or not pasted else np.asarray(removed, bool)
    if removed is not None:
        removed_any |= removed
    for f, v, t, uv, tex in pasted:
        win = _window(v, h, w, pad=2)
        if win is None:
            continue
        x0, y0, x1, y1 = win
        rgb, covered = render_face_crop(v, t, uv, tex, win)
        if not covered.any():
            continue
        covered_any[y0:y1, x0:x1] |= covered
        size = float(np.sqrt(covered.sum()))
        width = default_feather_px(size) if blend_px is None else float(blend_px)
        wgt = _feather_weight(covered, width)
        if removed is not None:
            wgt[removed[y0:y1, x0:x1] & covered] = 1.0
        region = out[y0:y1, x0:x1]
        sel = wgt > 0
        a = wgt[sel][:, None]
        region[sel] = np.clip(np.rint(region[sel] * (1.0 - a) + rgb[sel] * a), 0, 255).astype(np.uint8)
    must_fill = removed_any & ~covered_any
    if must_fill.any():
        # removed pixels no face covers: Telea-fill them from the pixels around them (never from themselves)
        y0, y1, x0, x1 = mask_window(must_fill, 8)
        m = must_fill[y0:y1, x0:x1]
        filled = cv2.inpaint(np.ascontiguousarray(out[y0:y1, x0:x1]), m.astype(np.uint8) * 255, 3.0,
                             cv2.INPAINT_TELEA)
        out[y0:y1, x0:x1][m] = filled[m]
    return out


#: Width (px) of the soft edge of the texture drawn over hidden-in-the-photo surface points.
HIDDEN_FEATHER_PX = 1.5
#: The texture painted there is colour-matched to the warped photo on a ring of this width (x the face
#: size) around it.
HIDDEN_RING_FRACTION = 0.04


def _composite_in_place(base: np.ndarray, faces: list, covered_any: np.ndarray) -> np.ndarray:
    """The warp path of :func:`composite_image` for the faces with ``source_vertices`` (sorted far to
    near). Updates ``covered_any`` (the pixels the texture fully replaced) in place."""
    from faceanon.stages.warp import face_warp, warp_image

    h, w = base.shape[:2]
    warps = []
    for f, v, t, _uv, _tex in faces:
        src = np.asarray(f.source_vertices)
        if src.shape != v.shape or not np.issubdtype(src.dtype, np.floating) or not np.all(np.isfinite(src)):
            raise ValueError(f"composite_image: source_vertices must be finite {v.shape} float like vertices, "
                             f"got {src.shape} {src.dtype}")
        warps.append(face_warp(src, v, t, h, w))
    out = warp_image(base, warps)
    for (f, v, t, uv, tex), wp in zip(faces, warps):
        if wp is None:
            continue
        x0, y0, x1, y1 = wp.window
        alpha = np.zeros(wp.covered.shape, np.float32)
        if f.overlay is not None:
            ov = np.asarray(f.overlay, np.float64)
            if ov.shape != (v.shape[0],):
                raise ValueError(f"composite_image: overlay must be ({v.shape[0]},), got {ov.shape}")
            alpha = np.clip(wp.interpolate(np.clip(ov, 0.0, 1.0)), 0.0, 1.0)
        if wp.hidden.any():
            hid = gaussian_blur(wp.hidden.astype(np.float32), HIDDEN_FEATHER_PX)
            alpha = np.maximum(alpha, np.clip(2.0 * hid, 0.0, 1.0))
        alpha[~wp.covered] = 0.0
        alpha[alpha < _SNAP] = 0.0
        alpha[alpha > 1.0 - _SNAP] = 1.0
        sel = alpha > 0
        region = out[y0:y1, x0:x1]
        uvp = wp.interpolate(np.asarray(uv, np.float64)) if sel.any() or f.features is not None else None
        if sel.any():
            # the texture only where it is drawn (a bounding box of those pixels, plus a ring)
            ring_px = max(3, int(round(HIDDEN_RING_FRACTION * np.sqrt(wp.covered.sum()))))
            a0, a1, b0, b1 = mask_window(sel, ring_px)
            win = (slice(a0, a1), slice(b0, b1))
            rgb = texture_at(uvp[win], wp.covered[win], tex)
            s_w = sel[win]
            # the texture's light comes from where its texels were sampled (often the other side of the
            # face): match its mean colour to the warped photo's on a ring of visible face around it
            near = cv2.distanceTransform((~s_w).astype(np.uint8), cv2.DIST_L2, 3) <= ring_px
            ring = wp.covered[win] & ~s_w & near
            if ring.sum() >= 16:
                gain = (region[win][ring].astype(np.float32).mean(axis=0) + 1.0) / \
                       (rgb[ring].astype(np.float32).mean(axis=0) + 1.0)
                rgb = np.clip(np.rint(rgb.astype(np.float32) * np.clip(gain, 0.5, 2.0)), 0, 255).astype(np.uint8)
            a = alpha[win][s_w][:, None]
            sub = region[win]
            sub[s_w] = np.clip(np.rint(sub[s_w] * (1.0 - a) + rgb[s_w] * a), 0, 255).astype(np.uint8)
            covered_any[y0:y1, x0:x1] |= alpha >= 1.0
        if f.features is not None:
            _draw_features(region, wp.covered, uvp, f.features)
    return out


def _draw_features(region: np.ndarray, covered: np.ndarray, uvp: np.ndarray, feat: "FaceFeatures") -> None:
    """Multiply the warped photo ``region`` (the face's window, modified in place) by the feature
    layers looked up at the per-pixel UVs ``uvp`` (h, w, 2) of the morphed mesh (``covered`` (h, w)),
    and lay the brows over it."""

    layers = feat.layers
    ly0, ly1, lx0, lx1 = layers.window
    if ly1 <= ly0 or lx1 <= lx0:
        return
    size = layers.atlas_size
    mapx = (uvp[..., 0] * (size - 1) - lx0).astype(np.float32)
    mapy = ((1.0 - uvp[..., 1]) * (size - 1) - ly0).astype(np.float32)
    # only the pixels whose UV falls in the drawing's window can change
    inside = covered & (mapx >= 0) & (mapy >= 0) & (mapx <= lx1 - lx0 - 1) & (mapy <= ly1 - ly0 - 1)
    if not inside.any():
        return
    a0, a1, b0, b1 = mask_window(inside, 0)  # and only their bounding box is looked up
    region = region[a0:a1, b0:b1]
    inside = inside[a0:a1, b0:b1]
    mapx = np.where(inside, mapx[a0:a1, b0:b1], -10.0).astype(np.float32)
    mapy = np.where(inside, mapy[a0:a1, b0:b1], -10.0).astype(np.float32)

    def look(a: np.ndarray, border: float) -> np.ndarray:
        return cv2.remap(a, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=border)

    from faceanon.stages.features import warm_shade, with_chroma

    shade = look(layers.eyes, 1.0) * look(layers.relief[..., 0], 1.0)
    if feat.brow_rgb is not None:
        shade *= look(layers.relief[..., 1], 1.0)
    if not feat.keep_mouth:
        shade *= look(layers.relief[..., 2], 1.0)
    factor = warm_shade(shade, feat.chroma)
    if not feat.keep_mouth:
        factor *= with_chroma(look(layers.mouth, 1.0).reshape(factor.shape), feat.chroma)
    px = region[inside].astype(np.float32) * factor[inside]
    if feat.brow_rgb is not None:
        a = look(layers.brows, 0.0)[inside][:, None]
        px = px * (1.0 - a) + np.asarray(feat.brow_rgb, np.float32).reshape(1, 3) * a
    region[inside] = np.clip(np.rint(px), 0, 255).astype(np.uint8)


def posed_image_vertices(anon_vertices: np.ndarray, recon_vertices: np.ndarray, height: int,
                         v2d: Optional[np.ndarray] = None) -> np.ndarray:
    """Place an anonymized OBJ back at the original pose, in image px (for ``faceanon composite``).

    anon_vertices:  (N, 3) the anonymize output OBJ's vertices - canonical frame (default) or the
                    photo frame (``--keep-pose``), either works
    recon_vertices: (N, 3) the reconstruct OBJ's vertices the anonymization started from
                    (faceanon: the y-up photo frame (x, H - y, z))
    height:         image height H
    v2d:            optional (N, 2) ``v2d_full`` image px of the original vertices; used only when
                    ``recon_vertices`` are not photo-aligned (the seed's OBJ is in the model's world
                    frame): an affine (weak-perspective) map from that frame to the image is then
                    fitted on (recon_vertices, v2d)

    The anonymize stage maps the fit X to the mean U with ``sim = umeyama(X, U)`` and morphs
    ``B = (1 - a) sim(X) + a U``. ``umeyama(X, B)`` equals ``sim`` exactly for every ``a`` (the
    cross-covariance keeps the polar rotation and trace of the U fit), so ``sim^-1(B)`` - the
    keep-pose vertices the ``run`` pipeline composites - is recovered from the files alone; for a
    keep-pose OBJ the same fit is the identity. Past the mean face (``--alpha`` above 1, only the
    identity part pushed) ``umeyama(X, B)`` is no longer exactly ``sim``: the vertices land within
    0.1-0.4 px of the run's (kim3, barry12, eos_image_0010, dhawleyg at 1.5 and 2.0). Returns (N, 3) float32 x right, y down, larger z
    nearer.
    """
    from faceanon.stages.geometry import umeyama

    B = np.asarray(anon_vertices, np.float64)
    X = np.asarray(recon_vertices, np.float64)
    if B.ndim != 2 or B.shape[1] != 3 or X.shape != B.shape:
        raise ValueError(f"posed_image_vertices: anonymized {B.shape} and reconstructed {X.shape} meshes "
                         "must both be (N, 3) with the same N")
    posed = umeyama(X, B).inverse_apply(B)  # in X's frame
    out = np.empty_like(posed)
    aligned = True
    if v2d is not None:
        v2d = np.asarray(v2d, np.float64)
        if v2d.shape != (X.shape[0], 2):
            raise ValueError(f"posed_image_vertices: v2d must be ({X.shape[0]}, 2), got {v2d.shape}")
        img_xy = np.column_stack([X[:, 0], height - X[:, 1]])
        size = float(np.sqrt(max(np.ptp(v2d[:, 0]), 1.0) * max(np.ptp(v2d[:, 1]), 1.0)))
        aligned = float(np.median(np.linalg.norm(img_xy - v2d, axis=1))) <= 0.02 * size + 1.0
    if aligned:
        out[:, 0] = posed[:, 0]
        out[:, 1] = height - posed[:, 1]
        out[:, 2] = posed[:, 2]
    else:
        A = np.column_stack([X, np.ones(len(X))])
        M, *_ = np.linalg.lstsq(A, v2d, rcond=None)  # (4, 2): image x, y = [X, 1] @ M
        P = np.column_stack([posed, np.ones(len(posed))])
        out[:, :2] = P @ M
        ax, ay = M[:3, 0], M[:3, 1]
        n = -np.cross(ax, ay)  # image x right, y down => x cross y points away from the camera
        norm = float(np.linalg.norm(n))
        scale = float(np.sqrt(np.linalg.norm(ax) * np.linalg.norm(ay)))
        out[:, 2] = posed @ (n / norm) * scale if norm > 0 else 0.0
    return out.astype(np.float32)


_KEEP_EXTENSIONS = WRITE_BACK_EXTENSIONS  # HEIC/AVIF -> .jpg, GIF/DICOM -> .png: fallback_extension


def composite_extension(original: ImageRecord) -> str:
    """Output extension for an input: its own (lower case) for jpg/jpeg/png/webp/tif/tiff/bmp, .jpg for
    HEIC/HEIF/AVIF, else .png."""
    try:
        ext = Path(str(original.path)).suffix.lower()
    except Exception:
        ext = ""
    return ext if ext in _KEEP_EXTENSIONS else fallback_extension(original)


def write_composite(path: Path | str, rgb: np.ndarray, *, original: ImageRecord) -> Path:
    """Write the anonymized photo like its input, minus every identifying metadata.

    path:     target file, normally ``<out>/anonymized/<stem><ext>`` with ``ext =
              composite_extension(original)``; when ``path`` has no image extension, that
              extension is appended
    rgb:      (H, W, 3) uint8, upright (EXIF orientation already baked in by ``load_image``)
    original: the input's record - its ICC profile is kept; JPEG quality is max(95, the input's
              estimated quality)

    Nothing else is carried over: no EXIF (so no orientation tag, GPS, maker notes, embedded
    thumbnail), no XMP, no comments (``save_image_atomic`` writes none). Returns the written path.
    """
    from faceanon.io.images import save_image_atomic

    target = Path(path)
    if target.suffix.lower() not in _KEEP_EXTENSIONS:
        target = target.with_name(target.name + composite_extension(original))
    q = 95
    if original.jpeg_quality is not None:
        q = min(100, max(95, int(original.jpeg_quality)))
    save_image_atomic(target, np.ascontiguousarray(rgb), icc=original.icc, jpeg_quality=q)
    return target
