"""High-level 3DDFA-V3: detect every face, fit one face, return it in the project convention.

Conventions of the returned data (see ``faceanon/types.py``): image px of the full photo, x right,
y down, pixel centres at integer coordinates; z larger = nearer; triangles counter-clockwise in a
y-up frame when front-facing (negative image-space signed area). The model's own conventions
(y-up 224 crop, ``223 - y`` landmark rows, ``224 - y`` seed raster rows, y-up 5 points) are
converted once, here, through the named functions of :mod:`ddfa_v3.align`.

Differences from the seed (seed bugs S-n, docs/seed_compatibility.md):

1. CPU by default (``device="cpu"``); any torch device string may be given.
2. trans_params is never None: every fit goes through the 5-point alignment.
3. No ``exit()``: :meth:`DDFAv3.fit_all` raises :class:`ddfa_v3.errors.NoFaceError`, and
   :meth:`DDFAv3.fit` raises it when the alignment of a detection is degenerate.
4. All faces are returned by :meth:`DDFAv3.detect` (highest score first).
5. No MTCNN branch (left out entirely): RetinaFace is the only detector.
6. Asset paths are explicit constructor arguments (no CWD-relative paths).
7. EXIF orientation is the caller's job (pass an already upright RGB array).
8./9. Label maps: the 224-crop rasterization uses the project rasterizer (no 2-px border quirk,
   triangle 0 counts) and, by default, the **same row convention as v2d_full** (``223 - v2d_y``),
   which removes the one-crop-pixel downward offset of the seed's label maps (S-9). Pass
   ``seed_label_rows=True`` to reproduce the seed's ``224 - v2d_y`` rows. The paste-back itself is
   the seed's (PIL NEAREST, float32 trans_params: :func:`ddfa_v3.align.back_resize_labels`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import align
from .checkpoints import load_large_base_net, load_net_recon, load_retinaface
from .errors import ImageError, NoFaceError
from .face_model import CAMERA_DISTANCE, FOCAL, FaceModel
from .landmark106 import Landmark106
from .landmarks import contour_landmarks_106_2d
from .retinaface import FaceBox, RetinaFaceDetector

__all__ = ["DDFAv3", "FaceBox", "mean_face", "pose_from_angles", "winding_is_ccw_yup", "visible_part_masks", "FACEFIT_KEYS"]

FACEFIT_KEYS = ("vertices", "triangles", "uv", "vertex_labels", "landmarks68", "pose", "model_vertices",
                "mean_vertices", "trans_params")


def _check_rgb(rgb) -> np.ndarray:
    if not isinstance(rgb, np.ndarray):
        raise ImageError(f"rgb must be a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ImageError(f"rgb must be an (H, W, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    return np.ascontiguousarray(rgb)


def pose_from_angles(angles) -> np.ndarray:
    """Net angles (pitch x, yaw y, roll z; radians; R = Rz Ry Rx) -> project pose (yaw, pitch, roll) degrees.

    The model frame is x right, y up, z toward the camera, and the camera shows x right / y up, so:

    * yaw = -deg(angle_y): R_y(+b) turns the nose toward +x = image right; the project's yaw > 0
      means nose toward image left;
    * pitch = +deg(angle_x): R_x(+a) turns the nose toward -y (down) = looking down (project pitch > 0);
    * roll = +deg(angle_z): R_z(+c) turns +x toward +y, counter-clockwise on screen (project roll > 0).
    """
    a = np.degrees(np.asarray(angles, np.float64).reshape(3))
    return np.array([-a[1], a[0], a[2]], np.float32)


def winding_is_ccw_yup(vertices: np.ndarray, triangles: np.ndarray) -> bool:
    """True when the area-weighted normals cross(v1 - v0, v2 - v0) of a y-up, z-toward-viewer mesh point at +z."""
    v = np.asarray(vertices, np.float64)
    t = np.asarray(triangles)
    n = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    return bool(n[:, 2].sum() >= 0)


def visible_part_masks(v2d: np.ndarray, depth: np.ndarray, normals_rot: np.ndarray, triangles: np.ndarray,
                       annotation: list[np.ndarray], rasterize: Callable, *, seed_rows: bool = False,
                       size: int = align.CROP) -> tuple[np.ndarray, np.ndarray]:
    """The seed's ``seg_visible`` in the 224 crop (docs/ddfa_v3.md, section 9), with the project rasterizer.

    v2d (N, 2) model crop coordinates (y-up); depth (N,) larger = nearer (world z); normals_rot
    (N, 3) posed normals; triangles (M, 3); annotation: 8 vertex-id arrays.
    Rows follow ``223 - v2d_y`` (the v2d_full convention, S-9 fixed) or, with ``seed_rows``, the
    seed CPU rasterizer's ``224 - v2d_y``. Pixel centres sit at integer coordinates in both.

    Returns (masks (8, size, size) uint8 0/1, visible (N,) bool): a vertex is visible when one of its
    triangles won a pixel and its posed normal has z >= 0; part i covers a pixel when the
    barycentric blend of [vertex in part i and visible] is >= 0.5.
    """
    n = v2d.shape[0]
    rows = align.v2d_to_cpu_raster_px(v2d) if seed_rows else align.v2d_to_crop_px(v2d)
    rverts = np.ascontiguousarray(np.concatenate([rows, np.asarray(depth).reshape(-1, 1)], axis=1), np.float32)
    r = rasterize(rverts, np.ascontiguousarray(triangles, np.int32), size, size, cull=None)
    tri_id = np.asarray(r.tri_id)
    covered = tri_id >= 0  # the seed's `> 0` dropped triangle 0 (S-8)
    visible = np.zeros(n, bool)
    visible[triangles[np.unique(tri_id[covered])].reshape(-1)] = True
    visible &= np.asarray(normals_rot)[:, 2] >= 0
    seg = np.zeros((len(annotation), size, size), np.uint8)
    if covered.any():
        tri_px = triangles[tri_id[covered]]  # (P, 3)
        bary = np.asarray(r.bary, np.float64)[covered]  # (P, 3), triangle-vertex order
        for i, idx in enumerate(annotation):
            f = np.zeros(n, np.float64)
            f[idx] = 1.0
            f[~visible] = 0.0
            m = np.zeros((size, size), bool)
            m[covered] = (bary * f[tri_px]).sum(axis=1) >= 0.5
            seg[i] = m
    return seg, visible


def mean_face(fm: FaceModel) -> tuple[np.ndarray, np.ndarray, bool]:
    """(mean vertices (N, 3) float32, triangles (M, 3) int32 counter-clockwise seen from +z in the
    y-up model frame, whether the file's triangles had to be rewound for that)."""
    mean = fm.mean_shape().astype(np.float32)
    tri = fm.tri.numpy().astype(np.int32)
    rewound = not winding_is_ccw_yup(mean, tri)
    return mean, np.ascontiguousarray(tri[:, [0, 2, 1]] if rewound else tri), rewound


class DDFAv3:
    """3DDFA-V3 inference from explicit file paths.

    DDFAv3(net_recon, face_model, large_base_net, retinaface, similarity_lm3d, *, backbone="auto",
           device="cpu", score_threshold=0.7, nms_threshold=0.4, seed_label_rows=False)
    """

    name = "3ddfa-v3"

    def __init__(self, net_recon: str | Path, face_model: str | Path, large_base_net: str | Path,
                 retinaface: str | Path, similarity_lm3d: str | Path, *, backbone: str = "auto",
                 device: str = "cpu", score_threshold: float = 0.7, nms_threshold: float = 0.4,
                 seed_label_rows: bool = False) -> None:
        self.device = torch.device(device)
        self.recon = load_net_recon(net_recon, backbone).to(self.device)
        self.backbone = self.recon.backbone_name
        self.landmark_net = load_large_base_net(large_base_net).to(self.device)
        self.retina_net = load_retinaface(retinaface).to(self.device)
        self.face_model = FaceModel(face_model)
        self.template = align.load_template(similarity_lm3d)
        self.detector = RetinaFaceDetector(self.retina_net, score_threshold, nms_threshold)
        self.landmarker = Landmark106(self.landmark_net)
        self.seed_label_rows = bool(seed_label_rows)
        fm = self.face_model
        self.mean_vertices, self.triangles, self.rewound = mean_face(fm)
        labels = np.zeros(fm.n_vertices, np.uint8)
        for i, idx in enumerate(fm.annotation):  # later parts win: skin > lips > nose > brows > eyes
            labels[idx] = i + 1
        self.vertex_labels = labels

    # --- detection -------------------------------------------------------------------------------
    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        """Every face of ``rgb`` ((H, W, 3) uint8 RGB), highest score first; [] when none."""
        return self.detector.detect(_check_rgb(rgb))

    def landmarks106(self, rgb: np.ndarray, box) -> np.ndarray:
        """Two-pass 106 landmarks (106, 2) float32 image px for a face box (x1, y1, x2, y2)."""
        return self.landmarker(_check_rgb(rgb), box)

    # --- fitting ---------------------------------------------------------------------------------
    @torch.no_grad()
    def fit(self, rgb: np.ndarray, detection, rasterize: Callable | None = None) -> dict:
        """Fit the face of ``detection`` in ``rgb`` ((H, W, 3) uint8 RGB, upright).

        ``detection``: a :class:`FaceBox` or any record with a ``box`` (x1, y1, x2, y2) in image px.

        ``rasterize``: the project rasterizer ``rasterize(vertices, triangles, height, width, cull=None)``
        (defaults to :func:`faceanon.raster.rasterize`), used for the 224-crop visibility / label map.

        Returns a dict. :class:`faceanon.types.FaceFit` fields (photo px, x right, y down):

        * ``vertices`` (N, 3) float32: x, y = ``v2d_full``; z = (world z - tz) * 1015 / (10 - tz) * W0 / w
          (px at the face's depth, larger = nearer);
        * ``triangles`` (M, 3) int32, front-facing = negative image-space signed area (re-wound if the
          model's winding is the other one); ``uv`` (N, 2) float32 (``uv_coords``, v up);
        * ``vertex_labels`` (N,) uint8 0..8 from ``annotation`` (later parts win: skin > lips > nose >
          brows > eyes); ``landmarks68`` (68, 2) float32 = ``v2d_full[ldm68]``;
        * ``pose`` (3,) float32 yaw, pitch, roll degrees (:func:`pose_from_angles`);
        * ``model_vertices`` (N, 3) fitted shape in the canonical frame; ``mean_vertices`` (N, 3) ``u``;
        * ``trans_params`` (5,) float32 [W0, H0, s, tx, ty].

        The seed's npz keys: ``v2d_full`` (N, 2) float32 = back_resize_ldms((v2d_x, 223 - v2d_y),
        float32 trans_params); ``seg_visible_labels_full`` (H, W) uint8 0..8 (224-crop map pasted back
        with PIL NEAREST; rows ``223 - v2d_y`` unless ``seed_label_rows``).

        Extras: ``landmarks106_input`` (106, 2) photo px of the landmark net, ``crop`` (224, 224, 3)
        uint8, ``coeffs`` (257,), ``v2d_crop`` (N, 2) model crop coords (y-up), ``world_vertices``
        (N, 3) posed model frame (the seed's OBJ ``v``), ``camera_vertices`` (N, 3) (z = 10 - z_world),
        ``normals`` (N, 3) posed unit normals, ``face_texture`` (N, 3) SH-lit albedo in [0, 1],
        ``visible`` (N,) bool, ``seg_visible_crop`` (8, 224, 224) uint8, ``seg_visible_labels_crop``
        (224, 224) uint8, ``ldm106_2d`` (106, 2) float32 photo px: the seed's contour-marched 106
        landmarks (docs/ddfa_v3.md, section 9; :mod:`ddfa_v3.landmarks`), taken from ``v2d_full`` like ``landmarks68``.

        Raises :class:`ddfa_v3.errors.NoFaceError` when the 5-point alignment is degenerate and
        :class:`ddfa_v3.errors.ImageError` for a bad ``rgb``.
        """
        rgb = _check_rgb(rgb)
        if rasterize is None:
            from faceanon.raster import rasterize  # noqa: PLC0415 - optional at import time
        h0, w0 = rgb.shape[:2]
        fm = self.face_model

        ldm106 = self.landmarker(rgb, np.asarray(detection.box, np.float64))
        lm5_yup = align.five_points_from_106(ldm106, h0)  # conversion: y-up 5 points
        try:
            crop, tp64 = align.align_crop(rgb, lm5_yup, self.template)
        except ValueError as exc:
            raise NoFaceError(f"face at box {np.round(np.asarray(detection.box), 1).tolist()} cannot be aligned: {exc}",
                              "the detection is probably not a face") from None
        tp32 = tp64.astype(np.float32)

        x = torch.from_numpy(crop.astype(np.float32).transpose(2, 0, 1).copy() / 255.0)[None].to(self.device)
        coeffs = self.recon(x).float().cpu()
        out = fm.compute(coeffs)
        v2d = out["v2d"][0].numpy().astype(np.float32)  # y-up crop (model convention)
        world = out["world"][0].numpy().astype(np.float32)
        normals_rot = out["normals_rot"][0].numpy()
        trans = out["trans"][0].numpy().astype(np.float64)

        # --- boundary conversion: crop (col, 223 - y) -> photo px, with the float32 trans_params
        v2d_full = align.back_resize_ldms(align.v2d_to_crop_px(v2d), tp32)
        g = align.crop_geometry(tp32)
        zc = CAMERA_DISTANCE - trans[2]
        px_per_unit = FOCAL / zc * (float(tp32[0]) / g.w) if zc > 0 else 1.0
        z = ((world[:, 2].astype(np.float64) - trans[2]) * px_per_unit).astype(np.float32)
        vertices = np.concatenate([v2d_full, z[:, None]], axis=1).astype(np.float32)

        # --- visibility and part labels in the 224 crop (seed algorithm, S-9 fixed by default)
        seg, visible = visible_part_masks(v2d, world[:, 2], normals_rot, self.triangles, fm.annotation,
                                          rasterize, seed_rows=self.seed_label_rows)
        labels_crop = align.labels_from_parts(seg)
        labels_full = align.back_resize_labels(labels_crop, tp32)

        face_tex = np.clip(out["face_texture"][0].numpy(), 0, 1).astype(np.float32)
        ldm106_2d = contour_landmarks_106_2d(out["shape"][0].numpy(), out["angle"][0].numpy(), trans,
                                             fm.parallel, fm.ldm106, v2d_full)
        return {
            # FaceFit fields (project convention)
            "vertices": vertices,
            "triangles": self.triangles.copy(),
            "uv": fm.uv.copy(),
            "vertex_labels": self.vertex_labels.copy(),
            "landmarks68": np.ascontiguousarray(v2d_full[fm.ldm68]),
            "pose": pose_from_angles(out["angle"][0].numpy()),
            "model_vertices": out["shape"][0].numpy().astype(np.float32),
            "mean_vertices": self.mean_vertices.copy(),
            "trans_params": tp32,
            # the seed's npz contract
            "v2d_full": v2d_full,
            "seg_visible_labels_full": labels_full,
            # extras
            "landmarks106_input": ldm106,
            "crop": crop,
            "coeffs": coeffs[0].numpy().astype(np.float32),
            "v2d_crop": v2d,
            "world_vertices": world,
            "camera_vertices": out["v3d"][0].numpy().astype(np.float32),
            "normals": normals_rot.astype(np.float32),
            "face_texture": face_tex,
            "visible": visible,
            "seg_visible_crop": seg,
            "seg_visible_labels_crop": labels_crop,
            "ldm106_2d": ldm106_2d,
        }

    def fit_all(self, rgb: np.ndarray, rasterize: Callable | None = None,
                detections: list | None = None) -> list[tuple[FaceBox, dict]]:
        """Detect (unless given) and fit every face; raises NoFaceError when there is none."""
        dets = self.detect(rgb) if detections is None else detections
        if not dets:
            raise NoFaceError("no face found", "check the image, or use the lite backend")
        return [(d, self.fit(rgb, d, rasterize)) for d in dets]

