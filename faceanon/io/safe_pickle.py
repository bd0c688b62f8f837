"""Loading downloaded pickles without running code.

Model files come from the network; ``pickle.load`` (and ``np.load(allow_pickle=True)``) on them would
run whatever a tampered file asks. These loaders only rebuild numpy arrays, dicts, lists, strings
and numbers; any other global is refused with an :class:`~faceanon.errors.AssetError`.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from faceanon.errors import AssetError


def _numpy_reconstruct():
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _numpy_scalar():
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import scalar
    return scalar


_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    # protocol-2 pickles store the array bytes as _codecs.encode(latin-1 text): a pure function
    ("_codecs", "encode"): lambda: __import__("codecs").encode,
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can only rebuild numpy arrays (plus plain containers and scalars)."""

    def find_class(self, module: str, name: str):  # noqa: D102 - pickle API
        factory = _ALLOWED_GLOBALS.get((module, name))
        if factory is None:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")
        return factory()


_REFUSED = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError)


def safe_load_pickle(path: str | Path):
    """Load a pickle that may only contain numpy arrays, dicts, lists, strings and numbers."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return NumpyOnlyUnpickler(fh, encoding="latin1").load()
    except FileNotFoundError as exc:
        raise AssetError(f"file not found: {path}", hint="run `faceanon assets download`") from exc
    except _REFUSED as exc:
        raise AssetError(f"refusing to load {path}: {exc}",
                         hint="the file is not the expected numpy-only pickle; re-download it") from exc


def safe_load_npy_object(path: str | Path):
    """Load a ``.npy`` holding a pickled object array (e.g. a dict saved with ``np.save``) safely.

    Returns the array's single item for a 0-d object array, else the array. Plain (non-object)
    ``.npy`` files are loaded with ``allow_pickle=False``.
    """
    from numpy.lib import format as npy_format

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            version = npy_format.read_magic(fh)
            if version == (1, 0):
                shape, _fortran, dtype = npy_format.read_array_header_1_0(fh)
            else:
                shape, _fortran, dtype = npy_format.read_array_header_2_0(fh)
            if not dtype.hasobject:
                return np.load(str(path), allow_pickle=False)
            arr = NumpyOnlyUnpickler(fh, encoding="latin1").load()
    except FileNotFoundError as exc:
        raise AssetError(f"file not found: {path}", hint="run `faceanon assets download`") from exc
    except _REFUSED as exc:
        raise AssetError(f"refusing to load {path}: {exc}",
                         hint="the file is not the expected numpy-only .npy; re-download it") from exc
    arr = np.asarray(arr)
    if arr.shape != tuple(shape):
        raise AssetError(f"refusing to load {path}: header shape {shape} but payload {arr.shape}")
    return arr.item() if arr.shape == () else arr
