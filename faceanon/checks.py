"""The one image-argument check of the library (kornia's habit: check at entry, name the argument).

Every public function that takes an image array calls :func:`check_image` instead of writing the
``(H, W, 3) uint8`` test by hand; the message always names the function and the argument.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_image", "DEFAULT_MAX_PIXELS"]

#: The largest input image (pixels) read by default, checked from its header before decoding
#: (``--max-pixels``).
DEFAULT_MAX_PIXELS = 60_000_000


def check_image(image, name: str, *, where: str | None = None, channels: tuple[int, ...] = (3,),
                error: type[Exception] = ValueError) -> np.ndarray:
    """``image`` as an array (no copy) if it is (H, W, C) uint8 with C in ``channels`` and H, W >= 1.

    Otherwise raises ``error`` (ValueError: a programming error; the CLI-facing callers pass
    :class:`faceanon.errors.ImageError`) with ``"<where>: <name> must be (H, W, 3) uint8, got <shape>
    <dtype>"``.
    """
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] not in channels or min(a.shape[:2]) < 1:
        others = "|".join(str(c) for c in channels if c != 3)
        wanted = "(H, W, 3)" + (f" or (H, W, {others})" if others else "")
        raise error(f"{where + ': ' if where else ''}{name} must be {wanted} uint8, got {a.shape} {a.dtype}")
    return a
