"""Benchmark of the lite reconstruction: model load time, per-image time, peak memory.

    python bench/bench_reconstruct.py [--mirror DIR] [--photos DIR] [--threads N] [--repeat R] [--large]

Per image (after loading): CenterFace detection + two mb05 passes + dense vertices + pose, and the
visible label map when the compiled rasterizer is available. The fixture photos come in 12
different sizes and the detector keeps only 2 per-size OpenCV nets, so the per-image median
includes building a net for most images (a mixed-size batch); the "same size" row shows a batch of
one camera's photos. ``--large`` adds a 24-MP copy of alison1 (detection runs on a copy
downscaled to 1600 px). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import torch

from faceanon.models.bfm import BFMSources, load_bfm, load_param_stats
from faceanon.models.centerface import CenterFace
from faceanon.models.lite import LiteBackend
from faceanon.models.mb05 import load_mb05

SHARED = Path(__file__).resolve().parents[2] / "shared"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirror", type=Path, default=SHARED / "assets")
    ap.add_argument("--photos", type=Path, default=SHARED / "fixtures" / "photos")
    ap.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads (default 1)")
    ap.add_argument("--repeat", type=int, default=3, help="passes over the photos (median over all)")
    ap.add_argument("--large", action="store_true", help="also time a 24-MP image")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    m = args.mirror

    try:
        from faceanon.models.labels import visible_label_map
        import faceanon.raster  # noqa: F401 - needs the compiled extension
    except ImportError:
        visible_label_map = None

    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as cache:
        sources = BFMSources.from_root(m)
        t = time.perf_counter()
        load_bfm(sources, cache)
        rows.append(("BFM derived cache build (first use)", f"{time.perf_counter() - t:.3f} s"))

        t0 = time.perf_counter()
        det = CenterFace(m / "detectors/centerface.onnx")
        t1 = time.perf_counter()
        bfm = load_bfm(sources, cache)
        t2 = time.perf_counter()
        mean, std = load_param_stats(m / "3ddfa_v2/param_mean_std_62d_120x120.pkl")
        backend = LiteBackend(load_mb05(m / "3ddfa_v2/mb05_120x120.pth"), mean, std, bfm)
        t3 = time.perf_counter()
        rows += [("load CenterFace", f"{t1 - t0:.3f} s"), ("load BFM (cached, incl. source hashing)", f"{t2 - t1:.3f} s"),
                 ("load mb05 + stats", f"{t3 - t2:.3f} s"), ("model load total", f"{t3 - t0:.3f} s")]

        images = [(p.name, cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB))
                  for p in sorted(args.photos.glob("*")) if p.suffix.lower() in {".jpg", ".png"}]
        # warm-up: one pass creates the per-size OpenCV nets (first forward of a new size is slow)
        t = time.perf_counter()
        for _, rgb in images:
            for d in det.detect(rgb):
                backend.fit(rgb, d)
        rows.append((f"warm-up pass ({len(images)} images, new detector sizes)", f"{time.perf_counter() - t:.3f} s"))

        detect_s, fit_s, label_s, total_s = [], [], [], []
        for _ in range(args.repeat):
            for _, rgb in images:
                a = time.perf_counter()
                dets = det.detect(rgb)
                b = time.perf_counter()
                fits = [backend.fit(rgb, d) for d in dets]
                c = time.perf_counter()
                if visible_label_map is not None:
                    for f in fits:
                        visible_label_map(f, *rgb.shape[:2])
                e = time.perf_counter()
                detect_s.append(b - a)
                fit_s.append((c - b) / max(1, len(fits)))
                label_s.append((e - c) / max(1, len(fits)))
                total_s.append(e - a)
        med = statistics.median
        rows += [
            ("median per image: detect (CenterFace)", f"{med(detect_s) * 1000:.1f} ms"),
            ("median per face: fit (2 mb05 passes + dense vertices + pose)", f"{med(fit_s) * 1000:.1f} ms"),
            ("median per face: visible label map",
             f"{med(label_s) * 1000:.1f} ms" if visible_label_map else "rasterizer not built"),
            ("median per image: total", f"{med(total_s) * 1000:.1f} ms"),
        ]

        same = dict(images)["alison1.jpg"]
        ts = []
        for _ in range(5 * args.repeat):
            a = time.perf_counter()
            det.detect(same)
            ts.append(time.perf_counter() - a)
        rows.append(("median detect, same-size photos (cached net)", f"{med(ts) * 1000:.1f} ms"))

        if args.large:
            src = dict(images)["alison1.jpg"]
            big = cv2.resize(src, (4240, 5656), interpolation=cv2.INTER_CUBIC)  # 24 MP
            det.detect(big)  # warm-up of that blob size
            ts = []
            for _ in range(args.repeat):
                a = time.perf_counter()
                fits = [backend.fit(big, d) for d in det.detect(big)]
                if visible_label_map is not None:
                    for f in fits:
                        visible_label_map(f, *big.shape[:2])
                ts.append(time.perf_counter() - a)
            rows.append(("24-MP image (4240x5656), detect + fit + labels, median", f"{med(ts) * 1000:.1f} ms"))

        rows.append(("peak RSS", f"{peak_rss_mb():.0f} MB"))

    print(f"\nlite backend, torch {torch.__version__}, OpenCV {cv2.__version__}, threads={args.threads}, "
          f"{len(images)} images x {args.repeat}\n")
    print("| measure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
