"""The no-neck BFM of 3DDFA_V2, rebuilt from its public sources and cached as one derived ``.npz``.

Recipe: docs/lite_model.md, section 3.2 (``bfm_noneck_v3.pkl`` itself is not distributed). The first use
assembles the model from ``bfm/*.npy``, ``3ddfa_v2/indices.npy``, ``3ddfa_v2/tri.pkl`` and
``3ddfa_v2/BFM_UV.mat``, computes the per-vertex part labels (:mod:`faceanon.models.lite_labels`)
and writes ``bfm_noneck_<key>.npz`` into the cache directory, where ``<key>`` is a short hash of
the sources' sha256 values and of the derivation's version: a changed source file (or recipe)
gives a new name and a rebuild. The file is written atomically (temp file + ``os.replace``).

Downloaded pickles are never read with plain ``pickle.load``: :func:`safe_load_pickle` only
reconstructs numpy arrays.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path

import numpy as np

from faceanon.errors import AssetError
from faceanon.assets.download import sha256_file
from faceanon.io.atomic import atomic_save_npz
from faceanon.io.safe_pickle import safe_load_pickle
from faceanon.models import lite_labels

#: bump when the derived file's content or layout changes
FORMAT_VERSION = 1
CACHE_PREFIX = "bfm_noneck_"
N_VERTICES = 38365
N_FULL = 53215
N_TRIANGLES = 76073

# ----------------------------------------------------------------------------------------------
# safe pickle reading


# the numpy-only unpickler lives in faceanon.io.safe_pickle (shared with the 3DDFA-V3 face model)


def load_param_stats(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``3ddfa_v2/param_mean_std_62d_120x120.pkl`` -> (mean (62,), std (62,)) float32."""
    obj = safe_load_pickle(path)
    try:
        mean = np.asarray(obj["mean"], dtype=np.float32).reshape(-1)
        std = np.asarray(obj["std"], dtype=np.float32).reshape(-1)
    except (KeyError, TypeError, IndexError) as exc:
        raise AssetError(f"{path}: expected a dict with 'mean' and 'std'") from exc
    if mean.shape != (62,) or std.shape != (62,):
        raise AssetError(f"{path}: expected mean/std of shape (62,), got {mean.shape}/{std.shape}")
    return mean, std


# ----------------------------------------------------------------------------------------------
# sources and the derived file


@dataclass(frozen=True)
class BFMSources:
    """Paths of the files the no-neck BFM is assembled from."""

    u_shp: Path
    u_exp: Path
    w_shp: Path
    w_exp: Path
    keypoints: Path
    indices: Path
    tri: Path
    uv: Path

    #: asset names (store / mirror relative paths) of each field
    NAMES = {
        "u_shp": "bfm/u_shp.npy",
        "u_exp": "bfm/u_exp.npy",
        "w_shp": "bfm/w_shp_sim.npy",
        "w_exp": "bfm/w_exp_sim.npy",
        "keypoints": "bfm/keypoints_sim.npy",
        "indices": "3ddfa_v2/indices.npy",
        "tri": "3ddfa_v2/tri.pkl",
        "uv": "3ddfa_v2/BFM_UV.mat",
    }

    @classmethod
    def from_root(cls, root: str | Path) -> "BFMSources":
        """Sources laid out as in the asset store/mirror below ``root``."""
        root = Path(root)
        return cls(**{k: root / v for k, v in cls.NAMES.items()})

    @classmethod
    def from_resolver(cls, resolve) -> "BFMSources":
        """Sources from a callable mapping an asset name (e.g. ``"bfm/u_shp.npy"``) to a Path."""
        return cls(**{k: Path(resolve(v)) for k, v in cls.NAMES.items()})

    def items(self):
        return [(f.name, Path(getattr(self, f.name))) for f in fields(self)]


