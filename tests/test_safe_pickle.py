"""Downloaded pickles (.pkl, object .npy) are loaded without running code."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from faceanon.errors import AssetError
from faceanon.io.safe_pickle import safe_load_npy_object, safe_load_pickle


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def _write_object_npy(path, obj) -> None:
    arr = np.empty((), dtype=object)
    arr[()] = obj
    np.save(path, arr, allow_pickle=True)


def test_object_npy_dict_of_arrays_round_trips(tmp_path):
    d = {"u": np.arange(6, dtype=np.float32).reshape(-1, 1), "tri": np.array([[0, 1, 2]]), "annotation": [np.array([1, 2]), [3, 4]],
         "name": "x", "n": 3}
    p = tmp_path / "fm.npy"
    _write_object_npy(p, d)
    got = safe_load_npy_object(p)
    assert set(got) == set(d)
    np.testing.assert_array_equal(got["u"], d["u"])
    np.testing.assert_array_equal(got["annotation"][0], [1, 2])
    assert got["name"] == "x" and got["n"] == 3


def test_object_npy_with_code_is_refused(tmp_path):
    p = tmp_path / "fm.npy"
    _write_object_npy(p, {"u": _Evil()})
    with pytest.raises(AssetError, match="posix.system|os.system|not allowed"):
        safe_load_npy_object(p)


def test_plain_npy_is_loaded_without_pickle(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, np.arange(5))
    np.testing.assert_array_equal(safe_load_npy_object(p), np.arange(5))


def test_pickle_with_code_is_refused(tmp_path):
    p = tmp_path / "x.pkl"
    p.write_bytes(pickle.dumps({"mean": _Evil()}))
    with pytest.raises(AssetError, match="not allowed"):
        safe_load_pickle(p)


def test_face_model_refuses_a_malicious_file(tmp_path):
    from ddfa_v3.errors import AssetError as V3AssetError
    from ddfa_v3.face_model import FaceModel

    p = tmp_path / "face_model.npy"
    _write_object_npy(p, {"u": _Evil()})
    with pytest.raises(V3AssetError, match="cannot read face model"):
        FaceModel(p)
