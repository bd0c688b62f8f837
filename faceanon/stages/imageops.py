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


_LAPLACE = np.array([[0.0, 0.25, 0.0], [0.25, 0.0, 0.25], [0.0, 0.25, 0.0]], np.float32)


def harmonic_fill(values: np.ndarray, known: np.ndarray, sweeps: int = 40) -> np.ndarray:
    """(h, w, C) float32: ``values`` (h, w, C) kept on the ``known`` (h, w) bool cells and a harmonic
    (Laplace) interpolation everywhere else - the smoothest surface through the known values, with no
    step or kink next to them.

    A multigrid cascade: the half-size problem's solution (down to 16 px) initialises ``sweeps`` Jacobi
    sweeps at each finer level, so the cost is O(pixels x sweeps) whatever the size of the holes.
    Used for the warp's continued displacement (faceanon/stages/warp.py) and the skin fill of the
    removed regions (faceanon/stages/segment.py).
    """
    values = np.asarray(values, np.float32)
    if values.ndim == 2:
        return harmonic_fill(values[..., None], known, sweeps)[..., 0]
    h, w = known.shape
    if not known.any():
        return np.zeros_like(values)
    if max(h, w) > 16:
        sw, sh = max(1, (w + 1) // 2), max(1, (h + 1) // 2)
        kw = cv2.resize(known.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA)
        cv = cv2.resize(values * known[..., None], (sw, sh), interpolation=cv2.INTER_AREA)
        cv = cv.reshape(sh, sw, -1) / np.maximum(kw, 1e-6)[..., None]
        coarse = harmonic_fill(cv.astype(np.float32), kw > 1e-6, sweeps)
        init = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
    else:
        init = np.broadcast_to(values[known].mean(axis=0), values.shape).copy()
    x = np.where(known[..., None], values, init).astype(np.float32)
    free = ~known
    if not free.any():
        return x
    # the sweeps only touch the unknown cells' bounding box (plus the ring of known cells they read)
    ys, xs = np.nonzero(free.any(axis=1))[0], np.nonzero(free.any(axis=0))[0]
    y0, y1 = max(0, ys[0] - 1), min(h, ys[-1] + 2)
    x0, x1 = max(0, xs[0] - 1), min(w, xs[-1] + 2)
    sub = np.ascontiguousarray(x[y0:y1, x0:x1])
    upd = np.broadcast_to(free[y0:y1, x0:x1, None], sub.shape)
    for _ in range(int(sweeps)):
        avg = cv2.filter2D(sub, -1, _LAPLACE, borderType=cv2.BORDER_REPLICATE).reshape(sub.shape)
        np.copyto(sub, avg, where=upd)
    x[y0:y1, x0:x1] = sub
    return x
