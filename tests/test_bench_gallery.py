"""bench/bench_gallery.py: impostor rates and gallery search on distance matrices with a known answer
(the recognizers are not needed)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_gallery.py"
nan = np.nan


def _module():
    spec = importlib.util.spec_from_file_location("bench_gallery", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# three people; threshold 0.5. Rows are probes (face i's anonymized photo, render, eraser image),
# columns the gallery of originals; the diagonal is the genuine pair.
D_ORIG = np.array([[0.0, 0.4, 0.9], [0.4, 0.0, 0.9], [0.9, 0.9, 0.0]])      # 0 and 1 look alike
D_ANON = np.array([[0.3, 0.9, 0.9], [0.6, 0.7, 0.2], [0.9, 0.9, 0.8]])      # 1 is nearest to 2
D_RENDER = np.array([[nan] * 3, [nan] * 3, [0.9, 0.9, 0.45]])                # only 2's render found
D_ERASER = np.array([[0.2, 0.1, 0.9], [0.9, 0.3, 0.9], [nan] * 3])


def test_figures_for_every_face():
    before = list(sys.path)
    mod = _module()
    assert sys.path == before  # importing leaves sys.path alone (see test_bench_what_matches)
    x = mod.figures(D_ORIG, D_ANON, D_RENDER, D_ERASER, 0.5, np.arange(3))
    assert x["faces"] == 3
    assert x["genuine"] == 2  # face 0 by its photo (0.3), face 2 by its render (0.45)
    assert x["rate_orig"] == pytest.approx(2 / 6)  # the pairs (0, 1) and (1, 0)
    assert x["rate_anon"] == pytest.approx(1 / 6)  # face 1's photo against 2's original (0.2)
    assert x["chance"] == pytest.approx(3 / 6)
    assert x["rank1"] == 2  # face 0 (photo), face 2 (photo 0.8 and render 0.45 both nearest); not face 1
    assert x["rank1_eraser"] == 1  # face 1 only: face 0's eraser is nearer to 1, face 2 has none


def test_figures_for_a_bucket_use_its_probes_against_the_whole_gallery():
    mod = _module()
    x = mod.figures(D_ORIG, D_ANON, D_RENDER, D_ERASER, 0.5, np.array([1, 2]))
    assert x["faces"] == 2
    assert x["genuine"] == 1
    assert x["rate_orig"] == pytest.approx(1 / 4)  # (1, 0) of (1, 0), (1, 2), (2, 0), (2, 1)
    assert x["rate_anon"] == pytest.approx(1 / 4)
    assert x["rank1"] == 1 and x["rank1_eraser"] == 1


def test_distances_leave_a_missing_probe_nan():
    mod = _module()

    class Abs:
        def distance(self, a, b):
            return float(abs(a - b))

    d = mod.distances(Abs(), [np.float64(1.0), None], [np.float64(0.0), np.float64(3.0)])
    np.testing.assert_allclose(d[0], [1.0, 2.0])
    assert np.isnan(d[1]).all()
