"""anonymize stage: Umeyama, the morph (canonical / keep-pose), posed image vertices, texture re-bake."""

from __future__ import annotations

import numpy as np
import pytest

from faceanon.errors import UsageError
from faceanon.io.facefiles import anonymized_obj_vertices
from faceanon.stages.anonymize import AnonymizedFace, anonymize_face, check_alpha, morph_vertices
from faceanon.stages.geometry import Similarity, rotation_matrix, umeyama
from faceanon.stages.texture import SILHOUETTE_TRIM, bake_texture, uv_layout
from test_anonymize_helpers import (  # noqa: F401 - bfm is a fixture
    bfm, draw_photo, grid_mesh, merge, posed_face, to_image,
)


def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


# ----------------------------------------------------------------------------------------------
# Umeyama


@pytest.mark.parametrize("seed", range(6))
def test_umeyama_recovers_a_random_similarity(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 3)) * [3.0, 2.0, 1.0]
    R = random_rotation(rng)
    s = float(rng.uniform(0.01, 50))
    t = rng.normal(size=3) * 100
    Y = s * X @ R.T + t
    sim = umeyama(X, Y)
    assert sim.s == pytest.approx(s, rel=1e-9)
    np.testing.assert_allclose(sim.R, R, atol=1e-9)
    np.testing.assert_allclose(sim.t, t, atol=1e-6 * max(1.0, np.abs(t).max()))
    np.testing.assert_allclose(sim.apply(X), Y, atol=1e-6 * np.abs(Y).max())
    np.testing.assert_allclose(sim.inverse_apply(Y), X, atol=1e-9 * np.abs(Y).max() / s + 1e-9)
    inv = sim.inverse()
    np.testing.assert_allclose(inv.apply(Y), X, atol=1e-6)
    m = sim.matrix()
    np.testing.assert_allclose((np.c_[X, np.ones(len(X))] @ m.T)[:, :3], Y, atol=1e-6 * np.abs(Y).max())


