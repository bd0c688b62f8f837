"""faceanon.checks.check_image: the one image-argument check (message names function and argument)."""

from __future__ import annotations

import numpy as np
import pytest

from faceanon.checks import check_image
from faceanon.errors import ImageError
from faceanon.stages.composite import composite_image
from faceanon.stages.segment import segment_image


@pytest.mark.parametrize("bad", [np.zeros((4, 5, 3), np.float32), np.zeros((4, 5), np.uint8),
                                 np.zeros((4, 5, 4), np.uint8), np.zeros((0, 5, 3), np.uint8), None, "photo.jpg"])
def test_rejects_anything_but_a_nonempty_hw3_uint8_array(bad):
    with pytest.raises(ValueError, match=r"^warp: base must be \(H, W, 3\) uint8, got "):
        check_image(bad, "base", where="warp")


def test_accepts_without_copying_and_honours_channels_and_error_class():
    a = np.zeros((4, 5, 3), np.uint8)
    assert check_image(a, "a") is a
    assert check_image(np.zeros((2, 2, 4), np.uint8), "a", channels=(3, 4)).shape == (2, 2, 4)
    with pytest.raises(ImageError, match=r"^a must be \(H, W, 3\) or \(H, W, 4\) uint8, got \(2, 2, 2\) uint8$"):
        check_image(np.zeros((2, 2, 2), np.uint8), "a", channels=(3, 4), error=ImageError)


def test_stage_functions_name_their_argument():
    with pytest.raises(ValueError, match="^segment_image: rgb must be"):
        segment_image(np.zeros((8, 8), np.uint8), [])
    with pytest.raises(ValueError, match="^composite_image: base_rgb must be"):
        composite_image(np.zeros((8, 8, 3), np.int16), [])
