"""Segment stage: remove the eyes (and, by default, the lips) of every face of an image.

Pure functions on arrays (no Typer/Rich, no file I/O) so that ``faceanon run`` chains them in
memory; ``faceanon segment`` (:mod:`faceanon.cli.segment_cmd`) reads and writes the files.

What :func:`segment_image` does, for every face of the image (fixing seed bugs S-14 and S-15, docs/seed_compatibility.md):

1. **removed region** - the pixels labelled right/left eye (1, 2) and, unless ``keep_mouth``, upper/
   lower lip (6, 7), grown by ``margin x IOD`` px (Euclidean distance, i.e. a disc structuring
   element). The margin is a FRACTION OF THE INTER-OCULAR DISTANCE of that face, so a face 4x
   smaller gets a 4x smaller margin and the same relative coverage; the seed's margin in pixels
   (default 0) left eyelids and lashes of small or closed eyes in place (S-14). The union over the
   faces is removed.
2. **alpha** - exactly 0 on every removed pixel (the seed's Gaussian feather straddled the border,
   so alpha > 0 mixed original eye pixels back in, S-15), then an OUTWARD smoothstep ramp: a
   pixel at Euclidean distance ``d`` px from the removed region gets
   ``255 * smoothstep(d / (feather_px + 1))``, i.e. the ``feather_px`` pixels just outside are
   partially transparent and everything farther away is 255.
3. **RGB** - the removed region is filled by Telea inpainting (``cv2.inpaint``, radius
   max(3, 0.008 IOD); faces with IOD > 480 px are filled at a reduced scale then refined along the
   border at full resolution) from the pixels around it, so it holds no original eye/mouth pixel; every other pixel - the feather ring
   included - keeps the original RGB exactly (the skin is clinical data: it is never blurred or
   blended). Consumers use the alpha to know which pixels are real.

Inter-ocular distance (IOD): the outer eye corners' distance (landmarks 36-45), as
:attr:`faceanon.types.FaceFit.inter_ocular`. For the seed's npz files, which have no landmarks,
:func:`estimate_inter_ocular` derives it from the part labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np

from faceanon.checks import check_image
from faceanon.options import FEATHER_PX
from faceanon.stages.geometry import mask_window
from faceanon.stages.imageops import gaussian_blur
from faceanon.stages.privacy import DEFAULT_PRIVACY, PRIVACY_LEVELS
from faceanon.types import EYE_LABELS, LIP_LABELS, removal_parts

__all__ = [
    "FaceMesh",
    "SegmentFace",
    "removed_region_3d",
    "segment_image",
    "removed_region",
    "feather_alpha",
    "estimate_inter_ocular",
    "inpaint_radius",
    "EYE_CENTROID_TO_IOD",
    "FACE_WIDTH_TO_IOD",
]

#: Distance between the eye-label centroids (~ the pupils) divided by the outer-corner IOD. The eye
#: labels span the palpebral fissure (~30 % of the outer-corner distance each), so the centroids sit
#: ~0.7 IOD apart; checked on the 3DDFA-V3 fixtures: edo 292 px / (754 - 334) px outer extent = 0.70,
#: sis 204 / 289 = 0.71.
EYE_CENTROID_TO_IOD = 0.70
#: Fallback when an eye label is missing (profile, occlusion): IOD ~ 0.55 x width of the labelled
#: face (edo 420 / 702 = 0.60, sis 289 / 532 = 0.54 on the fixtures).
FACE_WIDTH_TO_IOD = 0.55
#: Telea radius as a fraction of the IOD (at least 3 px). Telea's cost grows with radius² x the
#: removed area, and the removed area grows with IOD², so the radius stays small.
INPAINT_RADIUS_FRACTION = 0.008
#: Faces with a larger IOD (px) are inpainted at a reduced scale where their IOD is
#: INPAINT_TARGET_IOD, then refined at full resolution along the border (see _inpaint).
INPAINT_LARGE_IOD = 480.0
#: Gaussian smoothing of the fill's interior (sigma as a fraction of the IOD), see _smooth_fill.
SMOOTH_FRACTION = 0.03
INPAINT_TARGET_IOD = 320.0
#: Distance between the eye-labelled VERTEX centroids in 3D divided by the outer-corner IOD, on the
#: lite model's mean face (0.763: the lite eye regions include the lids, so their centroids sit a
#: little outside the pupils). Used to size the removal from the 3D face (FaceMesh.inter_ocular_3d).
EYE_CENTROID_TO_IOD_3D = 0.76
#: A lower bound of the inter-ocular distance from the detection box's mean side, for faces without a
#: 3D mesh (the seed's files): frontal fixture faces have IOD / box side of 0.42-0.50 (CenterFace
#: boxes), so 0.40 never exceeds a frontal face's IOD while keeping a profile's margin.
BOX_TO_IOD = 0.40
#: How far beyond the face's own pixels (its rasterized mesh) a removal may reach, as a fraction of the
#: 3D inter-ocular distance: enough for the lashes and lids that stand out of a profile's silhouette
#: (~10 mm at an IOD of ~95 mm), not more, so that a margin does not spread over the background or a
#: hand in front of the face (6 % of the removed pixels on the turned eos_image_0010 before).
FACE_BAND = 0.10


@dataclass
class FaceMesh:
    """The fitted 3D face of one face, in image space (what the pose-aware removal needs).

    vertices:      (N, 3) float image px - x right, y down, z larger = nearer (``FaceFit.vertices``)
    triangles:     (M, 3) int indices into ``vertices``
    vertex_labels: (N,) uint8 part label of every vertex (0..8, see :mod:`faceanon.types`)
    """

    vertices: np.ndarray
    triangles: np.ndarray
    vertex_labels: np.ndarray

    def inter_ocular_3d(self) -> float:
        """The face's inter-ocular distance in px measured IN 3D, so it does not shrink when the head
        turns (a projected distance goes to 0 at profile): the distance between the centroids of the
        eye-labelled vertices divided by :data:`EYE_CENTROID_TO_IOD_3D`. 0.0 without eye vertices."""
        v = np.asarray(self.vertices, np.float64)
        lab = np.asarray(self.vertex_labels)
        c = [v[lab == k].mean(axis=0) for k in EYE_LABELS if (lab == k).any()]
        if len(c) != 2 or not np.all(np.isfinite(c)):
            return 0.0
        return float(np.linalg.norm(c[0] - c[1])) / EYE_CENTROID_TO_IOD_3D


@dataclass
class SegmentFace:
    """One face to segment.

    labels:       (H, W) uint8 part labels of THIS face (0 background .. 8 skin, see
                  :mod:`faceanon.types`), same size as the image
    inter_ocular: outer-eye-corner distance in px (``FaceFit.inter_ocular``); ``None`` (or a
                  non-positive / non-finite value) -> :func:`estimate_inter_ocular` from the labels
    mesh:         the fitted 3D face (:class:`FaceMesh`), optional. With it the removal is
                  POSE-AWARE (see :func:`removed_region_3d`): sized by the 3D inter-ocular distance,
                  covering the eyes' and lips' whole projection (hidden parts included) and kept on
                  the face. Without it the label map alone is grown by a fraction of
                  ``inter_ocular`` (the projected distance, which shrinks as the head turns).
    box:          optional (4,) detection box [x1, y1, x2, y2]; without a mesh, its size bounds the
                  inter-ocular distance from below (:data:`BOX_TO_IOD`), so a profile's removal
                  margin does not vanish with its projected eye distance
    """

    labels: np.ndarray
    inter_ocular: Optional[float] = None
    mesh: Optional[FaceMesh] = None
    box: Optional[np.ndarray] = None

    def iod(self) -> float:
        """The inter-ocular distance (px) that sizes this face's removal margin."""
        if self.mesh is not None:
            v = self.mesh.inter_ocular_3d()
            if v > 0:
                return v
        v = self.inter_ocular
        projected = float(v) if v is not None and np.isfinite(v) and v > 0 else estimate_inter_ocular(self.labels)
        if self.box is not None:
            b = np.asarray(self.box, np.float64).reshape(-1)
            if b.size >= 4 and np.all(np.isfinite(b[:4])):
                side = ((b[2] - b[0]) + (b[3] - b[1])) / 2.0
                projected = max(projected, BOX_TO_IOD * float(side))
        return projected


