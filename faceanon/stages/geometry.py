"""Small rigid-geometry helpers shared by the anonymize and render stages (numpy only).

* :func:`umeyama` - least-squares similarity ``Y ~ s R X + t`` between two point sets with known
  correspondences (Umeyama 1991), reflection-safe: ``R`` is always a proper rotation (det = +1),
  even when the best orthogonal matrix would be a reflection (the seed's keep-pose recipe, docs/seed_compatibility.md S-23/S-24);
* :class:`Similarity` - the result, with ``apply`` / ``inverse_apply`` and a 4x4 matrix.

Points are rows: ``X`` is (N, 3), transforms act as ``s * X @ R.T + t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Similarity:
    """``y = s * R @ x + t``: s > 0 float, R (3, 3) float64 rotation (det +1), t (3,) float64."""

    s: float
    R: np.ndarray
    t: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) -> (N, 3) float64: ``s R x + t`` for every row."""
        p = np.asarray(points, np.float64)
        return self.s * (p @ self.R.T) + self.t

    def inverse_apply(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) -> (N, 3) float64: ``R^T (y - t) / s`` for every row (the inverse map)."""
        p = np.asarray(points, np.float64)
        return ((p - self.t) @ self.R) / self.s

    def inverse(self) -> "Similarity":
        """The inverse similarity (``x = s' R' y + t'``)."""
        s = 1.0 / self.s
        R = self.R.T.copy()
        return Similarity(s, R, -s * (R @ self.t))

    def matrix(self) -> np.ndarray:
        """(4, 4) float64 homogeneous matrix (column vectors)."""
        m = np.eye(4)
        m[:3, :3] = self.s * self.R
        m[:3, 3] = self.t
        return m

    def as_tuple(self) -> tuple[float, np.ndarray, np.ndarray]:
        return self.s, self.R, self.t


def umeyama(X: np.ndarray, Y: np.ndarray, *, with_scale: bool = True, weights: np.ndarray | None = None) -> Similarity:
    """Least-squares similarity mapping ``X`` onto ``Y`` (minimises sum w_i |Y_i - (s R X_i + t)|^2).

    X, Y: (N, 3) float, corresponding rows, N >= 3 and not all collinear. ``weights``: optional
    (N,) non-negative per-point weights. With ``with_scale=False`` s is fixed to 1 (rigid).

    Reflection-safe: if the SVD's orthogonal factor has det -1 (a mirror fits better), the
    smallest singular direction is flipped so that R is a proper rotation (det R = +1).
    """
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    if X.ndim != 2 or X.shape[1] != 3:
        raise ValueError(f"X must be (N, 3), got {X.shape}")
    if Y.shape != X.shape:
        raise ValueError(f"Y must have the shape of X {X.shape}, got {Y.shape}")
    n = X.shape[0]
    if n < 3:
        raise ValueError(f"umeyama needs at least 3 points, got {n}")
    if weights is None:
        w = np.full(n, 1.0 / n)
    else:
        w = np.asarray(weights, np.float64).reshape(-1)
        if w.shape != (n,) or (w < 0).any() or w.sum() <= 0:
            raise ValueError("weights must be (N,) non-negative with a positive sum")
        w = w / w.sum()
    mu_x = w @ X
    mu_y = w @ Y
    Xc = X - mu_x
    Yc = Y - mu_y
    C = (Yc * w[:, None]).T @ Xc  # (3, 3) cross-covariance, sum w y x^T
    U, D, Vt = np.linalg.svd(C)
    S = np.ones(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2] = -1.0
    R = (U * S) @ Vt
    var_x = float(w @ np.einsum("ij,ij->i", Xc, Xc))
    if var_x <= 0 or not np.isfinite(var_x):
        raise ValueError("X is degenerate (all points identical)")
    s = float((D * S).sum() / var_x) if with_scale else 1.0
    if s <= 0 or not np.isfinite(s):
        raise ValueError("degenerate point sets: no similarity with a positive scale")
    t = mu_y - s * (R @ mu_x)
    return Similarity(s, R, t)


def rotation_matrix(yaw_deg: float = 0.0, pitch_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """(3, 3) rotation in a y-up, z-toward-viewer frame: ``Rz(roll) @ Ry(yaw) @ Rx(pitch)``.

    Used by tests and benchmarks to pose a canonical face; positive yaw turns +z toward +x.
    """
    y, p, r = np.deg2rad([yaw_deg, pitch_deg, roll_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def mask_window(mask: np.ndarray, pad: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the bounding box of a non-empty (H, W) bool ``mask`` grown by ``pad`` px on
    every side and clipped to the image, for work that only needs the neighbourhood of the mask."""
    h, w = mask.shape
    ys = np.nonzero(mask.any(axis=1))[0]
    xs = np.nonzero(mask.any(axis=0))[0]
    return (max(0, int(ys[0]) - pad), min(h, int(ys[-1]) + pad + 1),
            max(0, int(xs[0]) - pad), min(w, int(xs[-1]) + pad + 1))
