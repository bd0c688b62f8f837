"""What carries a recognizer's match: every face of a `faceanon run` output attacked again with parts of
its anonymized photo painted grey.

Usage:
    python bench/bench_what_matches.py OUT [OUT ...] [--bucket ">60"] [--attackers dlib,sface] [--originals IN]

OUT must come from `faceanon run --outputs all` (the audit's face records in face3d/) and have been
audited (`faceanon audit OUT` or bench/bench_privacy.py: OUT/audit.json gives each face's pose bucket).
For every face of the chosen pose bucket (default: profiles, "> 60°"; "all" for every face), the strong
attacker of `faceanon audit` (both photos aligned by the run's own landmarks) compares the original with
four versions of the anonymized photo:

* as is;
* skin grey: the pixels the fit labels skin (label 8 of the face's visible label map) painted grey 128;
* face grey: every labelled pixel of the face (skin and the redrawn eyes, brows, lips, nose) grey;
* all but the face grey: every pixel the face's label map does NOT cover grey (hair, ears, neck,
  background).

The label map is the MORPHED face's (default, ``--labels morphed``): the anonymized mesh placed back
at the original pose (as ``faceanon composite`` does) and rasterized with the fit's vertex labels, so
the grey takes the mean face's outline, like the anonymized photo. ``--labels original`` paints the
original fit's label map instead - whose outline is the PERSON's, and can itself be matched (the
first version of this script did that). One markdown table row per version: faces matched by each
recognizer (distance below its threshold), and the range of the distances of the faces matched as
they are.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

GREY = 128
SKIN = 8


def versions(composite: np.ndarray, labels: np.ndarray) -> dict:
    """The four attacked images of one face: name -> (H, W, 3) uint8 (see the module docstring)."""
    face = labels > 0
    out = {"as is": composite}
    for name, sel in (("skin grey", labels == SKIN), ("face grey", face), ("all but the face grey", ~face)):
        img = composite.copy()
        img[sel] = GREY
        out[name] = img
    return out


def morphed_labels(out: Path, stem: str, k: int, npz: Path, height: int, width: int) -> np.ndarray:
    """(height, width) uint8 part labels of face ``k`` of image ``stem`` at its MORPHED shape: the
    run's anonymized OBJ placed back at the fit's pose and rasterized (z-buffer) with the fit's vertex
    labels (0 = not the face)."""
    from types import SimpleNamespace

    from faceanon.io import layout
    from faceanon.io.facefiles import read_recon_mesh
    from faceanon.io.mesh import read_obj
    from faceanon.io.records import read_npz
    from faceanon.models.labels import visible_label_map
    from faceanon.stages.composite import posed_image_vertices

    d = read_npz(npz)
    name = layout.face_name(stem, k)
    v2d = np.asarray(d["v2d_full"], np.float64)
    recon = read_recon_mesh(layout.recon_files(npz.parent, name).obj, height, v2d)
    anon_v, _uv, _tris, _tex = read_obj(layout.anon_files(out / "anon", stem, name).obj)
    posed = posed_image_vertices(anon_v, recon.vertices, height, v2d)
    mesh = SimpleNamespace(vertices=posed, triangles=recon.triangles, vertex_labels=np.asarray(d["vertex_labels"]))
    return visible_label_map(mesh, height, width)


def main(argv=None) -> int:
    from _runfaces import audited_faces  # bench/ is on sys.path when this file runs
    from faceanon.audit import attackers as att_reg
    from faceanon.audit.pose import BUCKETS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outs", nargs="+", type=Path, metavar="OUT")
    ap.add_argument("--bucket", default=">60", choices=(*BUCKETS, "all"), help="pose bucket (default >60)")
    ap.add_argument("--attackers", default=None, help="recognizers, comma-separated (default: every installed one)")
    ap.add_argument("--originals", type=Path, default=None)
    ap.add_argument("--labels", default="morphed", choices=("morphed", "original"),
                    help="whose outline is painted: the morphed face's (default) or the original fit's")
    args = ap.parse_args(argv)
    recs = [att_reg.load(n) for n in att_reg.resolve(args.attackers)]
    names = ["as is", "skin grey", "face grey", "all but the face grey"]
    for out in args.outs:
        dists = {(n, r.name): [] for n in names for r in recs}
        faces = 0
        for img, f, rec, bucket, photos in audited_faces(out, args.originals):
            if (args.bucket != "all" and bucket != args.bucket) or rec["labels"] is None:
                continue
            original, composite = photos()
            faces += 1
            lm = rec["landmarks68"]
            labels = rec["labels"]
            if args.labels == "morphed":
                labels = morphed_labels(out, img.stem, f.k, f.npz, *composite.shape[:2])
            for r in recs:
                e0 = r.embed(original, lm)
                for n, im in versions(composite, labels).items():
                    dists[(n, r.name)].append(float(r.distance(e0, r.embed(im, lm))))
        print(f"### {out} ({faces} faces, pose bucket {args.bucket}, {args.labels} label map)\n")
        print("| version | " + " | ".join(f"{r.name} matched (threshold {r.threshold:g})" for r in recs) + " |")
        print("|---|" + "---|" * len(recs))
        for n in names:
            cells = []
            for r in recs:
                d = np.asarray(dists[(n, r.name)])
                hit = d < r.threshold
                rng = f" ({d[hit].min():.2f}-{d[hit].max():.2f})" if hit.any() else ""
                cells.append(f"{int(hit.sum())} of {len(d)}{rng}")
            print(f"| {n} | " + " | ".join(cells) + " |")
        print()
    return 0


if __name__ == "__main__":
    # run from a checkout: the repository's faceanon (only when run, so that importing this file -
    # as its test does - leaves sys.path alone)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    raise SystemExit(main())