def cache_key(sources: BFMSources, source_sha256: dict[str, str | None] | None = None) -> str:
    """Short hash of the sources' sha256 values (sorted by role) and the derivation versions.

    ``source_sha256`` may give already verified hashes by role (e.g. from the asset store, which
    checked the files against its manifest); the other files are hashed here (~50 ms in all).
    """
    known = source_sha256 or {}
    try:
        hashes = {name: known.get(name) or sha256_file(p) for name, p in sources.items()}
    except FileNotFoundError as exc:
        raise AssetError(f"BFM source file not found: {exc.filename}",
                         hint="run `faceanon assets download`") from exc
    blob = json.dumps({"sources": dict(sorted(hashes.items())), "format": FORMAT_VERSION,
                       "labels": lite_labels.LABELS_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _load_npy(path: Path, dtype, shape: tuple | None = None) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError as exc:
        raise AssetError(f"BFM source file not found: {path}", hint="run `faceanon assets download`") from exc
    except ValueError as exc:
        raise AssetError(f"cannot read {path}: {exc}") from exc
    if shape is not None and arr.shape != shape:
        raise AssetError(f"{path}: expected shape {shape}, got {arr.shape}")
    return arr.astype(dtype, copy=False)


def build_arrays(sources: BFMSources) -> dict[str, np.ndarray]:
    """Assemble the no-neck model (docs/lite_model.md, section 3.2) + UVs + part labels. Slow (~1 s): cached."""
    from scipy.io import loadmat  # only needed for a rebuild

    n3 = 3 * N_FULL
    idx = _load_npy(sources.indices, np.int64)
    if idx.ndim != 1 or idx.size != N_VERTICES:
        raise AssetError(f"{sources.indices}: expected {N_VERTICES} vertex ids, got shape {idx.shape}")
    u_full = (_load_npy(sources.u_shp, np.float32, (n3, 1)) + _load_npy(sources.u_exp, np.float32, (n3, 1)))
    w_shp = _load_npy(sources.w_shp, np.float32, (n3, 40)).reshape(N_FULL, 3, 40)[idx].reshape(-1, 40)
    w_exp = _load_npy(sources.w_exp, np.float32, (n3, 10)).reshape(N_FULL, 3, 10)[idx].reshape(-1, 10)
    u = u_full.reshape(N_FULL, 3)[idx].reshape(-1)
    kp_flat = _load_npy(sources.keypoints, np.int64, (204,))
    pos = np.full(N_FULL, -1, np.int64)
    pos[idx] = np.arange(idx.size)
    kp68 = pos[kp_flat[0::3] // 3]
    if (kp68 < 0).any():
        raise AssetError(f"{sources.keypoints}: landmark vertices missing from {sources.indices}")

    tri = safe_load_pickle(sources.tri)
    if not isinstance(tri, np.ndarray) or tri.shape != (3, N_TRIANGLES):
        raise AssetError(f"{sources.tri}: expected a (3, {N_TRIANGLES}) array, got "
                         f"{getattr(tri, 'shape', type(tri).__name__)}")
    tri = np.ascontiguousarray(tri.T, dtype=np.int32)
    if tri.min() < 0 or tri.max() >= N_VERTICES:
        raise AssetError(f"{sources.tri}: vertex index out of range")

    try:
        uv_full = loadmat(str(sources.uv))["UV"]
    except (OSError, KeyError, ValueError) as exc:
        raise AssetError(f"cannot read UVs from {sources.uv}: {exc}") from exc
    if uv_full.shape != (N_FULL, 2):
        raise AssetError(f"{sources.uv}: expected UV of shape ({N_FULL}, 2), got {uv_full.shape}")
    uv = uv_full[idx].astype(np.float32)

    labels = lite_labels.compute_vertex_labels(u.reshape(-1, 3), kp68)
    return {"u": u, "w_shp": w_shp, "w_exp": w_exp, "kp68": kp68, "tri": tri, "uv": uv,
            "labels": labels}


_KEYS = {"u": (3 * N_VERTICES,), "w_shp": (3 * N_VERTICES, 40), "w_exp": (3 * N_VERTICES, 10),
         "kp68": (68,), "tri": (N_TRIANGLES, 3), "uv": (N_VERTICES, 2), "labels": (N_VERTICES,)}


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in _KEYS}
    except (OSError, KeyError, ValueError, EOFError):
        return None
    if any(arrays[k].shape != s for k, s in _KEYS.items()):
        return None
    return arrays


class BFMModel:
    """The no-neck BFM (N = 38365 vertices, M = 76073 triangles), model units, y up, z to viewer.

    Attributes (read-only numpy arrays):
        u:      (3N,) float32 interleaved mean shape incl. the mean expression (u_shp + u_exp)
        w_shp:  (3N, 40) float32 shape basis;  w_exp: (3N, 10) float32 expression basis
        kp68:   (68,) int64 no-neck vertex id of each iBUG-68 landmark
        tri:    (M, 3) int32 triangles as in tri.pkl (image-space front faces have POSITIVE signed
                area, docs/lite_model.md, section 3.5); :attr:`triangles` is the project (reversed) winding
        uv:     (N, 2) float32 in [0, 1], u right, v up
        labels: (N,) uint8 per-vertex part labels (faceanon.types)
        path:   the derived .npz it was loaded from (None when built in memory)
    """

    def __init__(self, arrays: dict[str, np.ndarray], path: Path | None = None) -> None:
        self.u = np.ascontiguousarray(arrays["u"], np.float32)
        self.w_shp = np.ascontiguousarray(arrays["w_shp"], np.float32)
        self.w_exp = np.ascontiguousarray(arrays["w_exp"], np.float32)
        self.kp68 = np.asarray(arrays["kp68"], np.int64)
        self.tri = np.ascontiguousarray(arrays["tri"], np.int32)
        self.uv = np.ascontiguousarray(arrays["uv"], np.float32)
        self.labels = np.ascontiguousarray(arrays["labels"], np.uint8)
        self.path = path
        for a in (self.u, self.w_shp, self.w_exp, self.kp68, self.tri, self.uv, self.labels):
            a.setflags(write=False)
        rows = (3 * self.kp68[:, None] + np.arange(3)).reshape(-1)
        self._u_kp = self.u[rows]
        self._w_shp_kp = self.w_shp[rows]
        self._w_exp_kp = self.w_exp[rows]

    @property
    def n_vertices(self) -> int:
        return self.u.size // 3

    @cached_property
    def triangles(self) -> np.ndarray:
        """(M + C, 3) int32: each tri.pkl triangle reversed (i2, i1, i0) - CCW seen from the front in
        a y-up frame, i.e. negative signed area for front faces in image space (project convention) -
        followed by the C = 76 triangles that close the opening between the lips
        (:func:`faceanon.models.topology.cap_inner_holes`; no vertex is added)."""
        from faceanon.models.topology import closed_triangles

        return closed_triangles(self.mean_vertices, np.ascontiguousarray(self.tri[:, ::-1]))

    @cached_property
    def mean_vertices(self) -> np.ndarray:
        """(N, 3) float32 mean face (u reshaped)."""
        return self.u.reshape(-1, 3)

    @cached_property
    def shape_basis(self):
        """The :class:`faceanon.models.base.ShapeBasis` of this model (identity ``w_shp``, expression
        ``w_exp``)."""
        from faceanon.models.base import ShapeBasis

        return ShapeBasis(self.w_shp, self.w_exp)

    def shape(self, alpha_shp: np.ndarray, alpha_exp: np.ndarray) -> np.ndarray:
        """Dense shape S = u + w_shp a_shp + w_exp a_exp in the model frame -> (N, 3) float32."""
        s = self.u + self.w_shp @ np.asarray(alpha_shp, np.float32) + self.w_exp @ np.asarray(alpha_exp, np.float32)
        return s.reshape(-1, 3)

    def landmarks_shape(self, alpha_shp: np.ndarray, alpha_exp: np.ndarray) -> np.ndarray:
        """The 68 landmark vertices of S -> (68, 3) float32 (cheap: 204 rows only)."""
        s = (self._u_kp + self._w_shp_kp @ np.asarray(alpha_shp, np.float32)
             + self._w_exp_kp @ np.asarray(alpha_exp, np.float32))
        return s.reshape(68, 3)


def load_bfm(sources: BFMSources, cache_dir: str | Path,
             source_sha256: dict[str, str | None] | None = None) -> BFMModel:
    """Load the no-neck BFM from its derived cache in ``cache_dir``, building it on first use
    (or when a source file's sha256 or the recipe version changed). Stale derived files of older
    keys are removed after a rebuild. ``source_sha256``: see :func:`cache_key`."""
    cache_dir = Path(cache_dir)
    path = cache_dir / f"{CACHE_PREFIX}{cache_key(sources, source_sha256)}.npz"
    arrays = _read_cache(path) if path.is_file() else None
    if arrays is None:
        arrays = build_arrays(sources)
        try:
            atomic_save_npz(path, **arrays)
        except OSError as exc:
            raise AssetError(f"cannot write the derived BFM cache {path}: {exc}",
                             hint="check the permissions of the cache directory") from exc
        for old in cache_dir.glob(f"{CACHE_PREFIX}*.npz"):
            if old != path:
                try:
                    old.unlink()
                except OSError:
                    pass
    return BFMModel(arrays, path)
