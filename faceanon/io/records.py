"""The projections record of a face (an ``.npz``): the seed's contract (docs/seed_compatibility.md, section 1.1).

Required keys, exactly as the seed (3DDFA-V3 / dermaself) writes them, so that seed files and ours
are interchangeable:

===========================  =======  ========  ==============================================
key                          dtype    shape     meaning
===========================  =======  ========  ==============================================
``trans_params``             float32  (5,)      [W0, H0, s, tx, ty]
``img_size``                 int32    (2,)      [W, H] of the (upright) photo
``seg_visible_labels_full``  uint8    (H, W)    visible part labels 0..8 (faceanon.types)
``v2d_full``                 float32  (N, 2)    per-vertex projection, image px, y down
===========================  =======  ========  ==============================================

Extra keys written by faceanon (optional when reading; validated when present):
``landmarks68`` float32 (68, 2), ``pose`` float32 (3,) [yaw, pitch, roll] degrees, ``box`` float32
(4,) [x1, y1, x2, y2], ``score`` float32 (), ``backend`` 0-d unicode array, ``face_index`` int32 (),
``face_count`` int32 (), ``vertex_labels`` uint8 (N,) 0..8, ``landmarks5`` float32 (5, 2),
``landmark_ids`` int32 (68,) vertex ids of the 68 landmarks in the mesh (the identity-free features
are drawn from the mean face at them; see faceanon/stages/features.py).

Files are written uncompressed (like ``np.savez``), atomically and without pickle; they are read
with ``allow_pickle=False``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from faceanon.errors import FaceanonError
from faceanon.io.atomic import atomic_save_npz
from faceanon.types import FaceFit

__all__ = ["REQUIRED_KEYS", "EXTRA_KEYS", "save_projections", "load_projections", "MAX_LABEL"]

REQUIRED_KEYS = ("trans_params", "img_size", "seg_visible_labels_full", "v2d_full")
EXTRA_KEYS = ("landmarks68", "pose", "box", "score", "backend", "face_index", "face_count",
              "vertex_labels", "landmarks5", "landmark_ids")
MAX_LABEL = 8


class _Bad(Exception):
    """Internal: a validation failure for one key (turned into a FaceanonError naming the file)."""

    def __init__(self, key: str, msg: str) -> None:
        super().__init__(msg)
        self.key = key
        self.msg = msg


def _float(key: str, value: Any, shape: tuple, *, finite: bool = True) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise _Bad(key, f"must be a float array, got dtype {arr.dtype}")
    if arr.shape != shape and not _shape_matches(arr.shape, shape):
        raise _Bad(key, f"must have shape {_fmt_shape(shape)}, got {arr.shape}")
    arr = arr.astype(np.float32)
    if finite and not np.all(np.isfinite(arr)):
        raise _Bad(key, "contains NaN or infinite values")
    return arr


def _shape_matches(actual: tuple, expected: tuple) -> bool:
    return len(actual) == len(expected) and all(e is None or a == e for a, e in zip(actual, expected))


def _fmt_shape(shape: tuple) -> str:
    return "(" + ", ".join("N" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _labels(key: str, value: Any, shape: tuple) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise _Bad(key, f"must be an integer label array, got dtype {arr.dtype}")
    if not _shape_matches(arr.shape, shape):
        raise _Bad(key, f"must have shape {_fmt_shape(shape)}, got {arr.shape}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > MAX_LABEL):
        raise _Bad(key, f"values must be in 0..{MAX_LABEL}, got {int(arr.min())}..{int(arr.max())}")
    return arr.astype(np.uint8)


def _int_scalar(key: str, value: Any, minimum: int) -> int:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu" or arr.shape not in ((), (1,)):
        raise _Bad(key, f"must be an integer scalar, got dtype {arr.dtype} shape {arr.shape}")
    v = int(arr.reshape(()))
    if v < minimum:
        raise _Bad(key, f"must be >= {minimum}, got {v}")
    return v


def _validate(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check and normalise the arrays of a projections record (raises _Bad)."""
    for key in REQUIRED_KEYS:
        if key not in raw:
            raise _Bad(key, "is missing")
    out: dict[str, Any] = {}

    tp = _float("trans_params", raw["trans_params"], (5,))
    if tp[0] <= 0 or tp[1] <= 0 or tp[2] <= 0:
        raise _Bad("trans_params", f"W0, H0 and s must be positive, got {tp[:3].tolist()}")
    out["trans_params"] = tp

    size = np.asarray(raw["img_size"])
    if size.dtype.kind not in "iu" or size.shape != (2,):
        raise _Bad("img_size", f"must be int32 (2,) [W, H], got dtype {size.dtype} shape {size.shape}")
    if int(size.min()) <= 0:
        raise _Bad("img_size", f"must be positive, got {size.tolist()}")
    out["img_size"] = size.astype(np.int32)
    w, h = (int(x) for x in size)

    labels = _labels("seg_visible_labels_full", raw["seg_visible_labels_full"], (None, None))
    if labels.shape != (h, w):
        raise _Bad("seg_visible_labels_full", f"has shape {labels.shape} but img_size [W, H] = [{w}, {h}] "
                                              f"needs (H, W) = ({h}, {w})")
    out["seg_visible_labels_full"] = labels

    v2d = _float("v2d_full", raw["v2d_full"], (None, 2))
    if v2d.shape[0] == 0:
        raise _Bad("v2d_full", "is empty")
    out["v2d_full"] = v2d
    n = v2d.shape[0]

    if "landmarks68" in raw:
        out["landmarks68"] = _float("landmarks68", raw["landmarks68"], (68, 2))
    if "landmarks5" in raw:
        out["landmarks5"] = _float("landmarks5", raw["landmarks5"], (5, 2))
    if "pose" in raw:
        out["pose"] = _float("pose", raw["pose"], (3,))
    if "box" in raw:
        out["box"] = _float("box", raw["box"], (4,))
    if "score" in raw:
        s = _float("score", np.asarray(raw["score"]).reshape(-1), (1,))
        out["score"] = float(s[0])
    if "backend" in raw:
        b = np.asarray(raw["backend"])
        if b.dtype.kind not in "US" or b.shape != ():
            raise _Bad("backend", f"must be a 0-d string array, got dtype {b.dtype} shape {b.shape}")
        out["backend"] = str(b.item().decode() if isinstance(b.item(), bytes) else b.item())
    if "face_count" in raw:
        out["face_count"] = _int_scalar("face_count", raw["face_count"], 1)
    if "face_index" in raw:
        out["face_index"] = _int_scalar("face_index", raw["face_index"], 0)
        if "face_count" in out and out["face_index"] >= out["face_count"]:
            raise _Bad("face_index", f"must be < face_count ({out['face_count']}), got {out['face_index']}")
    if "vertex_labels" in raw:
        out["vertex_labels"] = _labels("vertex_labels", raw["vertex_labels"], (n,))
    if "landmark_ids" in raw:
        ids = np.asarray(raw["landmark_ids"])
        if ids.dtype.kind not in "iu" or ids.shape != (68,):
            raise _Bad("landmark_ids", f"must be (68,) integers, got dtype {ids.dtype} shape {ids.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            raise _Bad("landmark_ids", f"must be vertex ids in [0, {n})")
        out["landmark_ids"] = ids.astype(np.int64)
    for key, value in raw.items():  # unknown keys pass through untouched
        if key not in out:
            out[key] = value
    return out


def save_projections(path: Path | str, fit: FaceFit, image_size: tuple[int, int],
                     seg_visible_labels_full: np.ndarray, *, face_index: int = 0, face_count: int = 1,
                     **extras: Any) -> Path:
    """Write one face's projections record (seed keys + faceanon extras), atomically.

    Args:
        path: the ``.npz`` file.
        fit: the face; gives ``trans_params``, ``v2d_full`` (``fit.v2d``), ``landmarks68``, ``pose``,
            ``vertex_labels``, ``backend`` and, from ``fit.detection``, ``box``, ``score``,
            ``landmarks5``.
        image_size: (W, H) of the upright photo.
        seg_visible_labels_full: (H, W) integer labels 0..8.
        face_index, face_count: this face's rank (0 = main face) and the number of faces written.
        extras: more arrays to store (numeric or unicode; no object arrays); names must not clash
            with the keys above.

    Raises ``ValueError`` naming the key when an array does not meet the contract, and
    :class:`OutputError` when the file cannot be written.
    """
    det = fit.detection
    w, h = (int(x) for x in image_size)
    record = {
        "trans_params": np.asarray(fit.trans_params, dtype=np.float32).reshape(-1),
        "img_size": np.array([w, h], dtype=np.int32),
        "seg_visible_labels_full": np.asarray(seg_visible_labels_full),
        "v2d_full": fit.v2d,
        "landmarks68": np.asarray(fit.landmarks68, dtype=np.float32),
        "pose": np.asarray(fit.pose, dtype=np.float32).reshape(-1),
        "box": np.asarray(det.box, dtype=np.float32).reshape(-1),
        "score": np.asarray(float(det.score), dtype=np.float32),
        "backend": np.array(str(fit.backend)),
        "face_index": np.asarray(int(face_index), dtype=np.int32),
        "face_count": np.asarray(int(face_count), dtype=np.int32),
        "vertex_labels": np.asarray(fit.vertex_labels),
        "landmarks5": np.asarray(det.landmarks5, dtype=np.float32),
    }
    if fit.landmark_ids is not None:
        record["landmark_ids"] = np.asarray(fit.landmark_ids, dtype=np.int32)
    clash = set(extras) & set(record)
    if clash:
        raise ValueError(f"save_projections: extra keys {sorted(clash)} clash with the contract keys")
    try:
        checked = _validate(record)
    except _Bad as bad:
        raise ValueError(f"save_projections({path}): {bad.key} {bad.msg}") from None
    # back to arrays with the contract dtypes (the validator returns Python scalars for 0-d keys)
    checked["score"] = np.asarray(checked["score"], dtype=np.float32)
    checked["backend"] = np.array(checked["backend"])
    checked["face_index"] = np.asarray(checked["face_index"], dtype=np.int32)
    checked["face_count"] = np.asarray(checked["face_count"], dtype=np.int32)
    if "landmark_ids" in checked:
        checked["landmark_ids"] = np.asarray(checked["landmark_ids"], dtype=np.int32)
    checked.update(extras)
    atomic_save_npz(Path(path), **checked)
    return Path(path)


def load_projections(path: Path | str, *, expected_size: Optional[tuple[int, int]] = None) -> dict[str, Any]:
    """Read and validate a projections record (the seed's or ours), without pickle.

    Returns a dict with the four required arrays in their contract dtypes (``trans_params`` float32
    (5,), ``img_size`` int32 [W, H], ``seg_visible_labels_full`` uint8 (H, W), ``v2d_full`` float32
    (N, 2)), the optional arrays when present (``landmarks68``, ``landmarks5``, ``pose``, ``box``
    float32; ``vertex_labels`` uint8), the 0-d keys as Python values (``score`` float, ``backend``
    str, ``face_index`` / ``face_count`` int), and any unknown key unchanged.

    ``expected_size`` (W, H), when given, must equal ``img_size`` (e.g. the photo being processed).

    Raises :class:`FaceanonError` naming the file and the offending key: missing file, not an npz,
    missing key, wrong dtype/shape, labels outside 0..8, NaN coordinates, size mismatch, pickled
    (object) arrays.
    """
    path = Path(path)
    raw = read_npz(path)
    try:
        out = _validate(raw)
    except _Bad as bad:
        raise FaceanonError(f"{path}: key {bad.key!r} {bad.msg}", hint=_HINT) from None
    if expected_size is not None:
        ew, eh = (int(x) for x in expected_size)
        w, h = (int(x) for x in out["img_size"])
        if (w, h) != (ew, eh):
            raise FaceanonError(f"{path}: key 'img_size' is {w}×{h} but the image is {ew}×{eh}",
                                hint="the projections belong to another (or re-oriented) image; " + _HINT)
    return out


_HINT = "re-run `faceanon reconstruct` for this image"


def read_npz(path: Path | str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read without pickle and without any check of the keys
    (:func:`load_projections` checks them; ``faceanon audit`` takes what it finds).

    Raises :class:`FaceanonError` naming the file: missing, not an npz (or a bare .npy), unreadable,
    or holding a pickled (object) array.
    """
    path = Path(path)
    hint = _HINT
    try:
        # our own handle: numpy leaks its file when the zip directory is corrupt
        with open(path, "rb") as fh:
            loaded = np.load(fh, allow_pickle=False)
            if not hasattr(loaded, "files"):  # a bare .npy array
                raise FaceanonError(f"{path}: not an .npz archive (a single .npy array)", hint=hint)
            with loaded as npz:
                raw: dict[str, Any] = {}
                for key in npz.files:
                    try:
                        raw[key] = npz[key]
                    except ValueError as exc:  # object arrays need pickle
                        raise FaceanonError(f"{path}: key {key!r} cannot be read without pickle ({exc})",
                                            hint=hint) from None
    except FaceanonError:
        raise
    except FileNotFoundError:
        raise FaceanonError(f"{path}: projections file not found", hint=hint) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise FaceanonError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})", hint=hint) from None
    return raw