#: Default removal margin, as a fraction of the inter-ocular distance: the ``standard`` privacy level
#: (faceanon/stages/privacy.py; the levels' measured trade-off is in bench/privacy.md).
DEFAULT_MARGIN = PRIVACY_LEVELS[DEFAULT_PRIVACY].margin


def estimate_inter_ocular(labels: np.ndarray, landmarks68: Optional[np.ndarray] = None) -> float:
    """Inter-ocular (outer eye corners) distance of one face in px.

    labels: (H, W) uint8 part labels; landmarks68: optional (68, 2) image px (iBUG order).
    With landmarks: ``|lm[36] - lm[45]|``. Else: distance of the centroids of labels 1 and 2
    divided by :data:`EYE_CENTROID_TO_IOD`; if an eye label is empty: :data:`FACE_WIDTH_TO_IOD` x
    the width of the labelled face (labels > 0). Returns 0.0 for an empty label map.
    """
    if landmarks68 is not None:
        lm = np.asarray(landmarks68, dtype=np.float64)
        if lm.shape == (68, 2) and np.all(np.isfinite(lm[[36, 45]])):
            d = float(np.linalg.norm(lm[36] - lm[45]))
            if d > 0:
                return d
    labels = np.asarray(labels)
    centres = []
    for lab in EYE_LABELS:
        ys, xs = np.nonzero(labels == lab)
        if xs.size == 0:
            break
        centres.append((xs.mean(), ys.mean()))
    if len(centres) == 2:
        d = float(np.hypot(centres[0][0] - centres[1][0], centres[0][1] - centres[1][1]))
        if d > 0:
            return d / EYE_CENTROID_TO_IOD
    cols = np.nonzero((labels > 0).any(axis=0))[0]
    if cols.size == 0:
        return 0.0
    return float(cols[-1] - cols[0] + 1) * FACE_WIDTH_TO_IOD


