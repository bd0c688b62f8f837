"""Tests of faceanon.raster (C++ core) against hand-computed cases and the numpy reference."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faceanon._ext.reference import interpolate_reference, rasterize_reference
from faceanon.raster import RasterResult, interpolate, rasterize

F32 = np.float32


def tri_mesh(*points, depth=1.0):
    """Vertices (float32) and one-triangle-per-3-points triangles from (x, y[, z]) points."""
    v = np.array([p if len(p) == 3 else (*p, depth) for p in points], dtype=F32)
    t = np.arange(len(v), dtype=np.int32).reshape(-1, 3)
    return v, t


def picture(text: str) -> np.ndarray:
    """ASCII mask: '#' covered, '.' empty, one line per row."""
    rows = [line.strip() for line in text.strip().splitlines()]
    return np.array([[c == "#" for c in row] for row in rows], dtype=bool)


def assert_matches_reference(v, t, h, w, cull=None, **kw):
    r = rasterize(v, t, h, w, cull=cull, **kw)
    ref_id, ref_bary, ref_depth = rasterize_reference(v, t, h, w, cull)
    np.testing.assert_array_equal(r.tri_id, ref_id)
    np.testing.assert_allclose(r.bary, ref_bary, rtol=0, atol=1e-5)
    covered = ref_id >= 0
    np.testing.assert_allclose(r.depth[covered], ref_depth[covered], rtol=1e-6, atol=1e-5)
    assert np.all(np.isneginf(r.depth[~covered]))
    return r


# --------------------------------------------------------------------------------------------
# Hand-computed coverage
# --------------------------------------------------------------------------------------------

RIGHT_TRIANGLE = picture(
    """
    ####...
    ###....
    ##.....
    #......
    .......
    """
)


@pytest.mark.parametrize("order", [(0, 1, 2), (0, 2, 1), (1, 2, 0), (2, 1, 0)])
def test_right_triangle_hand_computed(order):
    # (0,0), (4,0), (0,4): centres on the top edge (y=0) and the left edge (x=0) are in, centres on
    # the hypotenuse x+y=4 (a bottom-right edge) are out: 4+3+2+1 = 10 pixels.  Either winding.
    pts = np.array([(0, 0), (4, 0), (0, 4)])[list(order)]
    v, t = tri_mesh(*map(tuple, pts))
    r = rasterize(v, t, 5, 7)
    np.testing.assert_array_equal(r.mask, RIGHT_TRIANGLE)
    expected_pixels = {(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (3, 0)}
    assert set(zip(*np.nonzero(r.mask))) == expected_pixels
    # Triangle index 0 is drawn (the seed's mask dropped it).
    assert np.all(r.tri_id[r.mask] == 0)
    assert np.all(r.tri_id[~r.mask] == -1)


def test_triangle_with_no_centre_on_its_edges():
    # (-0.5,-0.5), (5.5,-0.5), (-0.5,5.5): centres with x+y < 5 are inside, x+y = 5 is on the
    # hypotenuse (excluded), nothing lies on the other two edges.
    v, t = tri_mesh((-0.5, -0.5), (5.5, -0.5), (-0.5, 5.5))
    r = rasterize(v, t, 6, 6)
    ii, jj = np.mgrid[:6, :6]
    np.testing.assert_array_equal(r.mask, ii + jj < 5)


def test_right_and_bottom_edges_are_excluded_top_and_left_included():
    # Axis-aligned square (1,1)-(4,3) as two triangles: columns 1..3, rows 1..2.
    v = np.array([(1, 1, 0), (4, 1, 0), (4, 3, 0), (1, 3, 0)], dtype=F32)
    t = np.array([(0, 1, 2), (0, 2, 3)], dtype=np.int32)
    r = rasterize(v, t, 5, 6)
    expected = picture(
        """
        ......
        .###..
        .###..
        ......
        ......
        """
    )
    np.testing.assert_array_equal(r.mask, expected)


@pytest.mark.parametrize("flip_winding", [False, True])
def test_square_split_on_diagonal_covers_each_centre_once(flip_winding):
    # Square (1,1)-(5,5); the diagonal (1,1)-(5,5) passes exactly through 4 pixel centres.
    v = np.array([(1, 1, 0), (5, 1, 0), (5, 5, 0), (1, 5, 0)], dtype=F32)
    t = np.array([(0, 1, 2), (0, 2, 3)], dtype=np.int32)
    if flip_winding:
        t = t[:, ::-1].copy()
    upper = rasterize(v, t[:1], 7, 7).mask  # y <= x side
    lower = rasterize(v, t[1:], 7, 7).mask
    # Hand-computed: the diagonal is a left edge of the upper-right triangle, so its centres
    # (1,1), (2,2), (3,3), (4,4) belong to it; the right edge x=5 and bottom edge y=5 are out.
    ii, jj = np.mgrid[:7, :7]
    inside = (ii >= 1) & (ii <= 4) & (jj >= 1) & (jj <= 4)
    np.testing.assert_array_equal(upper, inside & (jj >= ii))
    np.testing.assert_array_equal(lower, inside & (jj < ii))
    assert upper.sum() == 10 and lower.sum() == 6
    both = rasterize(v, t, 7, 7)
    np.testing.assert_array_equal(both.mask, inside)
    np.testing.assert_array_equal(both.tri_id[inside], np.where(jj >= ii, 0, 1)[inside])


def test_square_split_on_other_diagonal():
    v = np.array([(1, 1, 0), (5, 1, 0), (5, 5, 0), (1, 5, 0)], dtype=F32)
    t = np.array([(0, 1, 3), (1, 2, 3)], dtype=np.int32)
    a = rasterize(v, t[:1], 7, 7).mask
    b = rasterize(v, t[1:], 7, 7).mask
    ii, jj = np.mgrid[:7, :7]
    inside = (ii >= 1) & (ii <= 4) & (jj >= 1) & (jj <= 4)
    assert not np.any(a & b)
    np.testing.assert_array_equal(a | b, inside)
    # The anti-diagonal x+y=6 goes up-right, i.e. it is the right edge of the upper-left triangle
    # and the left edge of the lower-right one, which therefore owns (1,5)...: inside part (2,4),(3,3),(4,2).
    for i, j in [(2, 4), (3, 3), (4, 2)]:
        assert b[i, j] and not a[i, j]


def test_shared_edge_centres_are_never_double_covered_or_missed():
    # Fan of triangles around a centre at a pixel centre, spokes through pixel centres.
    c = (8, 8)
    ring = [(14, 8), (14, 14), (8, 14), (2, 14), (2, 8), (2, 2), (8, 2), (14, 2)]
    v = np.array([(*c, 0)] + [(*p, 0) for p in ring], dtype=F32)
    t = np.array([(0, 1 + k, 1 + (k + 1) % 8) for k in range(8)], dtype=np.int32)
    count = sum(rasterize(v, t[k : k + 1], 17, 17).mask.astype(int) for k in range(8))
    ii, jj = np.mgrid[:17, :17]
    square = (ii >= 2) & (ii < 14) & (jj >= 2) & (jj < 14)
    np.testing.assert_array_equal(count, square.astype(int))


# --------------------------------------------------------------------------------------------
# Image border: no special cases, correct clipping
# --------------------------------------------------------------------------------------------


def test_triangle_covering_everything_covers_every_border_pixel():
    v, t = tri_mesh((-50, -50), (200, -50), (-50, 200))
    r = rasterize(v, t, 9, 11)
    assert r.mask.all()
    np.testing.assert_allclose(r.bary.sum(-1), 1, atol=1e-6)


def test_border_pixels_follow_the_inner_rule():
    # Square whose edges run exactly along row 0, column 0, the last row and the last column:
    # top/left edges are in, right/bottom edges are out, exactly like the inner square above.
    h, w = 6, 8
    v = np.array([(0, 0, 0), (w - 1, 0, 0), (w - 1, h - 1, 0), (0, h - 1, 0)], dtype=F32)
    t = np.array([(0, 1, 2), (0, 2, 3)], dtype=np.int32)
    r = rasterize(v, t, h, w)
    expected = np.zeros((h, w), bool)
    expected[: h - 1, : w - 1] = True
    np.testing.assert_array_equal(r.mask, expected)
    # Same square one pixel further out: now the last row/column are strictly inside.
    v2 = v.copy()
    v2[:, 0] = np.where(v[:, 0] > 0, w, -1)
    v2[:, 1] = np.where(v[:, 1] > 0, h, -1)
    assert rasterize(v2, t, h, w).mask.all()


@pytest.mark.parametrize("seed", range(20))
def test_clipping_equals_crop_of_larger_canvas(seed):
    # Rasterizing into a window must equal cropping the rasterization of the same mesh shifted
    # into a larger canvas: no border special case, exact clipping of partly-outside triangles.
    rng = np.random.default_rng(1000 + seed)
    h, w, pad = 13, 17, 9
    n = 12
    v = np.empty((n, 3), F32)
    v[:, 0] = rng.uniform(-8, w + 8, n)
    v[:, 1] = rng.uniform(-8, h + 8, n)
    v[:, :2] = np.round(v[:, :2] * rng.choice([1, 2, 256], n)[:, None]) / rng.choice([1, 2, 256], n)[:, None]
    v[:, 2] = rng.uniform(-1, 1, n)
    t = rng.integers(0, n, (20, 3)).astype(np.int32)
    small = rasterize(v, t, h, w)
    big_v = v.copy()
    big_v[:, :2] += pad
    big = rasterize(big_v, t, h + 2 * pad, w + 2 * pad)
    crop = (slice(pad, pad + h), slice(pad, pad + w))
    np.testing.assert_array_equal(small.tri_id, big.tri_id[crop])
    np.testing.assert_allclose(small.bary, big.bary[crop], atol=1e-5)
    np.testing.assert_array_equal(small.depth, big.depth[crop])


def test_far_away_vertices_wide_path():
    # Vertical left edge at x = 3.5, the other vertices ~1e9 px away (beyond the int64 fast
    # path): exactly the columns x >= 4 are covered, on every row.
    v, t = tri_mesh((3.5, -1e9), (3.5, 1e9), (1e9, 0.0))
    r = rasterize(v, t, 6, 9)
    expected = np.zeros((6, 9), bool)
    expected[:, 4:] = True
    np.testing.assert_array_equal(r.mask, expected)
    assert_matches_reference(v, t, 6, 9)


def test_vertices_beyond_the_supported_range_are_skipped():
    v, t = tri_mesh((0, 0), (4, 0), (0, 4), (0, 0), (3e12, 0), (0, 4))
    r = rasterize(v, t, 5, 5)
    assert set(np.unique(r.tri_id)) == {-1, 0}
    np.testing.assert_array_equal(r.mask, RIGHT_TRIANGLE[:, :5])


# --------------------------------------------------------------------------------------------
# Depth test, culling, degenerate and invalid triangles
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("near_first", [True, False])
def test_nearer_triangle_occludes_regardless_of_order(near_first):
    near = [(0, 0, 5.0), (10, 0, 5.0), (0, 10, 5.0)]
    far = [(-2, -2, 1.0), (12, -2, 1.0), (-2, 12, 1.0)]
    pts = near + far if near_first else far + near
    v = np.array(pts, dtype=F32)
    t = np.array([(0, 1, 2), (3, 4, 5)], dtype=np.int32)
    r = rasterize(v, t, 12, 12)
    near_id = 0 if near_first else 1
    near_mask = rasterize(v, t[near_id : near_id + 1], 12, 12).mask
    assert near_mask.sum() > 40
    assert np.all(r.tri_id[near_mask] == near_id)
    assert np.all(r.depth[near_mask] == 5.0)
    assert np.all(r.tri_id[r.mask & ~near_mask] == 1 - near_id)


def test_sloped_depth_intersection():
    # Two triangles crossing in depth: each pixel shows the one with the larger interpolated z.
    v = np.array([(0, 0, 0), (20, 0, 10), (0, 20, 0), (0, 0, 10), (20, 0, 0), (0, 20, 10)], dtype=F32)
    t = np.array([(0, 1, 2), (3, 4, 5)], dtype=np.int32)
    r = assert_matches_reference(v, t, 21, 21)
    ii, jj = np.mgrid[:21, :21]
    z0, z1 = jj / 2, 10 - jj / 2 + 0 * ii
    m = r.mask
    np.testing.assert_allclose(r.depth[m], np.maximum(z0, z1)[m], atol=1e-5)
    assert np.all(r.tri_id[m & (z0 > z1)] == 0) and np.all(r.tri_id[m & (z1 > z0)] == 1)
    assert np.all(r.tri_id[m & (z0 == z1)] == 0)  # exact tie on the crossing line: lower index


@pytest.mark.parametrize("threads", [1, 2])
def test_depth_ties_go_to_lower_index(threads):
    a = [(0, 0), (9, 0), (0, 9)]
    b = [(2, 2), (11, 2), (2, 11)]
    for first, second in [(a, b), (b, a)]:
        v, t = tri_mesh(*first, *second, depth=3.0)
        r = rasterize(v, t, 12, 12, threads=threads)
        m0 = rasterize(v, t[:1], 12, 12).mask
        assert np.all(r.tri_id[m0] == 0)
        assert np.all(r.tri_id[r.mask & ~m0] == 1)
    # Same triangle twice, the second one reversed: index 0 wins everywhere.
    v, t = tri_mesh(*a, a[0], a[2], a[1])
    r = rasterize(v, t, 12, 12, threads=threads)
    assert r.mask.any() and np.all(r.tri_id[r.mask] == 0)


def test_cull_modes():
    # Left: positive image-space area (back-facing); right: negative area (front-facing).
    pos = [(0, 0), (5, 0), (0, 5)]
    neg = [(10, 0), (10, 5), (15, 0)]
    v, t = tri_mesh(*pos, *neg)
    p = v[t]
    area = (p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1]) - (p[:, 2, 0] - p[:, 0, 0]) * (p[:, 1, 1] - p[:, 0, 1])
    assert area[0] > 0 and area[1] < 0
    ids = lambda cull: set(np.unique(rasterize(v, t, 6, 16, cull=cull).tri_id)) - {-1}  # noqa: E731
    assert ids(None) == {0, 1}
    assert ids("back") == {1}
    assert ids("front") == {0}
    # Same footprint: triangle 0 far with area > 0 (back-facing), triangle 1 near with area < 0
    # (front-facing).  Culling the nearer one reveals the one behind it.
    v2 = np.array([(0, 0, 1), (5, 0, 1), (0, 5, 1), (0, 0, 2), (0, 5, 2), (5, 0, 2)], dtype=F32)
    t2 = np.array([(0, 1, 2), (3, 4, 5)], dtype=np.int32)
    assert set(np.unique(rasterize(v2, t2, 6, 6).tri_id)) == {-1, 1}
    assert set(np.unique(rasterize(v2, t2, 6, 6, cull="back").tri_id)) == {-1, 1}
    assert set(np.unique(rasterize(v2, t2, 6, 6, cull="front").tri_id)) == {-1, 0}
    assert set(np.unique(rasterize(v2, t2[:1], 6, 6, cull="back").tri_id)) == {-1}
    np.testing.assert_array_equal(rasterize(v2, t2, 6, 6, cull="front").mask, rasterize(v2, t2, 6, 6).mask)


@pytest.mark.parametrize(
    "points",
    [
        [(0, 0), (2, 2), (4, 4)],  # collinear through pixel centres
        [(1, 1), (1, 1), (5, 3)],  # repeated point
        [(3, 3), (3, 3), (3, 3)],  # a point on a pixel centre
        [(0, 2), (8, 2), (4, 2)],  # horizontal line along a row of centres
        [(1, 1), (6, 4), (1.0001, 1.0001)],  # zero area once snapped to 1/256 px
    ],
)
def test_degenerate_triangle_draws_nothing(points):
    v, t = tri_mesh(*points)
    for cull in (None, "back", "front"):
        r = rasterize(v, t, 9, 9, cull=cull)
        assert not r.mask.any()
        assert np.all(np.isneginf(r.depth)) and not r.bary.any()


def test_repeated_index_draws_nothing():
    v, _ = tri_mesh((0, 0), (5, 0), (0, 5))
    assert not rasterize(v, np.array([[0, 0, 1], [2, 2, 2]], np.int32), 6, 6).mask.any()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("coord", [0, 1, 2])
def test_non_finite_vertex_skips_its_triangle(bad, coord):
    v, t = tri_mesh((0, 0), (5, 0), (0, 5), (6, 0), (11, 0), (6, 5))
    v[4, coord] = bad
    r = rasterize(v, t, 6, 12)
    assert set(np.unique(r.tri_id)) == {-1, 0}
    np.testing.assert_array_equal(r.mask[:, :6], rasterize(v, t[:1], 6, 6).mask)


def test_empty_outputs():
    v = np.zeros((0, 3), F32)
    t = np.zeros((0, 3), np.int32)
    r = rasterize(v, t, 3, 4)
    assert r.tri_id.shape == (3, 4) and r.tri_id.dtype == np.int32 and np.all(r.tri_id == -1)
    assert r.bary.shape == (3, 4, 3) and r.bary.dtype == np.float32 and not r.bary.any()
    assert r.depth.shape == (3, 4) and r.depth.dtype == np.float32 and np.all(np.isneginf(r.depth))
    assert r.mask.dtype == bool and not r.mask.any()


def test_output_values_inside():
    v, t = tri_mesh((0, 0, 1), (8, 0, 3), (0, 8, 5))
    r = rasterize(v, t, 9, 9)
    m = r.mask
    ii, jj = np.nonzero(m)
    np.testing.assert_allclose(r.bary[m].sum(-1), 1, atol=1e-6)
    np.testing.assert_allclose(r.bary[m][:, 1], jj / 8, atol=1e-6)
    np.testing.assert_allclose(r.bary[m][:, 2], ii / 8, atol=1e-6)
    np.testing.assert_allclose(r.depth[m], 1 + 2 * jj / 8 + 4 * ii / 8, atol=1e-5)
    assert not r.bary[~m].any() and np.all(np.isneginf(r.depth[~m]))
    # Weights follow the triangle's vertex order.
    r2 = rasterize(v, t[:, [2, 0, 1]].copy(), 9, 9)
    np.testing.assert_array_equal(r2.mask, m)
    np.testing.assert_allclose(r2.bary[m], r.bary[m][:, [2, 0, 1]], atol=1e-6)


def test_accepts_int64_float64_and_non_contiguous():
    v, t = tri_mesh((0.3, 0.2, 1), (7.7, 1.1, 2), (2.2, 6.6, 3))
    ref = rasterize(v, t, 8, 9)
    r64 = rasterize(v.astype(np.float64), t.astype(np.int64), 8, 9)
    np.testing.assert_array_equal(r64.tri_id, ref.tri_id)
    v_nc = np.asfortranarray(v)
    t_nc = np.concatenate([t, t], axis=1)[:, ::2][:, :3]
    r_nc = rasterize(v_nc, np.ascontiguousarray(t)[:, [0, 1, 2]], 8, 9)
    np.testing.assert_array_equal(r_nc.tri_id, ref.tri_id)
    assert not t_nc.flags.c_contiguous  # the same triangle, other winding: same coverage
    np.testing.assert_array_equal(rasterize(v, t_nc, 8, 9).tri_id, ref.tri_id)
    assert rasterize(v, t, np.int64(8), np.int32(9)).tri_id.shape == (8, 9)
    ro_v, ro_t = v.copy(), t.copy()
    ro_v.setflags(write=False)
    ro_t.setflags(write=False)
    np.testing.assert_array_equal(rasterize(ro_v, ro_t, 8, 9).tri_id, ref.tri_id)


# --------------------------------------------------------------------------------------------
# Against the numpy reference: >= 100 random meshes
# --------------------------------------------------------------------------------------------


def random_mesh(rng: np.random.Generator, h: int, w: int):
    """Small random mesh exercising every case: shared edges (both orientations), degenerate and
    duplicated triangles, vertices on pixel centres / half pixels / the snapping grid's ties,
    partly-outside and far-away vertices, non-finite vertices, constant-depth ties."""
    n = int(rng.integers(4, 16))
    v = np.empty((n, 3), np.float64)
    v[:, 0] = rng.uniform(-6, w + 6, n)
    v[:, 1] = rng.uniform(-6, h + 6, n)
    grid = rng.choice([0, 1, 2, 512], n)  # 0: free float; k: multiples of 1/k px
    on_grid = grid > 0
    v[on_grid, :2] = np.round(v[on_grid, :2] * grid[on_grid, None]) / grid[on_grid, None]
    if rng.random() < 0.5:
        v[:, 2] = rng.uniform(-5, 5, n)
    else:  # few distinct depth levels: many exact ties
        v[:, 2] = rng.choice([-1.0, 0.0, 2.0], n)
    extra = []
    if rng.random() < 0.3:  # a far-away vertex (wide integer path) or beyond the supported range
        extra.append((rng.choice([-1, 1]) * rng.choice([3e6, 1e9, 1e13]), rng.uniform(0, h), 0.5))
    if rng.random() < 0.2:
        extra.append((np.nan, 1.0, 0.0))
    if rng.random() < 0.2:
        extra.append((1.0, 2.0, np.inf))
    if extra:
        v = np.concatenate([v, np.array(extra)])
        n = len(v)
    v = v.astype(F32)

    m = int(rng.integers(1, 25))
    t = rng.integers(0, n, (m, 3))
    tris = [tuple(x) for x in t]
    for a, b, c in list(tris):
        r = rng.random()
        if r < 0.35:  # a neighbour sharing edge a-b (consistent or flipped winding)
            d = int(rng.integers(0, n))
            tris.append((b, a, d) if rng.random() < 0.7 else (a, b, d))
        elif r < 0.45:  # exact duplicate, maybe reversed
            tris.append((a, b, c) if rng.random() < 0.5 else (c, b, a))
        elif r < 0.5:  # degenerate
            tris.append((a, a, b))
    tris = np.array(tris, dtype=np.int32)
    tris = tris[rng.permutation(len(tris))]
    return v, tris


@pytest.mark.parametrize("seed", range(160))
def test_random_meshes_match_reference(seed):
    rng = np.random.default_rng(seed)
    h, w = (17, 23) if seed % 8 else tuple(int(x) for x in rng.integers(1, 30, 2))
    v, t = random_mesh(rng, h, w)
    cull = [None, "back", "front"][seed % 3]
    assert_matches_reference(v, t, h, w, cull=cull)


@pytest.mark.parametrize("seed", range(6))
def test_dense_mesh_matches_reference_and_is_thread_independent(seed):
    rng = np.random.default_rng(500 + seed)
    h, w = 64, 96
    n, m = 120, 400
    v = np.empty((n, 3), F32)
    v[:, 0] = rng.uniform(-10, w + 10, n)
    v[:, 1] = rng.uniform(-10, h + 10, n)
    v[: n // 2, :2] = np.round(v[: n // 2, :2])
    v[:, 2] = rng.choice([0.0, 1.0, 2.0], n) if seed % 2 else rng.uniform(-1, 1, n)
    t = rng.integers(0, n, (m, 3)).astype(np.int32)
    r1 = assert_matches_reference(v, t, h, w, threads=1)
    for threads in (2, 3, 7):
        rt = rasterize(v, t, h, w, threads=threads)
        np.testing.assert_array_equal(rt.tri_id, r1.tri_id)
        np.testing.assert_array_equal(rt.bary, r1.bary)
        np.testing.assert_array_equal(rt.depth, r1.depth)


def test_large_target_threads_identical():
    # Big enough for the automatic thread count to go parallel on a multi-core machine.
    rng = np.random.default_rng(7)
    m = 6000  # small overlapping triangles with few depth levels (many exact ties)
    centres = rng.uniform(-20, 660, (m, 1, 2))
    v = np.empty((m, 3, 3), F32)
    v[..., :2] = centres + rng.uniform(-25, 25, (m, 3, 2))
    v[..., 2] = rng.choice([0.0, 1.0], (m, 1))
    v = v.reshape(-1, 3)
    t = np.arange(3 * m, dtype=np.int32).reshape(m, 3)
    results = [rasterize(v, t, 600, 640, threads=k) for k in (None, 1, 2, 4)]
    for r in results[1:]:
        np.testing.assert_array_equal(r.tri_id, results[0].tri_id)
        np.testing.assert_array_equal(r.depth, results[0].depth)


def test_concurrent_calls_from_python_threads():
    # The core runs without the GIL: concurrent calls must not interfere.
    meshes = [random_mesh(np.random.default_rng(s), 40, 50) for s in range(8)]
    expected = [rasterize(v, t, 40, 50).tri_id for v, t in meshes]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda vt: rasterize(vt[0], vt[1], 40, 50).tri_id, meshes * 3))
    for k, g in enumerate(got):
        np.testing.assert_array_equal(g, expected[k % len(meshes)])


# --------------------------------------------------------------------------------------------
# Watertightness on random partitions of a rectangle (property-based)
# --------------------------------------------------------------------------------------------


def jittered_grid(rng, nx, ny, cell, origin, jitter, flip_fraction):
    """Triangulated nx x ny grid of a rectangle with integer corners; interior vertices jittered by
    up to `jitter` cells (< 0.15 keeps every triangle's orientation), boundary vertices slide along
    the boundary only.  Returns vertices, triangles, and the rectangle."""
    gx, gy = np.meshgrid(np.arange(nx + 1, dtype=float), np.arange(ny + 1, dtype=float))
    dx = rng.uniform(-jitter, jitter, gx.shape)
    dy = rng.uniform(-jitter, jitter, gy.shape)
    dx[:, [0, -1]] = 0
    dy[[0, -1], :] = 0
    x = origin[0] + (gx + dx) * cell
    y = origin[1] + (gy + dy) * cell
    if rng.random() < 0.5:  # keep sub-pixel positions on "nice" grids to put centres on edges
        q = rng.choice([1, 2, 4])
        x, y = np.round(x * q) / q, np.round(y * q) / q
    v = np.stack([x.ravel(), y.ravel(), rng.uniform(0, 1, x.size)], 1).astype(F32)
    ids = np.arange((nx + 1) * (ny + 1)).reshape(ny + 1, nx + 1)
    tris = []
    for i in range(ny):
        for j in range(nx):
            a, b, c, d = ids[i, j], ids[i, j + 1], ids[i + 1, j], ids[i + 1, j + 1]
            if rng.random() < 0.5:
                tris += [(a, b, d), (a, d, c)]
            else:
                tris += [(a, b, c), (b, d, c)]
    t = np.array(tris, dtype=np.int32)
    flip = rng.random(len(t)) < flip_fraction
    t[flip] = t[flip][:, ::-1]
    rect = (origin[0], origin[1], origin[0] + nx * cell, origin[1] + ny * cell)
    return v, t, rect


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    nx=st.integers(1, 6),
    ny=st.integers(1, 6),
    cell=st.sampled_from([1, 2, 3, 4]),
    ox=st.integers(-4, 4),
    oy=st.integers(-4, 4),
    jitter=st.sampled_from([0.0, 0.1, 0.14]),
    flip_fraction=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_partition_of_a_rectangle_covers_each_centre_exactly_once(seed, nx, ny, cell, ox, oy, jitter, flip_fraction):
    rng = np.random.default_rng(seed)
    v, t, (x0, y0, x1, y1) = jittered_grid(rng, nx, ny, cell, (ox, oy), jitter, flip_fraction)
    h, w = 20, 22
    count = np.zeros((h, w), int)
    for k in range(len(t)):
        count += rasterize(v, t[k : k + 1], h, w).mask
    ii, jj = np.mgrid[:h, :w]
    # Top-left rule on the outer rectangle: x0 <= x < x1, y0 <= y < y1.
    expected = ((jj >= x0) & (jj < x1) & (ii >= y0) & (ii < y1)).astype(int)
    np.testing.assert_array_equal(count, expected)
    np.testing.assert_array_equal(rasterize(v, t, h, w).mask, expected.astype(bool))


# --------------------------------------------------------------------------------------------
# interpolate()
# --------------------------------------------------------------------------------------------


def test_interpolate_reproduces_linear_attribute():
    v = np.array([(0.5, -2.0, 1.0), (30.25, 4.0, 3.0), (3.0, 25.5, -2.0), (28.0, 27.0, 0.0)], dtype=F32)
    t = np.array([(0, 1, 2), (1, 3, 2)], dtype=np.int32)
    r = rasterize(v, t, 24, 28)
    assert r.mask.sum() > 300
    lin = lambda x, y: 2.0 * x - 3.0 * y + 7.0  # noqa: E731
    attrs = np.stack([lin(v[:, 0], v[:, 1]), v[:, 0], v[:, 1]], 1)
    out = interpolate(r, attrs)
    assert out.shape == (24, 28, 3) and out.dtype == np.float32
    ii, jj = np.mgrid[:24, :28]
    m = r.mask
    np.testing.assert_allclose(out[m][:, 0], lin(jj, ii)[m], rtol=0, atol=1e-4)
    np.testing.assert_allclose(out[m][:, 1], jj[m], atol=1e-4)
    np.testing.assert_allclose(out[m][:, 2], ii[m], atol=1e-4)
    assert not out[~m].any()
    # Depth is itself a linear attribute.
    np.testing.assert_allclose(interpolate(r, v[:, 2].astype(np.float64))[m], r.depth[m], atol=1e-5)


@pytest.mark.parametrize("seed", range(10))
def test_interpolate_matches_reference(seed):
    rng = np.random.default_rng(seed)
    v, t = random_mesh(rng, 17, 23)
    r = rasterize(v, t, 17, 23)
    for attrs in (rng.normal(size=(len(v), 4)), rng.normal(size=len(v)), rng.integers(0, 9, len(v)).astype(np.uint8)):
        out = interpolate(r, attrs)
        ref = interpolate_reference(r.tri_id, r.bary, r.triangles, attrs)
        assert out.shape == ref.shape and out.dtype == np.float32
        np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)


def test_interpolate_constant_and_one_hot():
    v, t = tri_mesh((0, 0), (9, 0), (0, 9), (9, 0), (9, 9), (0, 9))
    r = rasterize(v, t, 10, 10)
    ones = interpolate(r, np.ones(len(v), dtype=bool))
    np.testing.assert_allclose(ones[r.mask], 1, atol=1e-6)
    assert ones.shape == (10, 10)
    np.testing.assert_array_equal(ones[~r.mask], 0)


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------

V_OK, T_OK = tri_mesh((0, 0), (4, 0), (0, 4))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(vertices=V_OK[:, :2]), "vertices"),
        (dict(vertices=V_OK[None]), "vertices"),
        (dict(vertices=V_OK.astype(np.int32)), "vertices"),
        (dict(vertices=V_OK.tolist()), "vertices"),
        (dict(triangles=T_OK[:, :2]), "triangles"),
        (dict(triangles=T_OK.astype(np.float32)), "triangles"),
        (dict(triangles=T_OK.astype(bool)), "triangles"),
        (dict(triangles=T_OK + 1), "triangles"),
        (dict(triangles=T_OK - 1), "triangles"),
        (dict(triangles=T_OK.ravel()), "triangles"),
        (dict(height=0), "height"),
        (dict(height=-3), "height"),
        (dict(height=4.0), "height"),
        (dict(height=True), "height"),
        (dict(height=2**21), "height"),
        (dict(width=0), "width"),
        (dict(width="5"), "width"),
        (dict(cull="both"), "cull"),
        (dict(cull=True), "cull"),
        (dict(threads=0), "threads"),
        (dict(threads=1.5), "threads"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    args = dict(vertices=V_OK, triangles=T_OK, height=5, width=5)
    extra = {k: kwargs.pop(k) for k in ("cull", "threads") if k in kwargs}
    args.update(kwargs)
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        rasterize(args["vertices"], args["triangles"], args["height"], args["width"], **extra)


def test_interpolate_bad_arguments():
    r = rasterize(V_OK, T_OK, 5, 5)
    with pytest.raises(ValueError, match=r"^r\b"):
        interpolate((r.tri_id, r.bary), np.zeros(3))
    with pytest.raises(ValueError, match=r"^attrs\b"):
        interpolate(r, np.zeros(4))
    with pytest.raises(ValueError, match=r"^attrs\b"):
        interpolate(r, np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match=r"^attrs\b"):
        interpolate(r, np.zeros(3, dtype=complex))
    with pytest.raises(ValueError, match=r"^attrs\b"):
        interpolate(r, [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"^threads\b"):
        interpolate(r, np.zeros(3), threads=-1)
    assert isinstance(r, RasterResult)
