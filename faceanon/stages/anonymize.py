"""Anonymize stage: morph a fitted face toward the population mean and re-bake its texture.

Pure functions on arrays (no Typer/Rich, no files); ``faceanon anonymize`` and ``faceanon run`` call
:func:`anonymize_face`.

Geometry (fixes seed bug S-23, docs/seed_compatibility.md), from the fitted face in image space:

1. ``sim = umeyama(X, U)``: the similarity (s, R, t) that best maps the fitted vertices ``X`` onto
   the mean face ``U`` (the model's canonical frame: y up, z toward the viewer, model units).
   Reflection-safe; ``X`` is the fit in the photo's y-up frame ``(x, H - y, z)`` (px), the working
   frame of the morph because the mean face is y-up too.
2. ``B = (1 - alpha) * sim(X) + alpha * U``: the morph, in the mean's canonical frame
   (:attr:`AnonymizedFace.canonical`). With ``alpha = 1`` it is exactly the mean face. Past the mean
   (``1 < alpha <= 2``) ``B = U - (alpha - 1) * D_id``: the face goes on, beyond the mean, away from the
   person's own shape, where ``D_id`` is the IDENTITY part of the deviation ``sim(X) - U`` (least squares
   on the model's identity and expression bases, :class:`faceanon.models.base.ShapeBasis`), so a smile
   does not turn into a frown; without a basis ``D_id`` is the whole deviation (docs/anonymization.md,
   "Past the mean face").
3. ``posed_image_vertices``: ``sim^-1(B)`` back in image px at the subject's original pose,
   position and head scale, which the composite stage warps the photo to.

The OBJ files are written by :mod:`faceanon.io.facefiles`: ``B`` in millimetres with the origin at
the centre of the mean face's bounding box (no pose, position or head scale of the subject), or
with ``keep_pose`` ``sim^-1(B)`` in the photo's y-up frame (the head scale kept on purpose so the
mesh overlays the photo; a mild identity cue, seed bug S-24).

Texture: re-baked at ``tex_size`` from the (segmented) photo with
:func:`faceanon.stages.texture.bake_texture` - per texel, visibility-aware (image-space z-buffer of
the ORIGINAL fit, so occluded texels never take the occluder's colour, S-17), mirrored / diffused
fill for hidden texels, and a gutter around the UV islands (S-20). The callers pass the SEGMENTED
photo's RGB (eyes/mouth already inpainted), so no original eye/lip pixel reaches the texture; an
optional ``valid`` mask additionally excludes pixels as sources (they are then filled like hidden
texels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from faceanon.checks import check_image
from faceanon.errors import UsageError
from faceanon.options import ALPHA, TEX_SIZE
from faceanon.stages.geometry import Similarity, umeyama

if TYPE_CHECKING:
    from faceanon.models.base import ShapeBasis


@dataclass
class AnonymizedFace:
    """Result of :func:`anonymize_face`.

    canonical:             (N, 3) float64 the morphed face in the model's canonical frame (x right,
                           y up, z toward the viewer, model units)
    mean_vertices:         (N, 3) the mean face it was morphed toward (same frame)
    texture:               (T, T, 3) uint8 RGB UV texture (row 0 = v 1)
    posed_image_vertices:  (N, 3) float32 morphed face at the ORIGINAL pose in image px
                           (x right, y down, z larger = nearer), for compositing
    similarity:            the Umeyama similarity from the fit in the photo's y-up frame
                           (x, H - y, z) to the mean (``.s, .R, .t``)
    texture_source:        (T, T) uint8 0 gutter / 1 photo / 2 mirrored / 3 diffused (see bake_texture)
    feature_layers:        the :class:`faceanon.stages.features.FeatureLayers` painted on the texture
                           (None without ``features``), for the composite to draw the same features
    brow_rgb:              (3,) colour the eyebrows were drawn in, or None (brows not drawn)
    """

    canonical: np.ndarray
    mean_vertices: np.ndarray
    texture: np.ndarray
    posed_image_vertices: np.ndarray
    similarity: Similarity
    texture_source: np.ndarray | None = None
    feature_layers: object | None = None
    brow_rgb: np.ndarray | None = None


@dataclass(frozen=True)
class FeatureSpec:
    """What :func:`anonymize_face` needs to paint the identity-free features.

    landmark_ids: (68,) int vertex ids of the iBUG-68 landmarks of the model (``FaceFit.landmark_ids``)
    keep_mouth:   paint only the eyes (the lips were kept)
    brows:        paint the mean face's eyebrows (the person's were removed)
    brow_rgb:     optional (3,) colour of the brows (:func:`faceanon.stages.features.brow_colour`);
                  None = a dark shade of the skin under them
    vertex_labels: optional (N,) part labels of the model (``FaceFit.vertex_labels``): the removed
                  regions get the mean face's relief
    chroma:       :func:`faceanon.stages.features.skin_chroma` of the face (1 = full lip colour)
    """

    landmark_ids: np.ndarray
    keep_mouth: bool = False
    brows: bool = False
    brow_rgb: np.ndarray | None = None
    vertex_labels: np.ndarray | None = None
    chroma: float = 1.0


MAX_ALPHA = ALPHA.max


def check_alpha(alpha: float) -> float:
    """Validate the morph strength (0 = original shape, 1 = the mean shape, up to 2 = past the mean,
    as far beyond it as the person is from it)."""
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise UsageError(f"alpha must be a number in [0, {MAX_ALPHA:g}], got {alpha!r}") from None
    if not np.isfinite(a) or a < 0.0 or a > MAX_ALPHA:
        raise UsageError(f"alpha must be in [0, {MAX_ALPHA:g}], got {alpha}",
                         f"use --alpha between 0 (no morph), 1 (the mean face) and {MAX_ALPHA:g} (past the mean)")
    return a


def morph_vertices(
    vertices: np.ndarray, mean_vertices: np.ndarray, alpha: float, basis: "ShapeBasis | None" = None
) -> tuple[np.ndarray, np.ndarray, Similarity]:
    """The geometric part of :func:`anonymize_face`: ``vertices`` (N, 3) the fit in a y-up frame.

    Returns ``(canonical (N,3) float64, posed (N,3) float64 in the frame of vertices, similarity)`` where
    ``canonical = (1-alpha) sim(X) + alpha U`` for ``alpha <= 1``, ``U - (alpha-1) D_id`` past the mean
    (``D_id``: the identity part of ``sim(X) - U`` by ``basis``, the whole deviation without one; see the
    module doc) and ``posed = sim^-1(canonical)``.
    """
    alpha = check_alpha(alpha)
    X = np.asarray(vertices, np.float64)
    U = np.asarray(mean_vertices, np.float64)
    if X.ndim != 2 or X.shape[1] != 3:
        raise ValueError(f"vertices must be (N, 3), got {X.shape}")
    if U.shape != X.shape:
        raise ValueError(
            f"mean_vertices {U.shape} do not match the mesh {X.shape}: the mean face must come from the "
            "backend that fitted the mesh"
        )
    sim = umeyama(X, U)
    if alpha <= 1.0:
        canonical = (1.0 - alpha) * sim.apply(X) + alpha * U
    else:
        deviation = sim.apply(X) - U
        if basis is not None:
            if basis.n_vertices != U.shape[0]:
                raise ValueError(f"the shape basis has {basis.n_vertices} vertices, the mesh {U.shape[0]}")
            deviation = basis.identity_part(deviation)
        canonical = U - (alpha - 1.0) * deviation
    posed = sim.inverse_apply(canonical)
    return canonical, posed, sim


def anonymize_face(
    vertices: np.ndarray,
    triangles: np.ndarray,
    uv: np.ndarray,
    image_rgb: np.ndarray,
    mean_vertices: np.ndarray,
    *,
    alpha: float = ALPHA.default,
    tex_size: int = TEX_SIZE.default,
    valid: np.ndarray | None = None,
    features: "FeatureSpec | None" = None,
    basis: "ShapeBasis | None" = None,
) -> AnonymizedFace:
    """Morph a fitted face toward the mean face and re-bake its texture from ``image_rgb``.

    vertices:      (N, 3) float, the fitted face in image space (``FaceFit.vertices``): x right,
                   y down in px, z larger = nearer the camera
    triangles:     (M, 3) int, outward CCW in a y-up frame (project convention)
    uv:            (N, 2) float in [0, 1], u right, v up
    image_rgb:     (H, W, 3) uint8 texture source, normally the SEGMENTED photo (eyes/mouth inpainted)
    mean_vertices: (N, 3) float, the backend's mean face in its canonical frame (y up, z to viewer)
    alpha:         morph strength in [0, 2]; 1 = mean shape, above 1 past the mean, away from the person
    tex_size:      output texture side (px)
    valid:         optional (H, W) mask (e.g. the segmented image's alpha): only pixels > 0 are texture
                   sources
    features:      optional :class:`FeatureSpec`: paint identity-free eyes (and lips) drawn from the
                   mean face onto the baked texture (:mod:`faceanon.stages.features`); None leaves the
                   texture as baked (``--fill inpaint``)
    basis:         the backend's :class:`~faceanon.models.base.ShapeBasis` (``backend.shape_basis()``):
                   past the mean face only the identity is pushed (see the module doc); unused for
                   ``alpha <= 1``
    """
    image_rgb = check_image(image_rgb, "image_rgb", where="anonymize_mesh")
    h, w = image_rgb.shape[:2]
    image_vertices = np.ascontiguousarray(vertices, np.float32)
    if image_vertices.ndim != 2 or image_vertices.shape[1] != 3:
        raise ValueError(f"vertices must be (N, 3), got {image_vertices.shape}")
    n = image_vertices.shape[0]
    tris = np.ascontiguousarray(triangles, np.int32)
    if tris.ndim != 2 or tris.shape[1] != 3:
        raise ValueError(f"triangles must be (M, 3), got {tris.shape}")
    if tris.size and (tris.min() < 0 or tris.max() >= n):
        raise ValueError("triangles index outside the vertex array")
    uv = np.asarray(uv, np.float32)
    if uv.shape != (n, 2):
        raise ValueError(f"uv must be ({n}, 2), got {uv.shape}")
    if valid is not None and np.shape(valid) != (h, w):
        raise ValueError(f"valid must be ({h}, {w}) like the image, got {np.shape(valid)}")
    if int(tex_size) < 8:
        raise UsageError(f"tex_size must be >= 8, got {tex_size}")

    # the morph's working frame: y up like the mean face (step 1 of the module doc)
    X = image_vertices.copy()
    X[:, 1] = h - X[:, 1]
    canonical, posed, sim = morph_vertices(X, mean_vertices, alpha, basis)
    # the texture: visibility from the ORIGINAL fit in image px

    from faceanon.stages.texture import bake_texture

    painted: dict = {}

    def paint(texture: np.ndarray) -> np.ndarray:
        """The identity-free features, painted at the size the texture was baked at (before its
        resample to tex_size: the drawing is smooth, and 1024² holds 4x fewer texels than 2048²)."""
        from faceanon.stages.features import BROW_FROM_SKIN, feature_layers, paint_features

        layers = feature_layers(mean_vertices, tris, uv, features.landmark_ids, texture.shape[0],
                                features.vertex_labels)
        brow_rgb = None
        if features.brows:
            brow_rgb = features.brow_rgb
            if brow_rgb is None:  # a dark shade of the skin around the brows
                y0, y1, x0, x1 = layers.window
                sel = layers.brows > 0.3
                skin = (texture[y0:y1, x0:x1][sel] if sel.any() else texture.reshape(-1, 3)).reshape(-1, 3).mean(axis=0)
                brow_rgb = skin * np.asarray(BROW_FROM_SKIN, np.float32)
        painted.update(layers=layers, brow_rgb=brow_rgb)
        return paint_features(texture, layers, keep_mouth=features.keep_mouth, brow_rgb=brow_rgb,
                              chroma=features.chroma)

    texture, source = bake_texture(image_rgb, image_vertices, tris, uv, int(tex_size), valid=valid,
                                   before_resize=paint if features is not None else None)
    layers, brow_rgb = painted.get("layers"), painted.get("brow_rgb")

    posed_img = posed.astype(np.float32)
    posed_img[:, 1] = h - posed_img[:, 1]
    return AnonymizedFace(
        canonical=canonical,
        mean_vertices=mean_vertices,
        texture=texture,
        posed_image_vertices=posed_img,
        similarity=sim,
        texture_source=source,
        feature_layers=layers,
        brow_rgb=None if brow_rgb is None else np.asarray(brow_rgb, np.float32),
    )
