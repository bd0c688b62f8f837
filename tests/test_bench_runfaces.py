"""bench/_runfaces.py: the faces of an audited run output that the bench scripts attack again."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

from faceanon.io.images import save_image_atomic
from test_anonymize_helpers import grid_mesh, to_image, write_recon

BENCH = Path(__file__).resolve().parents[1] / "bench" / "_runfaces.py"


def _module():
    spec = importlib.util.spec_from_file_location("_runfaces", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_face_with_its_bucket_and_photos_loaded_once(tmp_path, monkeypatch):
    before = list(sys.path)
    mod = _module()
    assert sys.path == before
    H, W = 60, 80
    obj, tri, uv = grid_mesh(20, 15, 60, 45, 5.0, 4, (0.05, 0.05, 0.95, 0.95))
    img_v = to_image(obj, H)
    labels = np.full(len(obj), 8, np.uint8)
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    for stem in ("a", "b", "c"):
        save_image_atomic(inp / f"{stem}.png", np.full((H, W, 3), 100, np.uint8))
    write_recon(out / "face3d", "a", obj, tri, uv, img_v, labels, W, H, name="a", face_count=2)
    write_recon(out / "face3d", "a", obj, tri, uv, img_v, labels, W, H, name="a_face1", face_index=1, face_count=2)
    write_recon(out / "face3d", "b", obj, tri, uv, img_v, labels, W, H)
    write_recon(out / "face3d", "c", obj, tri, uv, img_v, labels, W, H)
    (out / "anonymized").mkdir()
    for stem in ("a", "b"):  # c has no anonymized photo: left out
        save_image_atomic(out / "anonymized" / f"{stem}.png", np.full((H, W, 3), 50, np.uint8))
    (out / "report.json").write_text(json.dumps({"images": [
        {"input": str(inp / f"{s}.png"), "stem": s, "faces": n, "status": "ok"} for s, n in (("a", 2), ("b", 1), ("c", 1))]}))
    (out / "audit.json").write_text(json.dumps({"rows": [
        {"stem": "a", "face": 0, "pose_bucket": "<30"}, {"stem": "a", "face": 1, "pose_bucket": ">60"},
        {"stem": "b", "face": 0, "pose_bucket": None}]}))

    import faceanon.audit.core as core

    loads = []
    real = core.load_rgb
    monkeypatch.setattr(core, "load_rgb", lambda p: loads.append(Path(p).parent.name) or real(p))
    got = [(img.stem, f.k, bucket, photos) for img, f, rec, bucket, photos in mod.audited_faces(out)]
    assert [g[:3] for g in got] == [("a", 0, "<30"), ("a", 1, ">60"), ("b", 0, "")]
    assert loads == []  # nothing decoded until asked
    for _s, _k, _b, photos in got:
        original, anonymized = photos()
        assert original.shape == anonymized.shape == (H, W, 3)
        assert int(original[0, 0, 0]) == 100 and int(anonymized[0, 0, 0]) == 50
    assert loads == ["in", "anonymized", "in", "anonymized"]  # once per image, not per face
