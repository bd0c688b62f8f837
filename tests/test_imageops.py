"""gaussian_blur: the sigma-independent blur equals cv2.GaussianBlur within 2 % of the range."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceanon.stages.imageops import DIRECT_SIGMA, gaussian_blur


def _scene(h=700, w=560, channels=None, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w), np.float32)
    img[:, w // 2:] = 1.0  # a step
    img[200:400, 100:260] = 0.5  # a block
    img += rng.normal(0, 0.05, img.shape).astype(np.float32)
    if channels:
        img = np.stack([img * (c + 1) / channels for c in range(channels)], axis=-1)
    if dtype == np.uint8:
        return np.clip(np.rint(img * 200), 0, 255).astype(np.uint8)
    return img


@pytest.mark.parametrize("sigma", [3.0, DIRECT_SIGMA + 0.5, 20.0, 45.0, 90.0])
@pytest.mark.parametrize("border", [cv2.BORDER_REFLECT_101, cv2.BORDER_REPLICATE])
def test_matches_opencv_for_small_and_large_sigma(sigma, border):
    img = _scene()
    ref = cv2.GaussianBlur(img, (0, 0), sigma, borderType=border)
    got = gaussian_blur(img, sigma, border=border)
    assert got.shape == img.shape and got.dtype == img.dtype
    err = np.abs(got - ref)
    assert err.max() < 0.02, err.max()  # the image spans ~[0, 1]
    if sigma <= DIRECT_SIGMA:
        np.testing.assert_array_equal(got, ref)
    # and it really blurs: the step is spread over ~sigma
    row = got[600]  # below the block
    assert row[280 - int(sigma)] < 0.35 and row[280 + int(sigma)] > 0.65


@pytest.mark.parametrize("channels", [1, 3])
def test_keeps_shape_and_dtype(channels):
    img = _scene(channels=channels if channels > 1 else None, dtype=np.uint8)
    if channels == 1:
        img = img[..., None]  # (H, W, 1): a trailing axis of size 1 survives
    got = gaussian_blur(img, 30.0)
    assert got.shape == img.shape and got.dtype == np.uint8
    ref = cv2.GaussianBlur(img[..., 0] if channels == 1 else img, (0, 0), 30.0).reshape(img.shape)
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 4  # of 200


def test_tiny_images_and_huge_sigma():
    img = _scene(5, 7)
    got = gaussian_blur(img, 500.0)
    assert got.shape == (5, 7)
    assert np.ptp(got) < 0.05  # everything averaged out