def test_umeyama_is_reflection_safe():
    """Y is a MIRROR image of X: the unconstrained orthogonal fit is a reflection (det -1); Umeyama must
    still return a proper rotation (the best one), with a positive scale."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(40, 3)) * [5.0, 3.0, 1.0]
    mirror = np.diag([-1.0, 1.0, 1.0])
    R0 = random_rotation(rng)
    Y = 2.0 * X @ (R0 @ mirror).T + [1, 2, 3]
    # the naive recipe (R = U V^T without the sign correction) gives a reflection here
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    U, D, Vt = np.linalg.svd(Yc.T @ Xc / len(X))
    assert np.linalg.det(U @ Vt) < 0
    sim = umeyama(X, Y)
    assert np.linalg.det(sim.R) == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(sim.R @ sim.R.T, np.eye(3), atol=1e-9)
    assert sim.s > 0
    # and it is the best proper rotation: no other rotation (with its optimal scale) does better
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)

    def err(R):
        s = max(0.0, float(np.sum(Yc * (Xc @ R.T))) / float(np.sum(Xc * Xc)))
        return float(np.sum((Yc - s * Xc @ R.T) ** 2))

    best = err(sim.R)
    assert np.sum((sim.apply(X) - Y) ** 2) == pytest.approx(best, rel=1e-9)
    for _ in range(300):
        assert err(random_rotation(rng)) >= best * (1 - 1e-12)
    for _ in range(100):  # small perturbations of the optimum
        w = rng.normal(size=3) * 1e-3
        K = np.array([[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]])
        assert err(sim.R @ (np.eye(3) + K + K @ K / 2)) >= best * (1 - 1e-12)


def test_umeyama_matches_least_squares_with_noise():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 3))
    R = random_rotation(rng)
    Y = 1.7 * X @ R.T + [3, -1, 2] + rng.normal(scale=0.01, size=X.shape)
    sim = umeyama(X, Y)
    err = np.sum((sim.apply(X) - Y) ** 2)
    # small perturbations of the parameters only increase the error
    for ds in (-1e-3, 1e-3):
        alt = Similarity(sim.s + ds, sim.R, sim.t)
        assert np.sum((alt.apply(X) - Y) ** 2) > err
    assert sim.s == pytest.approx(1.7, rel=1e-2)


@pytest.mark.parametrize("X", [np.zeros((2, 3)) + [[0, 0, 0], [1, 0, 0]], np.zeros((5, 2)), np.ones((5, 3))])
def test_umeyama_rejects_degenerate_input(X):
    with pytest.raises(ValueError):
        umeyama(X, X + 1.0)


def test_umeyama_shape_mismatch():
    with pytest.raises(ValueError, match="Y must have"):
        umeyama(np.zeros((5, 3)), np.zeros((4, 3)))


# ----------------------------------------------------------------------------------------------
# morph


def _shape_pair(seed=0, n=500):
    """A canonical 'mean' U and a posed, perturbed shape X = sim0(U + D) in a y-up photo frame."""
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(n, 3)) * [6e4, 8e4, 3e4] + [0, 0, 7e4]
    D = rng.normal(size=(n, 3)) * 2e3
    R0 = rotation_matrix(25, -10, 8)
    s0, t0 = 2e-3, np.array([250.0, 310.0, 40.0])
    X = s0 * (U + D) @ R0.T + t0
    return U.astype(np.float32), X.astype(np.float32), (s0, R0, t0)


def test_alpha_one_canonical_is_exactly_the_mean():
    U, X, _ = _shape_pair()
    canonical, posed, sim = morph_vertices(X, U, 1.0)
    np.testing.assert_array_equal(canonical.astype(np.float32), U)


def test_alpha_zero_keep_pose_is_the_input():
    U, X, _ = _shape_pair(1)
    canonical, posed, sim = morph_vertices(X, U, 0.0)
    np.testing.assert_allclose(posed, X, atol=1e-3)
    np.testing.assert_allclose(canonical, sim.apply(X), atol=1e-6 * np.abs(canonical).max())


def test_alpha_one_keep_pose_is_the_mean_up_to_the_similarity():
    U, X, (s0, R0, t0) = _shape_pair(2)
    canonical, posed, sim = morph_vertices(X, U, 1.0)
    back = umeyama(U, posed)  # posed must be an exact similarity image of the mean
    np.testing.assert_allclose(back.apply(U), posed, atol=1e-6 * np.abs(posed).max())
    np.testing.assert_allclose(posed, sim.inverse_apply(U), atol=1e-9 * np.abs(posed).max())
    # ... at the subject's pose and scale
    np.testing.assert_allclose(back.R, R0, atol=2e-2)
    assert back.s == pytest.approx(s0, rel=2e-2)


def test_posed_mean_stays_put_at_any_alpha():
    """A subject whose shape IS the mean: keep-pose output = input, canonical output = mean, any alpha."""
    U, _, _ = _shape_pair(3)
    R0 = rotation_matrix(-30, 5, 0)
    X = (3e-3 * U.astype(np.float64) @ R0.T + [100, 200, 0]).astype(np.float32)
    for a in (0.0, 0.3, 1.0):
        canonical, posed, _ = morph_vertices(X, U, a)
        np.testing.assert_allclose(posed, X, atol=1e-3)
        np.testing.assert_allclose(canonical, U, rtol=0, atol=1e-5 * np.abs(U).max())


def test_morph_is_linear_in_alpha():
    U, X, _ = _shape_pair(4)
    c0, p0, _ = morph_vertices(X, U, 0.0)
    c1, p1, _ = morph_vertices(X, U, 1.0)
    c, p, _ = morph_vertices(X, U, 0.25)
    np.testing.assert_allclose(c, 0.75 * c0 + 0.25 * c1, atol=1e-6 * np.abs(c).max())
    np.testing.assert_allclose(p, 0.75 * p0 + 0.25 * p1, atol=1e-6 * np.abs(p).max())


def _basis_face(seed=0, n=400, k=6, e=3):
    """A mean U, identity / expression bases orthogonal to the similarity motions of U (so that the
    Umeyama fit of a face of the model is its pose), coefficients, and the face posed in a photo frame.
    Returns (U, ShapeBasis, identity deviation (n,3), expression deviation (n,3), X posed float32)."""
    from faceanon.models.base import ShapeBasis

    rng = np.random.default_rng(seed)
    U = rng.normal(size=(n, 3)) * [6e4, 8e4, 3e4]
    U -= U.mean(axis=0)
    motions = [np.tile(np.eye(3)[i], n) for i in range(3)]  # translations
    motions += [np.cross(np.eye(3)[i], U).reshape(-1) for i in range(3)]  # rotations
    motions.append(U.reshape(-1))  # scale
    q, _ = np.linalg.qr(np.stack(motions, axis=1))
    raw = rng.normal(size=(3 * n, k + e))
    raw -= q @ (q.T @ raw)
    W = raw / np.linalg.norm(raw, axis=0) * 5e2 * np.sqrt(n)
    basis = ShapeBasis(W[:, :k], W[:, k:])
    d_id = (W[:, :k] @ rng.normal(size=k)).reshape(n, 3)
    d_exp = (W[:, k:] @ rng.normal(size=e)).reshape(n, 3)
    R0 = rotation_matrix(25, -10, 8)
    X = 2e-3 * (U + d_id + d_exp) @ R0.T + [250.0, 310.0, 40.0]
    return U.astype(np.float32), basis, d_id, d_exp, X.astype(np.float32)


def test_shape_basis_separates_identity_from_expression():
    U, basis, d_id, d_exp, _ = _basis_face(5)
    np.testing.assert_allclose(basis.identity_part(d_id + d_exp), d_id, atol=1e-6 * np.abs(d_id).max())
    np.testing.assert_allclose(basis.identity_part(d_exp), 0, atol=1e-6 * np.abs(d_id).max())
    with pytest.raises(ValueError, match="deviation"):
        basis.identity_part(d_id[:-1])


@pytest.mark.parametrize("seed", range(3))
def test_past_the_mean_pushes_the_identity_away_and_drops_the_expression(seed):
    U, basis, d_id, d_exp, X = _basis_face(seed)
    tol = 0.015 * np.abs(d_id).max()  # Umeyama is the pose only to first order in the deviation
    for alpha in (1.5, 2.0):
        canonical, posed, sim = morph_vertices(X, U, alpha, basis)
        np.testing.assert_allclose(canonical, U - (alpha - 1) * d_id, atol=tol)
        np.testing.assert_allclose(posed, sim.inverse_apply(canonical), atol=1e-9 * np.abs(posed).max())
    # without a basis the whole deviation, expression included, is pushed
    canonical, _, _ = morph_vertices(X, U, 1.5)
    np.testing.assert_allclose(canonical, U - 0.5 * (d_id + d_exp), atol=tol)
    assert np.abs(0.5 * d_exp).max() > 5 * tol  # ... which the tolerance above tells apart


def test_morph_is_continuous_at_the_mean_and_linear_past_it():
    U, basis, _, _, X = _basis_face(7)
    c1, _, _ = morph_vertices(X, U, 1.0, basis)
    c_just, _, _ = morph_vertices(X, U, 1.0 + 1e-9, basis)
    c15, _, _ = morph_vertices(X, U, 1.5, basis)
    c2, _, _ = morph_vertices(X, U, 2.0, basis)
    np.testing.assert_allclose(c_just, c1, atol=1e-6 * np.abs(U).max())
    np.testing.assert_allclose(c15, 0.5 * (c1 + c2), atol=1e-9 * np.abs(U).max())
    # at or below 1 the basis is not used
    for a in (0.0, 0.6, 1.0):
        np.testing.assert_array_equal(morph_vertices(X, U, a, basis)[0], morph_vertices(X, U, a)[0])


def test_a_basis_of_another_model_is_refused():
    U, basis, _, _, X = _basis_face(1)
    with pytest.raises(ValueError, match="shape basis"):
        morph_vertices(X[:-1], U[:-1], 1.5, basis)


@pytest.mark.parametrize("alpha", [-0.01, 2.01, float("nan"), float("inf"), "x"])
def test_alpha_out_of_range_is_a_usage_error(alpha):
    with pytest.raises(UsageError, match="alpha"):
        check_alpha(alpha)
    U, X, _ = _shape_pair()
    with pytest.raises(UsageError):
        morph_vertices(X, U, alpha)


def test_mean_of_another_model_is_refused():
    U, X, _ = _shape_pair()
    with pytest.raises(ValueError, match="mean_vertices"):
        morph_vertices(X, U[:-1], 1.0)


def test_anonymize_face_outputs_and_frames():
    """Wiring on a small synthetic face: canonical vs keep-pose vertices, posed image vertices."""
    v, t, uv = grid_mesh(-1, -1, 1, 1, 0.0, 12, (0.05, 0.05, 0.95, 0.95))
    v[:, 2] = 0.4 * (1 - v[:, 0] ** 2) * (1 - v[:, 1] ** 2)  # a bump toward the viewer
    mean = v * 1e4
    H, W = 120, 100
    R0 = rotation_matrix(15, 0, 5)
    obj = (3e-3 * mean.astype(np.float64) @ R0.T + [50, 60, 10]).astype(np.float32)
    obj[:, 2] += 0.05 * np.sin(np.arange(len(obj)))  # not exactly the mean
    img = np.full((H, W, 3), 180, np.uint8)
    a = anonymize_face(to_image(obj, H), t, uv, img, mean, alpha=1.0, tex_size=64)
    assert isinstance(a, AnonymizedFace)
    assert a.texture.shape == (64, 64, 3) and a.texture.dtype == np.uint8
    np.testing.assert_array_equal(a.canonical, mean)  # alpha 1: exactly the mean face
    posed_obj = a.similarity.inverse_apply(mean)  # the similarity maps the photo's y-up frame (x, H - y, z)
    np.testing.assert_allclose(a.posed_image_vertices, to_image(posed_obj.astype(np.float32), H), atol=1e-3)
    for keep in (False, True):  # the OBJ writer's two frames
        ov = anonymized_obj_vertices(a, keep_pose=keep)
        assert ov.dtype == np.float32 and ov.shape == obj.shape
        if keep:
            np.testing.assert_allclose(ov, posed_obj, atol=1e-3)
        else:  # a grid of another model: written in its own units
            np.testing.assert_array_equal(ov, mean.astype(np.float32))
    b = anonymize_face(to_image(obj, H), t, uv, img, mean, alpha=0.5, tex_size=32)
    assert b.texture.shape == (32, 32, 3)
    assert np.abs(b.canonical - mean).max() > 1e-3  # half way: not the mean


def test_anonymize_face_validates_inputs():
    v, t, uv = grid_mesh(-1, -1, 1, 1, 0.0, 4, (0.05, 0.05, 0.95, 0.95))
    img = np.zeros((40, 40, 3), np.uint8)
    with pytest.raises(ValueError, match="image_rgb"):
        anonymize_face(v, t, uv, img[..., 0], v)
    with pytest.raises(ValueError, match="uv"):
        anonymize_face(v, t, uv[:-1], img, v)
    with pytest.raises(ValueError, match="vertices"):
        anonymize_face(v[:, :2], t, uv, img, v)
    with pytest.raises(ValueError, match="valid"):
        anonymize_face(v, t, uv, img, v, valid=np.ones((5, 5), bool))
    with pytest.raises(UsageError, match="alpha"):
        anonymize_face(v, t, uv, img, v, alpha=2.5)


# ----------------------------------------------------------------------------------------------
# texture re-bake


def _two_planes():
    """Far plane (z 0, red in the photo) partly hidden by a near plane (z 50, green), image 200x200.

    Far plane UVs in the top half of the atlas, near plane in the bottom half."""
    far = grid_mesh(20, 20, 180, 180, 0.0, 16, (0.05, 0.55, 0.95, 0.95))
    near = grid_mesh(60, 60, 140, 140, 50.0, 8, (0.05, 0.05, 0.95, 0.45))
    v, t, uv = merge(far, near)
    n_far = len(far[0])
    H = W = 200
    img_v = to_image(v, H)
    colours = np.zeros((len(v), 3))
    colours[:n_far] = (220, 30, 30)
    colours[n_far:] = (30, 220, 30)
    photo = draw_photo(img_v, t, colours, H, W)
    return v, t, uv, img_v, photo, n_far


@pytest.mark.parametrize("symmetric", [True, False])
def test_occluded_texels_never_take_the_occluders_colour(symmetric):
    v, t, uv, img_v, photo, n_far = _two_planes()
    size = 128
    tex, source = bake_texture(photo, img_v, t, uv, size, symmetric_fill=symmetric)
    lay = uv_layout(uv, t, size, symmetric=symmetric)
    # every far-plane texel and its image position (interpolated)
    far_tri = np.arange(len(t)) < (len(t) - 2 * 8 * 8)
    tid = lay.tri_id
    on_far = (tid >= 0) & far_tri[np.maximum(tid, 0)]
    corners = t[np.maximum(tid, 0)]
    pos = np.einsum("hwk,hwkc->hwc", lay.bary, img_v[corners][..., :2])
    hidden = on_far & (pos[..., 0] > 61) & (pos[..., 0] < 139) & (pos[..., 1] > 61) & (pos[..., 1] < 139)
    # the texels within SILHOUETTE_TRIM of the hidden ones are filled too (their photo pixels straddle
    # the occluder's edge); the far plane's 160 px span 0.4 of the atlas height (0.9 of its width)
    # (and so are those near the plane's own edge, whose rounded pixel can fall off the plane)
    band = int(np.ceil(SILHOUETTE_TRIM * 160 / 0.4))
    lo = 58 - band
    interior = ((pos[..., 0] > 22 + band) & (pos[..., 0] < 178 - band) & (pos[..., 1] > 22 + band)
                & (pos[..., 1] < 178 - band))
    visible = on_far & interior & ~((pos[..., 0] > lo) & (pos[..., 0] < 200 - lo) & (pos[..., 1] > lo)
                                    & (pos[..., 1] < 200 - lo))
    assert hidden.sum() > 500 and visible.sum() > 500
    # a naive bake (no visibility) would copy the green occluder into the hidden far texels
    naive = photo[np.rint(pos[hidden][:, 1]).astype(int), np.rint(pos[hidden][:, 0]).astype(int)]
    assert (naive[:, 1] > 200).mean() > 0.99
    got = tex[hidden].astype(int)
    assert (got[:, 1] < got[:, 0]).all(), "a hidden far texel took the near plane's (green) colour"
    assert (source[hidden] != 1).all()
    # visible far texels are sampled from the photo: exactly the far colour
    assert (source[visible] == 1).all()
    np.testing.assert_array_equal(tex[visible], np.broadcast_to([220, 30, 30], tex[visible].shape))
    # the near plane is fully visible and green
    on_near = (tid >= 0) & ~far_tri[np.maximum(tid, 0)]
    assert (tex[on_near][:, 1] > 200).mean() > 0.98


def test_back_faces_are_not_sampled():
    """A plane wound the other way round faces away from the camera: its texels are filled, not sampled."""
    v, t, uv = grid_mesh(20, 20, 100, 100, 0.0, 6, (0.05, 0.05, 0.45, 0.95), flip_winding=True)
    H = W = 120
    img_v = to_image(v, H)
    photo = draw_photo(img_v, t, np.tile([0, 0, 250], (len(v), 1)), H, W, background=(200, 60, 60))
    tex, source = bake_texture(photo, img_v, t, uv, 64)
    inside = uv_layout(uv, t, 64).inside
    assert not (source[inside] == 1).any()


def test_valid_mask_excludes_removed_pixels():
    """Pixels with valid == 0 (eyes removed by `segment`) are never texture sources."""
    v, t, uv = grid_mesh(10, 10, 110, 110, 0.0, 10, (0.05, 0.05, 0.95, 0.95))
    H = W = 120
    img_v = to_image(v, H)
    photo = draw_photo(img_v, t, np.tile([200, 160, 120], (len(v), 1)), H, W, background=(200, 160, 120))
    photo[40:60, 20:50] = 0  # "removed" region painted black
    valid = np.ones((H, W), bool)
    valid[38:62, 18:52] = False
    tex, source = bake_texture(photo, img_v, t, uv, 128, valid=valid)
    inside = uv_layout(uv, t, 128).inside
    assert (tex[inside].sum(axis=1) > 0).all()
    assert np.abs(tex[inside].astype(int) - [200, 160, 120]).max() <= 2
    tex2, _ = bake_texture(photo, img_v, t, uv, 128)  # without the mask the black shows up
    assert (tex2[inside].sum(axis=1) == 0).any()


def test_real_bfm_bake_has_no_black_texels_and_a_gutter(bfm):
    """The lite BFM mean posed in a photo, re-baked at 2048: no pure-black texel on the islands, nor in
    a 4-texel gutter around them (the seed's black seams, seed bug S-20 in docs/seed_compatibility.md)."""
    import cv2

    mean, tri, uv = bfm.mean_vertices, bfm.triangles, bfm.uv
    obj, img_v, _ = posed_face(mean, yaw=25, pitch=-5)
    H, W = 440, 400
    rng = np.random.default_rng(0)
    colours = np.clip(rng.normal([190, 140, 115], 12, size=(len(mean), 3)), 1, 255)
    photo = draw_photo(img_v, tri, colours, H, W, background=(0, 0, 0))  # a BLACK background
    labels = bfm.labels
    valid = np.ones((H, W), bool)
    eyes = img_v[np.isin(labels, (1, 2))]
    x0, y0 = np.floor(eyes[:, :2].min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(eyes[:, :2].max(axis=0)).astype(int) + 2
    photo[y0:y1, x0:x1] = 0  # eyes "removed" and black
    valid[y0:y1, x0:x1] = False
    a = anonymize_face(img_v, tri, uv, photo, mean, alpha=1.0, tex_size=2048, valid=valid)
    tex = a.texture
    inside = uv_layout(uv, tri, 2048).inside
    black = tex.sum(axis=2) == 0
    assert not black[inside].any()
    ring = cv2.dilate(inside.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool) & ~inside
    assert not black[ring].any()
    assert (a.texture_source[inside] == 1).mean() > 0.5


def test_real_bfm_under_yaw_hidden_cheek_is_not_painted_with_the_nose(bfm):
    """Yaw 50: the nose hides part of the far cheek. The nose is green in the photo; the hidden cheek
    texels must not turn green (a visibility-blind bake paints most of them green)."""
    mean, tri, uv, labels = bfm.mean_vertices, bfm.triangles, bfm.uv, bfm.labels
    obj, img_v, _ = posed_face(mean, yaw=50)
    H, W = 440, 400
    colours = np.tile([200.0, 150.0, 120.0], (len(mean), 1))
    colours[labels == 5] = (0, 255, 0)
    photo = draw_photo(img_v, tri, colours, H, W)
    size = 512
    tex, source = bake_texture(photo, img_v, tri, uv, size)
    lay = uv_layout(uv, tri, size)
    tid = np.maximum(lay.tri_id, 0)
    on = lay.tri_id >= 0
    non_nose_tri = ~np.isin(labels, (5,))[tri].any(axis=1)
    xyz = np.einsum("hwk,hwkc->hwc", lay.bary, img_v[tri[tid]])
    from faceanon.raster import rasterize

    r = rasterize(img_v, tri, H, W)
    xi = np.clip(np.rint(xyz[..., 0]).astype(int), 0, W - 1)
    yi = np.clip(np.rint(xyz[..., 1]).astype(int), 0, H - 1)
    zr = float(np.ptp(img_v[:, 2]))
    behind = xyz[..., 2] < r.depth[yi, xi] - 0.05 * zr  # clearly behind whatever the photo shows there
    in_front_of_nose = r.tri_id[yi, xi] >= 0
    occluder_is_nose = np.zeros_like(on)
    occluder_is_nose[in_front_of_nose] = ~non_nose_tri[r.tri_id[yi, xi][in_front_of_nose]]
    hidden = on & non_nose_tri[tid] & behind & occluder_is_nose
    assert hidden.sum() > 200, "the test pose must hide some cheek behind the nose"
    naive = photo[yi[hidden], xi[hidden]].astype(int)
    green = lambda c: (c[:, 1] - c[:, 0]) > 60  # noqa: E731
    assert green(naive).mean() > 0.5
    assert green(tex[hidden].astype(int)).mean() < 0.02


def test_push_pull_fill_keeps_known_and_fills_within_their_range():
    from faceanon.stages.texture import push_pull_fill

    rng = np.random.default_rng(5)
    colour = rng.uniform(50, 200, size=(37, 53, 3)).astype(np.float32)
    weight = (rng.random((37, 53)) < 0.2).astype(np.float32)
    out = push_pull_fill(colour, weight)
    known = weight > 0
    np.testing.assert_array_equal(out[known], colour[known])
    lo, hi = colour[known].min(axis=0), colour[known].max(axis=0)
    assert (out[~known] >= lo - 1e-3).all() and (out[~known] <= hi + 1e-3).all()
    # a single known texel colours the whole image
    w1 = np.zeros((16, 16), np.float32)
    w1[3, 4] = 1
    c1 = np.zeros((16, 16, 3), np.float32)
    c1[3, 4] = (10, 20, 30)
    np.testing.assert_allclose(push_pull_fill(c1, w1), np.broadcast_to([10, 20, 30], (16, 16, 3)), atol=1e-3)


def test_nothing_visible_gives_a_flat_fill_not_black():
    v, t, uv = grid_mesh(10, 10, 50, 50, 0.0, 4, (0.05, 0.05, 0.95, 0.95))
    img_v = to_image(v, 60)
    photo = np.full((60, 60, 3), (180, 140, 110), np.uint8)
    photo[:5] = (10, 10, 10)
    valid = np.zeros((60, 60), bool)
    valid[:30, 55:] = True  # only background pixels are allowed
    tex, source = bake_texture(photo, img_v, t, uv, 32, valid=valid)
    assert not (source == 1).any()
    assert (tex.reshape(-1, 3) == tex[0, 0]).all() and tex[0, 0].sum() > 0
