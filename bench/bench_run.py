"""Benchmark of `faceanon run` on the fixture photos: per-stage seconds, peak RSS, memory flatness.

Usage (real model files through the mirror):

    FACEANON_ASSETS_MIRROR=<asset mirror folder> python bench/bench_run.py [--photos DIR] [--batch 200]

Models are loaded once and the images go through `faceanon.runner.commit.start_image` exactly as
`faceanon run` drives it (default options; image i's files are written in the background while image
i+1 computes). Prints markdown tables:

1. median compute seconds per image per stage, and the wall-clock seconds per image of the whole
   batch (compute + whatever file writing did not overlap), over the fixture photos;
2. model load time and peak RSS;
3. with --batch N: the fixtures repeated to N images; the peak RSS (sampled after every image) of the
   last 50 images against the first 50 - a flat memory profile keeps them within 10 %.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_PHOTOS = HERE.parent.parent / "shared" / "fixtures" / "photos"


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    ap.add_argument("--batch", type=int, default=0, help="also run a batch of N images (fixtures repeated)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--outputs", default=None, help="output folders as `run --outputs` (default: anonymized,anon,render)")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from faceanon.assets import get_store
    from faceanon.io.images import list_images
    from faceanon.runner.models import load_models
    from faceanon.runner.commit import start_image
    from faceanon.stages.pipeline import RunOptions

    store = get_store()
    store.download(model="lite", accept_license=True, progress=False)
    opts = RunOptions(outputs=args.outputs)
    t0 = time.perf_counter()
    models = load_models(store, opts)
    load_s = time.perf_counter() - t0

    photos = list_images(args.photos)
    stages = ["load", "reconstruct", "extract_texture", "segment", "anonymize", "render", "composite", "total"]
    per_stage: dict[str, list[float]] = {s: [] for s in stages}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        # warm-up: the first image pays for building per-size detector nets and the UV layout cache
        start_image(photos[0], "warmup", out, models, opts).result()

        def run_batch(items):
            inflight, reports = [], []
            t = time.perf_counter()
            for p, stem in items:
                inflight.append(start_image(p, stem, out, models, opts))
                while len(inflight) > 1:
                    reports.append(inflight.pop(0).result())
                    yield reports[-1]
            while inflight:
                reports.append(inflight.pop(0).result())
                yield reports[-1]
            run_batch.wall = time.perf_counter() - t

        for rep in run_batch([(p, p.stem) for p in photos]):
            for s in stages:
                per_stage[s].append(rep.seconds.get(s, 0.0))
        wall = run_batch.wall / len(photos)
        peak_after_fixtures = peak_rss_mb()

        print(f"## faceanon run on {len(photos)} fixture photos ({os.cpu_count()} cores, torch threads "
              f"{torch.get_num_threads()})\n")
        print("| stage (compute) | median s / image | max s |")
        print("|---|---:|---:|")
        for s in stages:
            print(f"| {s} | {statistics.median(per_stage[s]):.3f} | {max(per_stage[s]):.3f} |")
        print(f"| **wall clock per image, files written** | **{wall:.3f}** | |")
        print(f"\nmodel load: {load_s:.2f} s; peak RSS after the fixtures: {peak_after_fixtures:.0f} MB\n")

        if args.batch:
            samples = []
            t1 = time.perf_counter()
            items = [(photos[i % len(photos)], f"b{i:04d}_{photos[i % len(photos)].stem}") for i in range(args.batch)]
            for _rep in run_batch(items):
                samples.append(rss_mb())
            dt = time.perf_counter() - t1
            first, last = max(samples[:50]), max(samples[-50:])
            print(f"## batch of {args.batch} images ({dt / args.batch:.3f} s / image)\n")
            print("| window | peak RSS MB |")
            print("|---|---:|")
            print(f"| first 50 | {first:.0f} |")
            print(f"| last 50 | {last:.0f} |")
            print(f"| change | {100 * (last - first) / first:+.1f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
