"""The seed's ``ldm106_2d``: 106 landmarks whose jaw contour "marches" to the silhouette (docs/ddfa_v3.md, section 9).

The 33 contour landmarks of ``ldm106`` are fixed vertices on the 3D jaw line; under yaw they slide
onto the cheek instead of following the visible outline. The seed's ``ldm106_2d`` replaces them
with the outermost candidate of each contour landmark's ``parallel`` group:

1. ``v_parallel[v]`` = index of the ``parallel`` group that holds vertex v, -1 when none; groups are
   assigned in order, so a vertex listed in several groups belongs to the **last** one;
2. the fitted shape is re-posed with the roll angle set to 0 (pitch, yaw and translation unchanged)
   and projected with the usual camera (docs/ddfa_v3.md, section 7);
3. contour point i = 0..15 (image-left half of the jaw) takes the vertex of group i with the
   **minimal** projected x; i = 17..32 the one with the **maximal** x; point 16 (chin) and points
   33..105 keep their ``ldm106`` vertex.

The roll-free projection only *selects* the vertices; the landmark positions are those of the
selected vertices in the actual (rolled) projection, like every other landmark output.

Decisions where the seed's behaviour is not known (documented, tested):

* a group that is empty - or missing, when ``parallel`` holds fewer than 33 groups - keeps the
  ``ldm106`` vertex of that contour point (the seed would pick vertex 0 there);
* ties in x go to the lowest vertex id (``argmin`` / ``argmax`` order).

Functions work in the model's frames (:mod:`ddfa_v3.face_model`): ``shape`` is the fitted
canonical shape (N, 3), ``angles`` the net's (pitch, yaw, roll) radians, ``trans`` (tx, ty, tz).
:meth:`ddfa_v3.model.DDFAv3.fit` converts the result to photo px (key ``ldm106_2d``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .face_model import FaceModel, rotation_matrix

__all__ = ["CONTOUR_MIN_X", "CONTOUR_MAX_X", "vertex_parallel", "project_without_roll",
           "contour_indices_106", "contour_landmarks_106_2d"]

#: contour points that take the minimal projected x of their group (image-left half of the jaw)
CONTOUR_MIN_X = tuple(range(0, 16))
#: contour points that take the maximal projected x of their group (image-right half)
CONTOUR_MAX_X = tuple(range(17, 33))


def vertex_parallel(parallel: Sequence, n_vertices: int) -> np.ndarray:
    """(N,) int64: the index of the ``parallel`` group holding each vertex, -1 for none (later groups win)."""
    out = np.full(int(n_vertices), -1, np.int64)
    for i, group in enumerate(parallel):
        idx = np.asarray(group, np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= n_vertices):
            raise ValueError(f"parallel group {i} holds vertex ids outside [0, {n_vertices})")
        out[idx] = i
    return out


def project_without_roll(shape, angles, trans) -> np.ndarray:
    """v2d (N, 2) float32 (model crop coords, y-up) of ``shape`` posed with roll = 0, same pitch/yaw/trans."""
    s = torch.as_tensor(np.asarray(shape, np.float32)).reshape(1, -1, 3)
    a = torch.as_tensor(np.asarray(angles, np.float32)).reshape(1, 3).clone()
    t = torch.as_tensor(np.asarray(trans, np.float32)).reshape(1, 3)
    a[:, 2] = 0.0
    world = FaceModel.transform(s, rotation_matrix(a), t)
    return FaceModel.project(FaceModel.to_camera(world))[0].numpy().astype(np.float32)


def contour_indices_106(shape, angles, trans, parallel: Sequence, ldm106) -> np.ndarray:
    """(106,) int64 vertex ids of ``ldm106_2d``: ``ldm106`` with the 32 marched contour points (docs/ddfa_v3.md, section 9)."""
    ldm = np.asarray(ldm106, np.int64).reshape(-1)
    if ldm.shape != (106,):
        raise ValueError(f"ldm106 must hold 106 vertex ids, got shape {ldm.shape}")
    x = project_without_roll(shape, angles, trans)[:, 0].astype(np.float64)
    vp = vertex_parallel(parallel, x.shape[0])
    out = ldm.copy()
    for i in CONTOUR_MIN_X + CONTOUR_MAX_X:
        members = np.nonzero(vp == i)[0]
        if members.size == 0:
            continue  # empty or missing group: keep the ldm106 vertex
        xs = x[members]
        out[i] = members[np.argmin(xs) if i in CONTOUR_MIN_X else np.argmax(xs)]
    return out


def contour_landmarks_106_2d(shape, angles, trans, parallel: Sequence, ldm106, v2d) -> np.ndarray:
    """``ldm106_2d`` (106, 2) float32: ``v2d`` (the actual per-vertex 2D positions, any convention)
    at :func:`contour_indices_106`. Pass the model's v2d for model coords, ``v2d_full`` for photo px."""
    v = np.asarray(v2d)
    return np.ascontiguousarray(v[contour_indices_106(shape, angles, trans, parallel, ldm106)], np.float32)
