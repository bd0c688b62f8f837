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


def test_morphed_labels_follow_the_anonymized_mesh(tmp_path):
    """The label map painted grey is the MORPHED face's: an anonymized mesh equal to the fit gives the
    fit's own label map; one whose right half is wider covers more on the right, not on the left."""
    from faceanon.io import layout
    from faceanon.io.facefiles import write_anon_face
    from faceanon.models.labels import visible_label_map
    from test_anonymize_helpers import grid_mesh, to_image, write_recon

    mod = _module()
    H, W = 120, 140
    obj, tri, uv = grid_mesh(40, 30, 100, 90, 10.0, 12, (0.05, 0.05, 0.95, 0.95))  # y-up photo frame
    img_v = to_image(obj, H)
    labels = np.where(obj[:, 0] < 70, 1, 8).astype(np.uint8)
    out = tmp_path / "run"
    folder = write_recon(out / "face3d", "p", obj, tri, uv, img_v, labels, W, H)
    npz = layout.recon_files(folder, "p").npz
    anon = layout.anon_files(out / "anon", "p", "p")
    anon.obj.parent.mkdir(parents=True)

    class Mesh:
        vertices, triangles, vertex_labels = img_v, tri, labels

    write_anon_face(anon, obj, uv, tri, np.full((8, 8, 3), 200, np.uint8))
    same = mod.morphed_labels(out, "p", 0, npz, H, W)
    np.testing.assert_array_equal(same, visible_label_map(Mesh, H, W))
    assert set(np.unique(same)) == {0, 1, 8}

    wider = obj.copy()
    right = wider[:, 0] > 70
    wider[right, 0] += (wider[right, 0] - 70) * 0.5  # the right half 50 % wider: not a similarity
    write_anon_face(anon, wider, uv, tri, np.full((8, 8, 3), 200, np.uint8))
    morphed = mod.morphed_labels(out, "p", 0, npz, H, W)
    cols = lambda m: np.nonzero(m.any(axis=0))[0]  # noqa: E731
    assert cols(morphed).max() >= cols(same).max() + 5  # 15 px wider, less what the similarity takes
    assert (morphed == 8).sum() > (same == 8).sum() * 1.1  # the wider half is label 8