def inpaint_radius(iod: float) -> int:
    """Telea neighbourhood radius for a face of this IOD: max(3, round(0.008 x IOD)) px."""
    return max(3, int(round(INPAINT_RADIUS_FRACTION * max(float(iod), 0.0))))


def _distance_to(mask: np.ndarray) -> np.ndarray:
    """(H, W) float32 Euclidean distance of every pixel to the nearest True pixel of ``mask``."""
    if not mask.any():
        return np.full(mask.shape, np.inf, np.float32)
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


#: The removal margin of the lips and eyebrows relative to the eyes' (``margin``): the eyes are the
#: strongest identity cue and their labels are tight; the lip and brow labels already include a margin
#: (lite: 14 % of the mouth width, brow bands), and a full margin merged brows, eyes and cheeks into
#: one smooth patch on the fixtures.
PART_MARGIN_SCALE = {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0, 6: 1.0, 7: 1.0}


def _part_core(labels: np.ndarray, mesh: FaceMesh, parts: Sequence[int]) -> np.ndarray:
    """(H, W) bool: the visible ``parts`` labels OR the projection of every triangle touching them."""
    h, w = labels.shape
    lut = np.zeros(256, bool)
    lut[list(parts)] = True
    core = lut[labels]
    v = np.asarray(mesh.vertices, np.float32)
    t = np.asarray(mesh.triangles, np.int64)
    part_tris = t[lut[np.asarray(mesh.vertex_labels, np.uint8)[t]].any(axis=1)]
    if len(part_tris):
        used = v[np.unique(part_tris)]
        finite = np.isfinite(used[:, :2]).all(axis=1)
        if finite.any():
            x0 = max(0, int(np.floor(used[finite, 0].min())) - 1)
            y0 = max(0, int(np.floor(used[finite, 1].min())) - 1)
            x1 = min(w, int(np.ceil(used[finite, 0].max())) + 2)
            y1 = min(h, int(np.ceil(used[finite, 1].max())) + 2)
            if x1 > x0 and y1 > y0:
                from faceanon.raster import rasterize

                local = v - np.array([x0, y0, 0], np.float32)
                r = rasterize(local, np.ascontiguousarray(part_tris, np.int32), y1 - y0, x1 - x0)
                core[y0:y1, x0:x1] |= r.tri_id >= 0
    return core


