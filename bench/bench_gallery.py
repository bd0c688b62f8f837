"""How much a recognizer's "match" means at each head pose: impostor match rates and gallery search.

Usage:
    python bench/bench_gallery.py OUT [OUT ...] [--attackers dlib,sface] [--originals IN]

Every OUT must come from `faceanon run --outputs all` and have been audited (`faceanon audit OUT` or
bench/bench_privacy.py), which gives each face its pose bucket. The faces of all OUTs form one pool;
each face is a different person (the fixtures and the dev set hold one person per photo, and two faces
of one photo are two people). With the audit's strong attacker (both photos aligned by the run's own
landmarks; the frontal render aligned by dlib's landmarks on it), per recognizer and pose bucket:

* **genuine matched**: the face's anonymized photo or render matched with its own original (the
  audit's "re-id");
* **impostor rate, originals**: the share of pairs (original of this face, original of ANOTHER face in
  the pool) the recognizer calls a match - its false-match rate on these photos at this pose;
* **impostor rate, anonymized**: the same with the anonymized photo (or render) against other
  people's originals - how often the anonymized face "matches" someone it is not;
* **genuine matched by chance**: faces x the anonymized impostor rate, i.e. how many genuine matches
  a recognizer that only sees "a face at this pose" would report;
* **rank-1 identified**: the attacker searches the whole pool of originals (a gallery of N people) for
  the anonymized photo (or render) and its own original comes out nearest; chance is 1/N;
  **eraser rank-1**: the same search with the original's face box painted grey (what hair, ears and
  background alone give away).

A match is only evidence of identity when the genuine rate clearly exceeds the impostor rate; the
gallery search is the attack that does not depend on a threshold at all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]


class Face:
    """One face of the pool: where it comes from, its pose bucket and its descriptors per recognizer
    (``desc[name]``: ``orig``, ``anon`` = the anonymized photo, ``render`` (None when dlib finds no face
    in it), ``eraser`` = the original with the face box grey)."""

    def __init__(self, key: str, bucket: str) -> None:
        self.key, self.bucket = key, bucket
        self.desc: Dict[str, Dict[str, Optional[np.ndarray]]] = {}


def distances(recognizer, probes: List[Optional[np.ndarray]], gallery: List[np.ndarray]) -> np.ndarray:
    """(P, G) distances of every probe to every gallery descriptor; NaN rows for a None probe."""
    out = np.full((len(probes), len(gallery)), np.nan)
    for i, p in enumerate(probes):
        if p is None:
            continue
        for j, g in enumerate(gallery):
            out[i, j] = recognizer.distance(g, p)
    return out


def figures(d_orig: np.ndarray, d_anon: np.ndarray, d_render: np.ndarray, d_eraser: np.ndarray,
            threshold: float, rows: np.ndarray) -> dict:
    """The table's figures for the probes ``rows`` (indices into the pool); every ``d_*`` is (N, N)
    probe x gallery with the genuine pair on the diagonal (see the module docstring)."""
    n = d_orig.shape[0]
    off = ~np.eye(n, dtype=bool)
    sel = np.zeros(n, dtype=bool)
    sel[rows] = True
    # a face counts as matched / identified when its anonymized photo OR its render is
    d_best = np.fmin(d_anon, d_render)
    diag = np.diagonal(d_best)
    genuine = int(np.sum(diag[sel] < threshold))
    imp_orig = d_orig[sel][off[sel]]
    imp_anon = d_best[sel][off[sel]]
    imp_orig = imp_orig[np.isfinite(imp_orig)]
    imp_anon = imp_anon[np.isfinite(imp_anon)]
    rate_orig = float(np.mean(imp_orig < threshold)) if imp_orig.size else float("nan")
    rate_anon = float(np.mean(imp_anon < threshold)) if imp_anon.size else float("nan")

    def rank1(*ds: np.ndarray) -> int:
        """Probes whose own original is the nearest in at least one of ``ds``."""
        return sum(any(np.isfinite(d[i, i]) and np.nanargmin(d[i]) == i for d in ds) for i in rows)

    return dict(faces=int(sel.sum()), genuine=genuine, rate_orig=rate_orig, rate_anon=rate_anon,
                chance=rate_anon * int(sel.sum()), rank1=rank1(d_anon, d_render), rank1_eraser=rank1(d_eraser))


def collect(outs: List[Path], recs, originals: Optional[Path]) -> List[Face]:
    """Every face of the audited runs with its descriptors (see :class:`Face`)."""
    from _runfaces import audited_faces  # bench/ is on sys.path when this file runs
    from faceanon.audit import metrics as m
    from faceanon.audit.core import load_render_rgb

    dlib = recs[0]
    pool: List[Face] = []
    for out in outs:
        for img, f, rec, bucket, photos in audited_faces(out, originals):
            original, composite = photos()
            lm = rec["landmarks68"]
            face = Face(f"{out.name}/{img.stem}#{f.k}", bucket)
            fbox = m.face_box(rec["box"], lm)
            eraser = m.erase_face(original, fbox) if fbox is not None else None
            render_lm = None
            if f.render is not None:
                render = load_render_rgb(f.render)
                fr = dlib.detect(render)
                render_lm = fr[0].landmarks68 if fr else None
            for r in recs:
                face.desc[r.name] = dict(
                    orig=r.embed(original, lm), anon=r.embed(composite, lm),
                    render=r.embed(render, render_lm) if render_lm is not None else None,
                    eraser=r.embed(eraser, lm) if eraser is not None else None)
            pool.append(face)
            print(f"  {face.key}: {face.bucket or 'pose unknown'}", file=sys.stderr)
    return pool


def table(pool: List[Face], recs) -> str:
    """The markdown table: one row per recognizer and pose bucket, then one for all faces."""
    from faceanon.audit.pose import BUCKET_TITLES, bucket_order

    n = len(pool)
    lines = [f"Pool: {n} faces, {n} people; gallery search chance = 1/{n} = {100 / n:.1f} %.\n",
             "| recognizer | pose | faces | genuine matched | impostor rate, originals | impostor rate, anonymized "
             "| genuine matched by chance | rank-1 identified | eraser rank-1 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in recs:
        g = [f.desc[r.name]["orig"] for f in pool]
        d = {k: distances(r, [f.desc[r.name][k] for f in pool], g) for k in ("orig", "anon", "render", "eraser")}
        buckets = bucket_order(sorted({f.bucket for f in pool}))
        for b in [*buckets, None]:
            rows = np.array([i for i, f in enumerate(pool) if b is None or f.bucket == b], dtype=int)
            if rows.size == 0:
                continue
            x = figures(d["orig"], d["anon"], d["render"], d["eraser"], r.threshold, rows)
            title = "**all**" if b is None else BUCKET_TITLES[b]
            lines.append(f"| {r.name} | {title} | {x['faces']} | {x['genuine']} | {100 * x['rate_orig']:.1f} % "
                         f"| {100 * x['rate_anon']:.1f} % | {x['chance']:.1f} | {x['rank1']} | {x['rank1_eraser']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from faceanon.audit import attackers as att_reg

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outs", nargs="+", type=Path, metavar="OUT")
    ap.add_argument("--attackers", default=None, help="recognizers, comma-separated (default: every installed one)")
    ap.add_argument("--originals", type=Path, default=None)
    args = ap.parse_args(argv)
    recs = [att_reg.load(n) for n in att_reg.resolve(args.attackers)]
    pool = collect(args.outs, recs, args.originals)
    if len(pool) < 2:
        print("bench_gallery: fewer than two faces with landmarks: nothing to compare", file=sys.stderr)
        return 1
    print(table(pool, recs))
    return 0


if __name__ == "__main__":
    # run from a checkout: the repository's faceanon (only when run, so that importing this file -
    # as its test does - leaves sys.path alone)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    raise SystemExit(main())
