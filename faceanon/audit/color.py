"""Colour science for the audit: sRGB -> CIELAB (D65) and the CIEDE2000 colour difference.

Everything is plain numpy and vectorised over any leading shape.

* :func:`srgb_to_lab` - IEC 61966-2-1 sRGB (8-bit or float in [0, 1]) -> linear RGB -> CIE XYZ (D65,
  Y of white = 1) -> CIELAB with the D65 reference white.
* :func:`ciede2000` - the CIEDE2000 difference ΔE00 of two Lab arrays, written after G. Sharma, W. Wu and
  E. N. Dalal, "The CIEDE2000 color-difference formula: implementation notes, supplementary test data,
  and mathematical observations", Color Res. Appl. 30(1), 2005 (equations 1-22, parametric factors
  kL = kC = kH = 1 by default). It reproduces the paper's 34 test pairs to 1e-4
  (``tests/test_audit_color.py``).
"""

from __future__ import annotations

import numpy as np

# sRGB (linear) -> XYZ, D65, IEC 61966-2-1.
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=np.float64,
)
# D65 reference white, Y = 1 (the XYZ of sRGB (1, 1, 1) under the matrix above).
D65_WHITE = _RGB_TO_XYZ.sum(axis=1)

_EPS = 216.0 / 24389.0  # (6/29)^3
_KAPPA = 24389.0 / 27.0


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB companding -> linear light.

    rgb: (..., 3) uint8 (0..255) or float in [0, 1]. Returns float64 of the same shape.
    """
    rgb = np.asarray(rgb)
    if rgb.shape[-1:] != (3,):
        raise ValueError(f"rgb: expected shape (..., 3), got {rgb.shape}")
    if rgb.dtype == np.uint8:
        # a 256-entry table: the same values as the formula, 4.4x faster (0.010 s vs 0.043 s per Mpx; the audit's
        # far-pixel check converts every pixel)
        return _LINEAR_U8[rgb]
    return _linear_formula(rgb.astype(np.float64))


def _linear_formula(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


_LINEAR_U8 = _linear_formula(np.arange(256, dtype=np.float64) / 255.0)


def linear_to_xyz(lin: np.ndarray) -> np.ndarray:
    """Linear sRGB (..., 3) -> CIE XYZ (..., 3), D65, Y(white) = 1."""
    return np.asarray(lin, dtype=np.float64) @ _RGB_TO_XYZ.T


def xyz_to_lab(xyz: np.ndarray, white: np.ndarray = D65_WHITE) -> np.ndarray:
    """CIE XYZ (..., 3) -> CIELAB (..., 3) relative to ``white`` (default D65)."""
    t = np.asarray(xyz, dtype=np.float64) / np.asarray(white, dtype=np.float64)
    f = np.where(t > _EPS, np.cbrt(t), (_KAPPA * t + 16.0) / 116.0)
    L = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3) uint8 or float [0, 1] -> CIELAB (..., 3) float64 (D65)."""
    return xyz_to_lab(linear_to_xyz(srgb_to_linear(rgb)))


def ciede2000(lab1: np.ndarray, lab2: np.ndarray, kL: float = 1.0, kC: float = 1.0, kH: float = 1.0) -> np.ndarray:
    """CIEDE2000 colour difference ΔE00 between two CIELAB arrays (Sharma, Wu & Dalal 2005).

    lab1, lab2: (..., 3) float arrays (L*, a*, b*), broadcastable against each other.
    Returns float64 (...) ΔE00 >= 0. Symmetric in its two arguments.
    """
    lab1 = np.asarray(lab1, dtype=np.float64)
    lab2 = np.asarray(lab2, dtype=np.float64)
    if lab1.shape[-1:] != (3,):
        raise ValueError(f"lab1: expected shape (..., 3), got {lab1.shape}")
    if lab2.shape[-1:] != (3,):
        raise ValueError(f"lab2: expected shape (..., 3), got {lab2.shape}")
    L1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    L2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]

    # (2)-(6): C*, mean C*, G, a', C', h'
    C1 = np.hypot(a1, b1)
    C2 = np.hypot(a2, b2)
    Cbar = (C1 + C2) / 2.0
    Cbar7 = Cbar**7
    G = 0.5 * (1.0 - np.sqrt(Cbar7 / (Cbar7 + 25.0**7)))
    a1p = (1.0 + G) * a1
    a2p = (1.0 + G) * a2
    C1p = np.hypot(a1p, b1)
    C2p = np.hypot(a2p, b2)
    # h' in degrees [0, 360); 0 when a' = b' = 0 (eq. 7)
    h1p = np.where((a1p == 0) & (b1 == 0), 0.0, np.degrees(np.arctan2(b1, a1p)) % 360.0)
    h2p = np.where((a2p == 0) & (b2 == 0), 0.0, np.degrees(np.arctan2(b2, a2p)) % 360.0)

    # (8)-(10): ΔL', ΔC', Δh', ΔH'
    dLp = L2 - L1
    dCp = C2p - C1p
    prod = C1p * C2p
    dh = h2p - h1p
    dhp = np.where(dh > 180.0, dh - 360.0, np.where(dh < -180.0, dh + 360.0, dh))
    dhp = np.where(prod == 0, 0.0, dhp)
    dHp = 2.0 * np.sqrt(prod) * np.sin(np.radians(dhp) / 2.0)

    # (12)-(14): means
    Lbarp = (L1 + L2) / 2.0
    Cbarp = (C1p + C2p) / 2.0
    hsum = h1p + h2p
    habs = np.abs(h1p - h2p)
    hbarp = np.where(
        prod == 0,
        hsum,
        np.where(habs <= 180.0, hsum / 2.0, np.where(hsum < 360.0, (hsum + 360.0) / 2.0, (hsum - 360.0) / 2.0)),
    )

    # (15)-(22): weighting functions and the rotation term
    T = (
        1.0
        - 0.17 * np.cos(np.radians(hbarp - 30.0))
        + 0.24 * np.cos(np.radians(2.0 * hbarp))
        + 0.32 * np.cos(np.radians(3.0 * hbarp + 6.0))
        - 0.20 * np.cos(np.radians(4.0 * hbarp - 63.0))
    )
    dtheta = 30.0 * np.exp(-(((hbarp - 275.0) / 25.0) ** 2))
    Cbarp7 = Cbarp**7
    RC = 2.0 * np.sqrt(Cbarp7 / (Cbarp7 + 25.0**7))
    Lm = (Lbarp - 50.0) ** 2
    SL = 1.0 + 0.015 * Lm / np.sqrt(20.0 + Lm)
    SC = 1.0 + 0.045 * Cbarp
    SH = 1.0 + 0.015 * Cbarp * T
    RT = -np.sin(np.radians(2.0 * dtheta)) * RC

    tL = dLp / (kL * SL)
    tC = dCp / (kC * SC)
    tH = dHp / (kH * SH)
    return np.sqrt(tL**2 + tC**2 + tH**2 + RT * tC * tH)


def delta_e_srgb(rgb1: np.ndarray, rgb2: np.ndarray) -> np.ndarray:
    """ΔE00 between two sRGB arrays (..., 3) (uint8 or float [0, 1])."""
    return ciede2000(srgb_to_lab(rgb1), srgb_to_lab(rgb2))
