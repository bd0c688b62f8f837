"""The audit's pose-era pixel figures on synthetic images with a known answer (numpy only, no dlib).

* moved-eye residual: a composite that is the original shifted within / beyond the search radius;
* skin mean-colour ΔE00: a uniform colour change of known ΔE, and zero-mean noise that averages out;
* far pixels changed: a known number of far pixels changed, checked against a brute-force far mask;
* face box, face size and the eraser's painted rectangle.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceanon.audit import metrics as M
from faceanon.audit.color import delta_e_srgb


def noise_image(h=240, w=320, seed=0) -> np.ndarray:
    """Independent random colours per pixel: a shifted copy matches itself only at its own shift."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def eye_labels(h=240, w=320) -> np.ndarray:
    lab = np.zeros((h, w), np.uint8)
    lab[110:122, 120:150] = 1  # image-left eye, 360 px
    lab[110:122, 170:200] = 2  # image-right eye, 360 px
    lab[140:150, 140:180] = 6  # a lip, not an eye
    return lab


def shifted(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """composite[y + dy, x + dx] = img[y, x] (wrapping; the eyes are far from the borders)."""
    return np.roll(img, (dy, dx), axis=(0, 1))


# -- moved-eye residual -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dx,dy", [(6, -4), (0, 15), (-11, -11), (3, 0)])
def test_a_shift_within_the_radius_is_found_and_counts_fully(dx, dy):
    img, lab = noise_image(), eye_labels()
    r = M.moved_residual(img, shifted(img, dx, dy), lab, radius=16)
    assert r.pixels == 720
    assert r.moved == 1.0
    assert r.in_place < 0.05
    assert r.shifts == {1: (dx, dy), 2: (dx, dy)}
    assert r.chance < 0.05  # nothing of the eye lies just beyond the radius


def test_a_shift_beyond_the_radius_leaves_about_nothing():
    img, lab = noise_image(), eye_labels()
    r = M.moved_residual(img, shifted(img, 20, 0), lab, radius=16)  # 20 > 16, but <= 16 * sqrt(2)
    assert r.moved < 0.05 and r.in_place < 0.05
    assert r.chance == 1.0  # the ring beyond the radius holds the whole eye: chance sees it


def test_each_eye_gets_its_own_shift_and_a_half_kept_eye_counts_about_half():
    img, lab = noise_image(), eye_labels()
    comp = noise_image(seed=1)
    ys, xs = np.nonzero(lab == 1)
    comp[ys + 2, xs + 5] = img[ys, xs]  # eye 1 moved by (5, 2)
    ys, xs = np.nonzero(lab == 2)
    keep = xs < 185  # the left half of eye 2 moved by (-7, 3), the rest replaced
    comp[ys[keep] + 3, xs[keep] - 7] = img[ys[keep], xs[keep]]
    r = M.moved_residual(img, comp, lab, radius=10)
    assert r.shifts == {1: (5, 2), 2: (-7, 3)}
    # 15 of eye 2's 30 columns were kept; the last kept column borders replaced pixels, so it does
    # not survive with its 3 x 3 neighbourhood: 14 columns x 12 rows
    assert r.moved == pytest.approx((360 + 14 * 12) / 720)


def test_untouched_eyes_stay_in_place_and_moved_is_never_below_in_place():
    img, lab = noise_image(), eye_labels()
    r = M.moved_residual(img, img.copy(), lab, radius=12)
    assert r.in_place == 1.0 and r.moved == 1.0 and r.shifts == {1: (0, 0), 2: (0, 0)}
    rng = np.random.default_rng(3)
    for _ in range(5):
        comp = np.clip(img.astype(int) + rng.integers(-3, 4, img.shape), 0, 255).astype(np.uint8)
        r = M.moved_residual(img, comp, lab, radius=6)
        assert r.moved >= r.in_place


def test_shifted_positions_outside_the_image_do_not_survive():
    img = noise_image(60, 60)
    lab = np.zeros((60, 60), np.uint8)
    lab[0:6, 0:10] = 1  # an eye on the top border
    comp = noise_image(60, 60, seed=5)
    comp[0:3, 0:10] = img[3:6, 0:10]  # its lower half moved up by 3 px; the upper half left the image
    r = M.moved_residual(img, comp, lab, radius=5)
    assert r.shifts[1] == (0, -3)
    # rows 3-5 match, rows 0-2 left the image; row 3 borders row 2 (not matching): rows 4-5 survive
    assert r.moved == pytest.approx(20 / 60)


def test_a_lone_matching_pixel_does_not_survive():
    """Coincidental single-pixel matches (dark or smooth surroundings) are not eye structure."""
    img = noise_image(40, 40)
    lab = np.zeros((40, 40), np.uint8)
    lab[10:20, 10:20] = 1
    comp = noise_image(40, 40, seed=9)
    comp[12, 12] = img[12, 12]
    comp[15:18, 15:18] = img[15:18, 15:18]  # one 3 x 3 patch: only its centre has a whole matching neighbourhood
    r = M.moved_residual(img, comp, lab, radius=0)
    assert r.in_place == pytest.approx(1 / 100)


def _brute_force_best(img, comp, lab, radius, tolerance=2.0):
    """Exact max over every shift of the disc, per label (the definition, without the search shortcut)."""
    from faceanon.audit.color import ciede2000, srgb_to_lab

    h, w = lab.shape
    total = best_sum = 0
    for v in (1, 2):
        ys, xs = np.nonzero(lab == v)
        lo = srgb_to_lab(img[ys, xs])
        best = 0
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                if dx * dx + dy * dy > radius * radius:
                    continue
                yy, xx = ys + dy, xs + dx
                ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
                match = np.zeros(ys.size, bool)
                match[ok] = ciede2000(lo[ok], srgb_to_lab(comp[yy[ok], xx[ok]])) < tolerance
                # survives: it and every region pixel of its 3 x 3 neighbourhood match
                good = {(int(y), int(x)) for y, x, m in zip(ys, xs, match) if m}
                region = set(zip(ys.tolist(), xs.tolist()))
                n = sum(1 for y, x in good
                        if all((y + a, x + b) in good or (y + a, x + b) not in region
                               for a in (-1, 0, 1) for b in (-1, 0, 1)))
                best = max(best, n)
        total += ys.size
        best_sum += best
    return best_sum / total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_search_finds_the_exact_maximum_on_smooth_images(seed):
    # smooth, low-contrast content with many partial matches: the case where a shortcut could miss the max
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:80, 0:90].astype(np.float64)
    base = np.stack([120 + 20 * np.sin(xx / 7 + seed), 100 + 15 * np.cos(yy / 5), 90 + 10 * np.sin((xx + yy) / 9)], -1)
    img = np.clip(base + rng.normal(0, 1.5, base.shape), 0, 255).astype(np.uint8)
    comp = np.clip(shifted(base, 3, -2) + rng.normal(0, 2.5, base.shape), 0, 255).astype(np.uint8)
    lab = np.zeros((80, 90), np.uint8)
    lab[35:45, 25:40] = 1
    lab[35:45, 50:65] = 2
    r = M.moved_residual(img, comp, lab, radius=7)
    assert r.moved == pytest.approx(_brute_force_best(img, comp, lab, 7))


