"""The seed's contour-marched 106 landmarks ``ldm106_2d`` (docs/ddfa_v3.md, section 9): ddfa_v3.landmarks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ddfa_v3.landmarks import (contour_indices_106, contour_landmarks_106_2d, project_without_roll,
                               vertex_parallel)
from tests.support.synthetic_v3 import fit, model  # noqa: F401 (fixtures)


def _project_np(shape, angles, trans):
    """Independent numpy camera (docs/ddfa_v3.md, section 7): world = R p + t, R = Rz Ry Rx, z_c = 10 - z, x = 1015 x / z_c + 112."""
    a, b, g = angles
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(g), -math.sin(g), 0], [math.sin(g), math.cos(g), 0], [0, 0, 1]])
    w = np.asarray(shape, np.float64) @ (rz @ ry @ rx).T + np.asarray(trans, np.float64)
    zc = 10.0 - w[:, 2]
    return np.stack([1015 * w[:, 0] / zc + 112, 1015 * w[:, 1] / zc + 112], 1)


# --- a hand-built tiny face model ------------------------------------------------------------------------
# vertices 0..3: two candidates for contour point 5 (min-x side) and two for point 20 (max-x side);
# 4..9: filler vertices that the ldm106 ids point at.
SHAPE = np.array([
    [-1.0, 0.0, 0.0],   # 0: group 5, outermost without roll
    [-0.8, -0.5, 0.0],  # 1: group 5, outermost once rolled by -60 deg
    [1.0, 0.0, 0.0],    # 2: group 20, outermost without roll
    [0.8, 0.5, 0.0],    # 3: group 20, outermost once rolled by -60 deg
    [0.0, 0.0, 0.2], [0.1, 0.1, 0.1], [-0.1, 0.2, 0.1], [0.2, -0.2, 0.1], [0.0, -0.6, 0.1], [0.0, 0.6, 0.1],
])
LDM106 = 4 + np.arange(106) % 6  # never one of the group vertices
TRANS = np.array([0.05, -0.1, 0.3])


def _two_groups() -> list[list[int]]:
    parallel: list[list[int]] = [[] for _ in range(33)]
    parallel[5] = [0, 1]
    parallel[20] = [2, 3]
    return parallel


def test_rolled_pose_picks_the_extremes_of_the_unrolled_projection():
    angles = np.array([0.1, 0.2, -math.pi / 3])  # pitch, yaw, roll
    ids = contour_indices_106(SHAPE, angles, TRANS, _two_groups(), LDM106)
    assert ids[5] == 0 and ids[20] == 2
    # the choice really differs from the rolled projection's extremes (the test is meaningful) ...
    rolled = _project_np(SHAPE, angles, TRANS)
    assert np.argmin(rolled[[0, 1], 0]) == 1 and np.argmax(rolled[[2, 3], 0]) == 1
    # ... and matches the extremes of an independent roll-free projection
    unrolled = _project_np(SHAPE, [angles[0], angles[1], 0.0], TRANS)
    assert np.argmin(unrolled[[0, 1], 0]) == 0 and np.argmax(unrolled[[2, 3], 0]) == 0
    np.testing.assert_allclose(project_without_roll(SHAPE, angles, TRANS), unrolled, atol=1e-3)
    # with the opposite roll both picks stay the same (roll is ignored)
    ids_pos = contour_indices_106(SHAPE, [0.1, 0.2, math.pi / 3], TRANS, _two_groups(), LDM106)
    np.testing.assert_array_equal(ids_pos, ids)
    # a yaw that swaps the unrolled order swaps the pick: z matters through the re-projection
    shape = SHAPE.copy()
    shape[1, 2] = -3.0  # far behind: under yaw +60 deg its x = c x + s z becomes the smallest
    assert contour_indices_106(shape, [0.0, math.pi / 3, 0.0], TRANS, _two_groups(), LDM106)[5] == 1


def test_points_without_group_keep_ldm106():
    ids = contour_indices_106(SHAPE, [0.0, 0.0, 0.5], TRANS, _two_groups(), LDM106)
    keep = [i for i in range(106) if i not in (5, 20)]  # 16 and >= 33 always; empty groups too
    np.testing.assert_array_equal(ids[keep], LDM106[keep])
    np.testing.assert_array_equal(ids[33:], LDM106[33:])
    assert ids.dtype == np.int64 and ids.shape == (106,)
    # a vertex in group 16 does not move point 16; fewer than 33 groups: missing groups keep ldm106
    parallel = _two_groups()
    parallel[16] = [0, 1, 2, 3]
    assert contour_indices_106(SHAPE, [0, 0, 0], TRANS, parallel, LDM106)[16] == LDM106[16]
    short = contour_indices_106(SHAPE, [0, 0, 0], TRANS, _two_groups()[:6], LDM106)
    assert short[5] == 0 and short[20] == LDM106[20]


def test_positions_come_from_the_given_v2d():
    angles = np.array([0.0, 0.1, -0.7])
    v2d = np.arange(SHAPE.shape[0] * 2, dtype=np.float32).reshape(-1, 2) * 3.0
    out = contour_landmarks_106_2d(SHAPE, angles, TRANS, _two_groups(), LDM106, v2d)
    ids = contour_indices_106(SHAPE, angles, TRANS, _two_groups(), LDM106)
    assert out.shape == (106, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out, v2d[ids])
    np.testing.assert_array_equal(out[33:], v2d[LDM106[33:]])


def test_later_groups_override_earlier_ones():
    # vertex 0 (the minimal x) is listed in groups 2 and 7: it belongs to group 7 only
    parallel: list[list[int]] = [[] for _ in range(33)]
    parallel[2] = [0, 1, 6]
    parallel[7] = [0, 5]
    vp = vertex_parallel(parallel, SHAPE.shape[0])
    assert vp[0] == 7 and vp[1] == 2 and vp[5] == 7 and vp[6] == 2 and vp[4] == -1
    ids = contour_indices_106(SHAPE, [0, 0, 0], TRANS, parallel, LDM106)
    assert ids[2] == 1  # min x of {1, 6}: vertex 0 is no longer in group 2
    assert ids[7] == 0
    # the same on the max-x side
    parallel = [[] for _ in range(33)]
    parallel[18] = [2, 3, 5]
    parallel[30] = [2, 7]
    ids = contour_indices_106(SHAPE, [0, 0, 0], TRANS, parallel, LDM106)
    assert ids[18] == 3 and ids[30] == 2


def test_vertex_parallel_rejects_bad_ids():
    with pytest.raises(ValueError, match="parallel group 1"):
        vertex_parallel([[0], [99]], 10)
    with pytest.raises(ValueError, match="106"):
        contour_indices_106(SHAPE, [0, 0, 0], TRANS, _two_groups(), LDM106[:68])


# --- DDFAv3.fit exposes it ---------------------------------------------------------------------------------


def test_fit_returns_ldm106_2d_in_photo_px(fit, model):
    fm = model.face_model
    ldm = fit["ldm106_2d"]
    assert ldm.shape == (106, 2) and ldm.dtype == np.float32
    v2d_full = fit["v2d_full"]
    np.testing.assert_array_equal(ldm[33:], v2d_full[fm.ldm106[33:]])  # same conversion as landmarks68
    np.testing.assert_array_equal(ldm[16], v2d_full[fm.ldm106[16]])
    # contour points: the extreme-x vertex of each (override-resolved) group, recomputed independently
    coeffs = fit["coeffs"].astype(np.float64)
    angles, trans = coeffs[224:227], coeffs[254:257]
    x = _project_np(fit["model_vertices"], [angles[0], angles[1], 0.0], trans)[:, 0]
    owner = {}
    for i, group in enumerate(fm.parallel):
        for v in group:
            owner[int(v)] = i
    moved = 0
    for i in list(range(16)) + list(range(17, 33)):
        members = np.array([v for v, g in owner.items() if g == i])
        best = members[np.argmin(x[members])] if i < 16 else members[np.argmax(x[members])]
        np.testing.assert_array_equal(ldm[i], v2d_full[best], err_msg=f"contour point {i}")
        moved += int(best != fm.ldm106[i])
    assert moved > 0  # marching changed something on this fit
    # the other keys are untouched
    np.testing.assert_array_equal(fit["landmarks68"], v2d_full[fm.ldm68])
