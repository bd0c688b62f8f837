"""bench/bench_what_matches.py: the grey-painted versions it attacks (the recognizers are not needed)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_what_matches.py"


def _module():
    spec = importlib.util.spec_from_file_location("bench_what_matches", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_each_version_paints_exactly_its_part_grey():
    before = list(sys.path)
    mod = _module()
    # importing it leaves sys.path alone: worker processes spawned by later tests would otherwise
    # import the source tree (no compiled extension in a fresh clone) instead of the install
    assert sys.path == before
    rng = np.random.default_rng(3)
    composite = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    composite[composite == mod.GREY] = 0  # so that "grey" can only come from the painting
    keep = composite.copy()
    labels = np.zeros((40, 50), np.uint8)
    labels[10:30, 15:35] = 8          # skin
    labels[14:18, 18:24] = 1          # an eye
    labels[24:27, 20:30] = 6          # a lip
    v = mod.versions(composite, labels)
    assert set(v) == {"as is", "skin grey", "face grey", "all but the face grey"}
    np.testing.assert_array_equal(composite, keep)  # the input is not modified
    np.testing.assert_array_equal(v["as is"], keep)
    for name, painted in (("skin grey", labels == 8), ("face grey", labels > 0), ("all but the face grey", labels == 0)):
        grey = (v[name] == mod.GREY).all(axis=2)
        np.testing.assert_array_equal(grey, painted, err_msg=name)
        np.testing.assert_array_equal(v[name][~painted], keep[~painted], err_msg=name)