def test_moved_residual_checks_its_arguments():
    img, lab = noise_image(), eye_labels()
    with pytest.raises(ValueError, match="share"):
        M.moved_residual(img, img[:-1], lab, 5)
    empty = M.moved_residual(img, img, np.zeros_like(lab), 5)
    assert empty.pixels == 0 and math.isnan(empty.moved) and math.isnan(empty.chance)
    assert math.isnan(M.moved_residual(img, img, lab, 0.5).chance)  # radius < 1: no ring


# -- skin mean colour ---------------------------------------------------------------------------------------
def test_a_uniform_skin_colour_change_gives_its_delta_e():
    a, b = np.array([200, 150, 120], np.uint8), np.array([190, 152, 118], np.uint8)
    lab = np.zeros((50, 60), np.uint8)
    lab[10:40, 10:50] = 8
    lab[20:25, 20:30] = 1  # an eye inside the face: not skin
    orig = np.full((50, 60, 3), a, np.uint8)
    comp = np.full((50, 60, 3), b, np.uint8)
    comp[lab == 1] = (0, 0, 255)  # changing non-skin pixels does not matter
    comp[lab == 0] = (255, 255, 255)
    n, de = M.mean_colour_delta_e(orig, comp, lab)
    assert n == 30 * 40 - 5 * 10
    assert de == pytest.approx(float(delta_e_srgb(a, b)), abs=1e-9)
    assert 1.0 < de < 5.0


