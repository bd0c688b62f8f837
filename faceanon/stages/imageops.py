"""Image operations shared by the stages.

:func:`gaussian_blur` - a Gaussian blur whose cost does not grow with sigma. The stages blur with
sigmas proportional to the face size (a fraction of the inter-ocular distance or of the feather
width); on a 24 MP portrait that is sigma ~ 30-180 px, and ``cv2.GaussianBlur`` then runs a
~6 sigma-wide kernel over every pixel (measured: 72 s for the four blurs of one segmentation).
Above :data:`DIRECT_SIGMA` the image is area-downsampled by ``d ~ sigma / 4``, blurred there and
bilinearly upsampled; the three steps' variances add up to sigma² (area average: d²/12, bilinear
upsampling: d²/6), so the result is the requested Gaussian to within 2 % of the image's range
(~1 % away from the borders) for these smooth, wide blurs.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

DIRECT_SIGMA = 8.0  # up to this sigma (px) cv2.GaussianBlur runs directly
_SMALL_SIGMA = 4.0  # sigma at the reduced scale


def gaussian_blur(image: np.ndarray, sigma: float, *, border: int = cv2.BORDER_REFLECT_101) -> np.ndarray:
    """Gaussian blur of ``image`` ((H, W) or (H, W, C), uint8 or float32) with standard deviation
    ``sigma`` px; same shape and dtype. ``border``: OpenCV border mode of the blur itself."""
    sigma = float(sigma)
    shape = np.shape(image)
    if image.ndim == 3 and shape[2] == 1:  # OpenCV wants (H, W) for one channel
        image = image[..., 0]
    if sigma <= DIRECT_SIGMA:
        return cv2.GaussianBlur(image, (0, 0), max(sigma, 1e-3), borderType=border).reshape(shape)
    h, w = image.shape[:2]
    d = max(2, int(sigma / _SMALL_SIGMA))
    sw, sh = max(1, math.ceil(w / d)), max(1, math.ceil(h / d))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    # the down/up sampling already contributes a variance of ~d²/4 (in full-scale px)
    rest = math.sqrt(max(sigma * sigma - d * d / 4.0, 0.25 * d * d)) / d
    small = cv2.GaussianBlur(small, (0, 0), rest, borderType=border)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).reshape(shape)