def removed_region_3d(labels: np.ndarray, mesh: FaceMesh, iod: float, *, parts: Sequence[int] = EYE_LABELS + LIP_LABELS,
                      margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """(H, W) bool: the pose-aware removed region of one face.

    labels: (H, W) uint8 visible part labels of the face; mesh: its :class:`FaceMesh`; iod: the 3D
    inter-ocular distance (px, :meth:`FaceMesh.inter_ocular_3d`); parts: the part labels to remove
    (:func:`faceanon.types.removal_parts`).

    1. core: the visible labels of the parts OR the projection of every triangle of those parts,
       hidden ones included - at profile the far eye sits behind the nose bridge and the near one at
       the silhouette, and both the lash line and any landmark error are covered from the 3D face,
       not from what the label map happens to show;
    2. grown by ``margin * iod`` px (Euclidean; lips and brows by :data:`PART_MARGIN_SCALE` of it) -
       a 3D size, so a profile keeps the frontal margin;
    3. kept within :data:`FACE_BAND` ``* iod`` px of the face's own pixels (the mesh's coverage),
       so the margin does not reach the background or an occluding hand.
    """
    groups: dict[float, list[int]] = {}
    for p in parts:
        groups.setdefault(PART_MARGIN_SCALE.get(int(p), 1.0), []).append(int(p))
    out = np.zeros(labels.shape, bool)
    face = labels > 0
    band = FACE_BAND * float(iod)
    for scale, group in groups.items():
        core = _part_core(labels, mesh, group)
        if not core.any():
            continue
        face |= core
        radius = max(0.0, float(margin) * scale * float(iod))
        y0, y1, x0, x1 = mask_window(core, int(np.ceil(radius)) + 1)
        out[y0:y1, x0:x1] |= _distance_to(core[y0:y1, x0:x1]) <= radius if radius > 0 else core[y0:y1, x0:x1]
    if not out.any():
        return out
    y0, y1, x0, x1 = mask_window(out, int(np.ceil(band)) + 2)
    out[y0:y1, x0:x1] &= _distance_to(face[y0:y1, x0:x1]) <= band
    return out


def removed_region(labels: np.ndarray, iod: float, *, keep_mouth: bool = False, margin: float = DEFAULT_MARGIN,
                   parts: Optional[Sequence[int]] = None) -> np.ndarray:
    """(H, W) bool: this face's eye (+ lip) labels - or ``parts`` when given - grown by ``margin * iod`` px
    (Euclidean disc)."""
    if parts is None:
        parts = removal_parts(keep_mouth=keep_mouth)
    lut = np.zeros(256, bool)
    lut[list(parts)] = True
    core = lut[labels]
    radius = float(margin) * float(iod)
    if radius <= 0 or not core.any():
        return core
    # crop to the core's bbox + radius: the distance transform is then O(face), not O(photo)
    y0, y1, x0, x1 = mask_window(core, int(np.ceil(radius)) + 1)
    out = np.zeros_like(core)
    out[y0:y1, x0:x1] = _distance_to(core[y0:y1, x0:x1]) <= radius
    return out


def feather_alpha(removed: np.ndarray, feather_px: float) -> np.ndarray:
    """(H, W) uint8 alpha: 0 on ``removed``, smoothstep ramp to 255 over ``feather_px`` px outside."""
    alpha = np.full(removed.shape, 255, np.uint8)
    if not removed.any():
        return alpha
    y0, y1, x0, x1 = mask_window(removed, int(np.ceil(feather_px)) + 2)
    d = _distance_to(removed[y0:y1, x0:x1])
    t = np.clip(d * np.float32(1.0 / (float(feather_px) + 1.0)), 0.0, 1.0)
    s = t * t * (np.float32(3.0) - np.float32(2.0) * t)
    alpha[y0:y1, x0:x1] = np.rint(np.float32(255.0) * s).astype(np.uint8)
    alpha[removed] = 0
    return alpha


def _check_inputs(rgb: np.ndarray, faces: Sequence[SegmentFace], margin: float, feather_px: float) -> None:
    check_image(rgb, "rgb", where="segment_image")
    h, w = rgb.shape[:2]
    for i, f in enumerate(faces):
        lab = np.asarray(f.labels)
        if lab.shape != (h, w):
            raise ValueError(f"segment_image: faces[{i}].labels must be ({h}, {w}) like the image, got {lab.shape}")
        if lab.dtype != np.uint8:
            raise ValueError(f"segment_image: faces[{i}].labels must be uint8, got {lab.dtype}")
    if not np.isfinite(margin) or margin < 0:
        raise ValueError(f"segment_image: margin must be >= 0 (a fraction of the inter-ocular distance), got {margin}")
    if not np.isfinite(feather_px) or feather_px < 0:
        raise ValueError(f"segment_image: feather_px must be >= 0, got {feather_px}")


def segment_image(
    rgb: np.ndarray,
    faces: Sequence[SegmentFace],
    *,
    keep_mouth: bool = False,
    margin: float = DEFAULT_MARGIN,
    feather_px: float = FEATHER_PX.default,
    brows: bool = False,
    grain: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Remove the eyes (and lips) of every face; see the module docstring for the exact rules.

    rgb:        (H, W, 3) uint8 RGB photo (upright)
    faces:      every face of the photo (:class:`SegmentFace`; its labels (H, W) uint8)
    keep_mouth: keep the lips (labels 6, 7)
    brows:      also remove the eyebrows (labels 3, 4; the anonymize stage paints the mean face's)
    grain:      add synthetic skin grain to the fill (:func:`add_grain`) so that it does not read as a
                smooth smudge; False keeps the plain fill (the seed's look, ``--fill inpaint``)
    margin:     growth of the removed parts, as a fraction of each face's inter-ocular distance
    feather_px: width of the outward alpha ramp in px (0 = hard edge)

    Returns ``(rgba, removed)``: rgba (H, W, 4) uint8 - RGB inpainted on the removed pixels and the
    original elsewhere, alpha 0 on the removed pixels, ramping to 255 outside; removed (H, W) bool.
    """
    _check_inputs(rgb, faces, margin, feather_px)
    h, w = rgb.shape[:2]
    parts = removal_parts(keep_mouth=keep_mouth, brows=brows)
    removed = np.zeros((h, w), bool)
    max_iod = 0.0
    for f in faces:
        iod = f.iod()
        if f.mesh is not None and iod > 0:
            removed |= removed_region_3d(np.asarray(f.labels), f.mesh, iod, parts=parts, margin=margin)
        else:
            removed |= removed_region(np.asarray(f.labels), iod, margin=margin, parts=parts)
        max_iod = max(max_iod, iod)
    radius = inpaint_radius(min(max_iod, INPAINT_LARGE_IOD))

    out = np.empty((h, w, 4), np.uint8)
    out[:, :, :3] = rgb
    out[:, :, 3] = feather_alpha(removed, feather_px)
    if removed.any():
        # Telea only reads pixels near the region: inpaint a padded crop of it.
        y0, y1, x0, x1 = mask_window(removed, radius + 2)
        crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        sel = removed[y0:y1, x0:x1]
        if grain:
            # the new fill: removed pixels ON the face are filled from the skin around them only (hair,
            # background and neck at the border are kept out), removed pixels OFF the face (the band
            # beyond a profile's silhouette) from what is off the face only - so the fill has the
            # face's outline instead of a skin-coloured patch reaching into the hair or background
            face = np.zeros((y1 - y0, x1 - x0), bool)
            skin = np.zeros((y1 - y0, x1 - x0), bool)
            beyond_face = np.zeros((y1 - y0, x1 - x0), bool)
            for f in faces:
                lab = np.asarray(f.labels)[y0:y1, x0:x1]
                face |= lab > 0
                skin |= lab == 8
                # what the fit overhangs (the wall beside a profile's nose, another photo's background
                # across a cheek) is no skin source either, however light it is
                beyond_face |= overhang_mask(rgb, np.asarray(f.labels), ignore=removed)[y0:y1, x0:x1]
            # hair over the face is not skin either; lit skin is (brighter than the median: on the
            # side-lit eos_image_0010 the pale lit forehead and cheek counted as "unlike", and the fill,
            # made from the darker skin only, met them at a hard edge)
            unlike = _unlike_skin(crop, skin & ~sel, darker_only=True)
            filled = _membrane_fill(crop, sel, max_iod, exclude=~face | unlike | beyond_face)
            border_hair = face & unlike & ~sel & (_distance_to(sel) <= 1.5)
            if border_hair.any():
                # where the removal meets hair on the face, the fill starts from the hair's own colour and
                # turns into skin over a few px (a cut through a fringe would leave a hard skin edge)
                plain = _membrane_fill(crop, sel, max_iod, exclude=~face, luma_rule=False)
                ramp = max(2.0, HAIR_RAMP * max_iod)
                t = np.clip(_distance_to(border_hair) / np.float32(ramp), 0.0, 1.0)[..., None]
                t = t * t * (3.0 - 2.0 * t)
                filled = np.clip(np.rint(filled * t + plain * (1.0 - t)), 0, 255).astype(np.uint8)
            filled = add_grain(filled, crop, sel, max_iod, where=face)
            off = sel & ~face
            if off.any():  # only the window of the off-face part (plus a ring for its border) is filled again
                pad = int(np.ceil(DARK_RING_FRACTION * max(max_iod, 1.0))) + radius + 4
                a0, a1, b0, b1 = mask_window(off, pad)
                win = (slice(a0, a1), slice(b0, b1))
                beyond = _membrane_fill(np.ascontiguousarray(crop[win]), sel[win], max_iod, exclude=face[win],
                                        luma_rule=False)
                sub = filled[win]
                # the two fills meet at the face's outline, anti-aliased over OUTLINE_SOFT px (a binary
                # switch drew the rasterized outline as a staircase across a profile's forehead)
                wgt = cv2.GaussianBlur(face[win].astype(np.float32), (0, 0), OUTLINE_SOFT)
                wgt = np.where(face[win], np.maximum(wgt, 0.5), np.minimum(wgt, 0.5))[..., None]
                mixed = np.clip(np.rint(sub * wgt + beyond * (1.0 - wgt)), 0, 255).astype(np.uint8)
                sub[sel[win]] = mixed[sel[win]]
        else:
            filled = _inpaint(crop, sel, max_iod)
        sub = out[y0:y1, x0:x1, :3]
        sub[sel] = filled[sel]  # only the removed pixels change: the rest stays bit-exact
    return out, removed


def _ring_px(iod: float) -> int:
    """Width (px) of the border ring the fill is made from: DARK_RING_FRACTION x the IOD, at least 2."""
    return max(2, int(round(DARK_RING_FRACTION * max(float(iod), 1.0))))


OUTLINE_SOFT = 1.0  # px, sigma of the blend of the on-face and off-face fills at the face's outline
DARK_RING_FRACTION = 0.08  # width of the border ring examined for dark features, fraction of the IOD
DARK_LUMA_RATIO = 0.75  # a ring pixel darker than this x the ring's median luma is a feature, not skin


#: A pixel whose CIELAB distance to the median skin colour of the face exceeds this (lightness weighted
#: by SKIN_L_WEIGHT) is not used as skin by the fill: hair and eyebrows over the face. With the full
#: lightness difference, the lit forehead of a side-lit face (eos_image_0010) counted as "not skin" and
#: the fill came out darker than the skin around it, with a visible edge.
SKIN_LAB_DISTANCE = 20.0
SKIN_L_WEIGHT = 0.35
#: Width of the turn from a fringe's colour into skin where the removal meets hair, x the IOD. At 0.06 the
#: removal cut a fringe (alison1) along a hard line; 0.15 reads as the shade under the fringe; 0.3 smears
#: the hair colour down to the brows (looked at on the contact sheet).
HAIR_RAMP = 0.15


def _unlike_skin(rgb: np.ndarray, skin: np.ndarray, l_weight: float = SKIN_L_WEIGHT, *,
                 darker_only: bool = False) -> np.ndarray:
    """(h, w) bool: pixels far (CIE76 > SKIN_LAB_DISTANCE, lightness weighted by ``l_weight``) from the
    median colour of the ``skin`` pixels; all False when there are too few skin pixels to tell.
    darker_only: only pixels darker than that median count (hair and brows over the face; a lit,
    paler forehead is brighter than the median and still skin)."""
    if skin.sum() < 64:
        return np.zeros(skin.shape, bool)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100.0 / 255.0  # OpenCV's 8-bit Lab: L scaled to 0..255, a and b offset by 128
    lab[..., 1:] -= 128.0
    ref = np.median(lab[skin], axis=0)
    # lightness counts less than colour: lit and shaded skin differ mostly in L, hair in a and b too
    d = (lab - ref) * np.array([l_weight, 1.0, 1.0], np.float32)
    far = np.linalg.norm(d, axis=2) > SKIN_LAB_DISTANCE
    return far & (lab[..., 0] < ref[0]) if darker_only else far


#: Where the fit reaches past the face's true outline (a few % of the face size at a profile's nose and
#: chin, more where a forehead meets the sky), its projection covers background and hair, and a texture
#: baked there carries them: blue sky on a rendered forehead, grass under a chin, a window on a nose
#: (dev set profiles, looked at on the contact sheet). :func:`overhang_mask` finds those pixels within
#: this fraction of the face size (side of a square of the projection's area) of the outline.
OVERHANG_BAND = 0.12
#: ... grown by this fraction of the face size (at least 2 px)
OVERHANG_GROW = 0.01
#: a photo whose skin is less colourful than this (features.skin_chroma) is treated as greyscale
GREY_CHROMA = 0.1


def overhang_mask(rgb: np.ndarray, labels: np.ndarray, *, ignore: Optional[np.ndarray] = None) -> np.ndarray:
    """(H, W) bool: pixels of the face's projection that belong to what lies beyond the face.

    rgb: (H, W, 3) uint8; labels: (H, W) part labels of ONE face (0 = not this face, 8 = skin).
    A pixel is overhang when it is unlike the face's skin (:func:`_unlike_skin`: background, hair),
    lies within OVERHANG_BAND x the face size of the projection's outline, and is connected through
    such pixels (4-connectivity) to the outside of the projection. A mole or lesion inside the face
    is surrounded by skin and never connected to the outside: it stays a texture source.

    ignore: optional (H, W) bool, pixels whose colour must not matter (the removed eyes and lips, when
    the fill asks): left out of the skin's median colour and never overhang, so nothing of them can
    reach the result.
    """
    face = np.asarray(labels) > 0
    out = np.zeros(face.shape, bool)
    if face.sum() < 64:
        return out
    y0, y1, x0, x1 = mask_window(face, 2)
    f = face[y0:y1, x0:x1]
    crop, skin = np.ascontiguousarray(rgb[y0:y1, x0:x1]), np.asarray(labels)[y0:y1, x0:x1] == 8
    skip = None if ignore is None else np.asarray(ignore, bool)[y0:y1, x0:x1]
    if skip is not None:
        skin &= ~skip
    # a greyscale photo has only lightness to tell a white wall from grey skin: count it fully
    from faceanon.stages.features import skin_chroma

    grey = skin.sum() >= 64 and skin_chroma(crop, skin.astype(np.uint8) * 8) < GREY_CHROMA
    unlike = _unlike_skin(crop, skin, l_weight=1.0 if grey else SKIN_L_WEIGHT)
    if skip is not None:
        unlike &= ~skip
    if not unlike.any():
        return out
    size = float(np.sqrt(f.sum()))
    depth = cv2.distanceTransform(f.astype(np.uint8), cv2.DIST_L2, 3)
    region = (unlike & f & (depth <= OVERHANG_BAND * size)) | ~f
    _n, comp = cv2.connectedComponents(region.astype(np.uint8), connectivity=4)
    outside = np.unique(comp[~f])
    hit = np.isin(comp, outside[outside > 0]) & f
    if hit.any():
        # plus the blended pixels at its edge (half skin, half background: within the colour
        # distance, but stretched over many texels at a grazing silhouette they showed as a ring)
        r = max(2, int(round(OVERHANG_GROW * size)))
        hit = cv2.dilate(hit.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) > 0
        hit &= f
        if skip is not None:
            hit &= ~skip
    out[y0:y1, x0:x1] = hit
    return out


def _tame_dark_border(rgb: np.ndarray, mask: np.ndarray, iod: float, exclude: np.ndarray | None = None,
                      luma_rule: bool = True) -> np.ndarray:
    """A copy of ``rgb`` for the inpainting SOURCE only, in which dark features just outside the mask
    (nostrils, lip corners, shadows; with ``luma_rule``) and the ``exclude`` pixels (e.g. everything
    off the face when the fill must be skin) are replaced by the local colour of the rest of the ring.

    Telea propagates the border colours inward, so a nostril touching the removed mouth region would
    otherwise smear a dark streak down the filled upper lip. The returned copy is only read by the
    inpainting; the caller writes back the masked pixels alone, so no visible pixel changes.
    """
    if not mask.any():
        return rgb
    k = _ring_px(iod)
    # the pixels within k px of the mask (a distance transform: O(pixels) whatever k; a disc-shaped
    # dilation costs O(pixels x k) - seconds on a 24 MP portrait)
    ring = _distance_to(mask) <= k
    ring &= ~mask
    if ring.sum() < 16:
        return rgb
    sigma = 2.0 * k

    def local_mean(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
        w = gaussian_blur(weight.astype(np.float32), sigma)
        v = gaussian_blur(values * weight.astype(np.float32)[..., None] if values.ndim == 3
                          else values * weight, sigma)
        return v / np.maximum(w, 1e-6)[..., None] if values.ndim == 3 else v / np.maximum(w, 1e-6)

    # dark relative to the ring's LOCAL brightness: a nostril beside the nose skin, not a beard
    luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    dark = ring & (luma < DARK_LUMA_RATIO * local_mean(luma, ring.astype(np.float32))) if luma_rule \
        else np.zeros_like(ring)
    if exclude is not None:  # e.g. pixels off the face's mesh (background, hair, neck) when filling skin
        dark |= ring & exclude
    if not dark.any():
        return rgb
    skin = (ring & ~dark).astype(np.float32)
    colour = local_mean(rgb.astype(np.float32), skin)  # the nearby skin, not a global average
    if exclude is not None and skin.any():
        # far from any skin pixel of the ring the local mean is undefined: the ring's median skin colour
        support = gaussian_blur(skin, sigma)
        far = support < 1e-3
        if far.any():
            colour[far] = np.median(rgb[ring & ~dark].reshape(-1, 3), axis=0)
    out = rgb.copy()
    out[dark] = np.clip(np.rint(colour[dark]), 0, 255).astype(np.uint8)
    return out


#: Jacobi sweeps per multigrid level of the membrane fill (faceanon.stages.imageops.harmonic_fill).
MEMBRANE_SWEEPS = 12


def _membrane_fill(rgb: np.ndarray, mask: np.ndarray, iod: float, exclude: np.ndarray | None = None,
                   luma_rule: bool = True) -> np.ndarray:
    """Fill ``mask`` (bool) of ``rgb`` with the membrane (harmonic) interpolation of its border - the
    smoothest colour field that meets the surroundings, so a large removed region has no streaks and no
    steep gradient just inside its border (Telea's fast marching copies the nearest border inward and
    the smoothing that tames its streaks then pulls in the far side's colour over a few px: a visible
    edge on a side-lit forehead). The border is tamed first (:func:`_tame_dark_border`); the result
    never depends on a masked input pixel. Returns (h, w, 3) uint8."""
    from faceanon.stages.imageops import harmonic_fill

    src = _tame_dark_border(rgb, mask, iod, exclude, luma_rule)
    # only the tamed ring is the fill's border: with every unmasked pixel known, the coarse levels of
    # the multigrid averaged in what lies beyond the ring (the hair the ring had just replaced: a dark
    # smear up the middle of a band removed above a fringe)
    known = ~mask & (_distance_to(mask) <= _ring_px(iod))
    filled = harmonic_fill(np.where(known[..., None], src, 0).astype(np.float32), known, MEMBRANE_SWEEPS)
    out = rgb.copy()
    out[mask] = np.clip(np.rint(filled[mask]), 0, 255).astype(np.uint8)
    return out


def _inpaint(rgb: np.ndarray, mask: np.ndarray, iod: float) -> np.ndarray:
    """Telea-fill ``mask`` (bool) of ``rgb``; the result never depends on a masked input pixel.

    Faces up to :data:`INPAINT_LARGE_IOD` are filled directly. Larger ones (whose removed area, and
    so Telea's cost, grows with IOD²) are filled at the scale where their IOD is
    :data:`INPAINT_TARGET_IOD` - a small pixel is unknown as soon as its footprint touches a masked
    pixel, so known small pixels are averages of unmasked pixels only - the fill is upsampled, and a
    band along the border is then re-inpainted at full resolution from the original outside and the
    upsampled fill inside, so the seam is as sharp as in a direct fill.
    """
    m8 = mask.astype(np.uint8) * 255
    rgb = _tame_dark_border(rgb, mask, iod)
    if iod <= INPAINT_LARGE_IOD:
        return _smooth_fill(cv2.inpaint(rgb, m8, float(inpaint_radius(iod)), cv2.INPAINT_TELEA), m8, iod)
    f = INPAINT_TARGET_IOD / float(iod)
    h, w = mask.shape
    sw, sh = max(1, int(round(w * f))), max(1, int(round(h * f)))
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA) > 0
    small_mask = cv2.dilate(small_mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    small_filled = cv2.inpaint(small, small_mask.astype(np.uint8) * 255, float(inpaint_radius(INPAINT_TARGET_IOD)),
                               cv2.INPAINT_TELEA)
    up = cv2.resize(small_filled, (w, h), interpolation=cv2.INTER_LINEAR)
    work = rgb.copy()
    work[mask] = up[mask]
    inside = cv2.distanceTransform(m8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)  # distance to the unmasked pixels
    band = mask & (inside <= 2.0 / f + 2.0)
    filled = cv2.inpaint(work, band.astype(np.uint8) * 255, 3.0, cv2.INPAINT_TELEA)
    return _smooth_fill(filled, m8, iod, inside)


def _smooth_fill(filled: np.ndarray, m8: np.ndarray, iod: float, inside: np.ndarray | None = None) -> np.ndarray:
    """Soften Telea's radial streaks deep inside the fill (Gaussian, sigma = SMOOTH_FRACTION x the IOD).

    The blur only reads ``filled`` (no masked original pixel is left in it); its weight ramps from 0
    at the region's border (where Telea matches the surroundings) to 1 at 2 sigma inside.
    """
    sigma = max(1.0, SMOOTH_FRACTION * float(iod))
    if inside is None:
        inside = cv2.distanceTransform(m8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    wgt = np.clip(inside / np.float32(2.0 * sigma), 0.0, 1.0)[..., None]
    smooth = gaussian_blur(filled, sigma)
    out = filled.astype(np.float32) * (1.0 - wgt) + smooth.astype(np.float32) * wgt
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


#: Skin grain of the fill: the photo's high-pass (image minus a Gaussian of GRAIN_SIGMA x the IOD, at
#: least 1 px) measured in a ring of GRAIN_RING x the IOD around the removed region.
GRAIN_SIGMA = 0.006
GRAIN_RING = 0.15


def add_grain(filled: np.ndarray, source: np.ndarray, mask: np.ndarray, iod: float, *, seed: int = 0,
              where: np.ndarray | None = None) -> np.ndarray:
    """``filled`` with synthetic skin grain added inside ``mask`` (bool) - or only inside ``where``, a
    part of it - as strong as the grain of the skin around it (every pixel of ``mask`` is kept out of
    that measurement).

    filled, source: (h, w, 3) uint8 - the inpainted crop and the photo crop it came from; iod: px.
    The grain is Gaussian noise (fixed ``seed``: the same photo gives the same output) low-passed to
    the skin's grain size and scaled to the robust standard deviation (1.4826 x MAD, so moles and
    hairs in the ring do not inflate it) of the photo's high-pass in a ring around the mask, the
    same noise in the three channels scaled per channel - nothing is copied from the photo, so no
    mole or hair of the ring is repeated inside. It ramps in over 2 grain sizes from the border.
    """
    if not mask.any():
        return filled
    sigma = max(1.0, GRAIN_SIGMA * float(iod))
    # the high-pass of the photo OUTSIDE the mask only (a normalised blur ignores the masked pixels,
    # so not even a statistic of the removed pixels reaches the fill)
    src = source.astype(np.float32)
    keep = (~mask).astype(np.float32)
    low = cv2.GaussianBlur(src * keep[..., None], (0, 0), sigma) / np.maximum(
        cv2.GaussianBlur(keep, (0, 0), sigma), 1e-6)[..., None]
    hp = src - low
    ring = (_distance_to(mask) <= max(3.0, GRAIN_RING * float(iod))) & ~mask
    if ring.sum() < 32:
        return filled
    vals = hp[ring]
    mad = np.median(np.abs(vals - np.median(vals, axis=0)), axis=0)
    std = 1.4826 * mad  # (3,)
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.standard_normal(mask.shape).astype(np.float32), (0, 0), 0.5 * sigma)
    noise /= max(float(noise.std()), 1e-6)
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    ramp = np.clip(inside / np.float32(2.0 * sigma), 0.0, 1.0)
    out = filled.astype(np.float32) + (noise * ramp)[..., None] * std.reshape(1, 1, 3)
    res = filled.copy()
    target = mask if where is None else (mask & where)
    res[target] = np.clip(np.rint(out[target]), 0, 255).astype(np.uint8)
    return res


def removed_parts(alpha: np.ndarray, labels: np.ndarray, *, share: float = 0.5) -> tuple[int, ...]:
    """The part labels a segmented image removed, read back from its alpha (for the stage commands,
    which get the segment stage's file, not its options).

    alpha: (H, W) uint8 of a segmented photo; labels: (H, W) uint8 part labels of one face. A
    part counts as removed when at least ``share`` of its visible pixels have alpha 0.
    """
    gone = np.asarray(alpha) == 0
    lab = np.asarray(labels)
    out = []
    for p in range(1, 8):
        m = lab == p
        if m.any() and gone[m].mean() >= share:
            out.append(p)
    return tuple(out)