def test_zero_mean_noise_averages_out_in_the_mean_colour_but_not_per_pixel():
    rng = np.random.default_rng(0)
    lab = np.full((100, 100), 8, np.uint8)
    orig = np.full((100, 100, 3), (180, 140, 120), np.uint8)
    noise = rng.choice([-8, 8], size=(100, 100, 1))  # the same sign on the three channels: a luminance flicker
    comp = (orig.astype(int) + noise).astype(np.uint8)
    _n, de_mean_colour = M.mean_colour_delta_e(orig, comp, lab)
    per_pixel = float(delta_e_srgb(orig, comp).mean())
    assert per_pixel > 2.0
    assert de_mean_colour < 0.3


def test_no_skin_gives_nan():
    img = noise_image(20, 20)
    n, de = M.mean_colour_delta_e(img, img, np.zeros((20, 20), np.uint8))
    assert n == 0 and math.isnan(de)


# -- far pixels -----------------------------------------------------------------------------------------------
def _far_brute(shape, boxes, far=0.5):
    h, w = shape
    out = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            ok = True
            for b in boxes:
                dx = max(b[0] - x, 0.0, x - b[2])
                dy = max(b[1] - y, 0.0, y - b[3])
                if math.hypot(dx, dy) <= far * M.face_size(b):
                    ok = False
            out[y, x] = ok
    return out


def test_far_mask_matches_its_definition():
    boxes = [np.array([40.0, 30.0, 80.0, 90.0]), np.array([100.5, 10.2, 120.0, 30.0])]
    got = M.far_mask((100, 150), boxes)
    assert np.array_equal(got, _far_brute((100, 150), boxes))
    assert M.far_mask((5, 5), []).all()


def test_far_pixels_changed_is_the_known_fraction():
    img = noise_image(200, 300)
    box = np.array([120.0, 60.0, 170.0, 110.0])  # face size 50: near = within 25 px of the box
    far = _far_brute((200, 300), [box])
    n_far = int(far.sum())
    comp = img.copy()
    comp[0:20, 0:30] = 255 - comp[0:20, 0:30]  # 600 far pixels, strongly changed
    comp[70:100, 130:160] = 0  # inside the face: not counted
    comp[150:200, 250:300] = np.clip(comp[150:200, 250:300].astype(int) + 1, 0, 255)  # ΔE00 < 2: not "changed"
    assert far[0:20, 0:30].all() and not far[70:100, 130:160].any()
    n, share = M.far_pixels_changed(img, comp, [box])
    inverted = delta_e_srgb(img[0:20, 0:30], comp[0:20, 0:30]) >= 2.0
    assert inverted.all()  # every inverted pixel is a visible change
    assert n == n_far
    assert share == pytest.approx(600 / n_far)


def test_far_pixels_of_an_identical_image_and_of_no_far_pixel():
    img = noise_image(50, 50)
    box = np.array([20.0, 20.0, 30.0, 30.0])
    n_far = int(M.far_mask((50, 50), [box]).sum())
    assert n_far > 1000
    assert M.far_pixels_changed(img, img.copy(), [box]) == (n_far, 0.0)
    n, share = M.far_pixels_changed(img, img.copy(), [np.array([0.0, 0.0, 49.0, 49.0])])
    assert n == 0 and math.isnan(share)


# -- face box and eraser ----------------------------------------------------------------------------------
def test_face_box_is_the_union_of_detection_and_landmarks():
    lm = np.array([[10.0, 20.0], [50.0, 80.0]] + [[30.0, 40.0]] * 66)
    assert np.array_equal(M.face_box(np.array([15.0, 10.0, 45.0, 70.0]), lm), [10, 10, 50, 80])
    assert np.array_equal(M.face_box(None, lm), [10, 20, 50, 80])
    assert np.array_equal(M.face_box(np.array([1.0, 2.0, 3.0, 4.0]), None), [1, 2, 3, 4])
    assert M.face_box(np.array([np.nan, 0, 1, 1]), None) is None
    assert M.face_box(None, None) is None
    assert M.face_size(np.array([0.0, 0.0, 40.0, 90.0])) == pytest.approx(60.0)


def test_the_eraser_paints_the_grown_face_box_grey_and_nothing_else():
    img = noise_image(100, 120)
    box = np.array([40.0, 30.0, 80.0, 70.0])  # size 40, grown by 2 px per side
    assert M.eraser_pixels(box, img.shape[:2]) == (38, 28, 83, 73)
    er = M.erase_face(img, box)
    assert (er[28:73, 38:83] == 128).all()
    outside = np.ones((100, 120), bool)
    outside[28:73, 38:83] = False
    assert np.array_equal(er[outside], img[outside])
    assert M.eraser_pixels(np.array([-5.0, -5.0, 200.0, 200.0]), (100, 120)) == (0, 0, 120, 100)  # clipped
