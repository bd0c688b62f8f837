"""Privacy benchmark of `faceanon run` outputs: one markdown table row per run output folder.

Usage:
    python bench/bench_privacy.py OUT [OUT ...] [--originals IN] [--threshold 0.6] [--label TEXT] [--header]
                                  [--reuse]

For each OUT (made by `faceanon run IN OUT <flags>`), runs `faceanon.audit.run_audit` (which also writes
OUT/audit.json and OUT/audit.csv) - or, with --reuse, reads an existing OUT/audit.json - and prints:

| flags | faces | re-id strong composite | re-id strong render | re-id weak composite | weak detected |
  mean dist strong | mean dist weak | eye residual | mouth residual | skin ΔE00 mean | skin ΔE00 median |

* re-id: share of the audited faces whose dlib descriptor distance to the original is below the threshold
  (strong attacker: aligned with the run's landmarks; weak attacker: dlib's own detector, "not detected"
  counting as not re-identified); weak detected: share of anonymized faces dlib still detects;
* mean dist: mean distance from the original to the anonymized photo (strong / weak);
* residuals: mean share of eye / lip pixels with ΔE00 < 2 to the original (0 % = fully replaced);
* skin ΔE00: mean over faces of the per-face mean / median CIEDE2000 difference on the skin (small = kept).

The flags column is --label, else the run's options from OUT/report.json that differ from `faceanon run`'s
defaults (model always shown). Needs the audit extra: pip install 'faceanon[audit]'.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# `faceanon run` defaults, to name only the flags a run changed
RUN_DEFAULTS = {"alpha": 1.0, "keep_pose": False, "keep_mouth": False, "margin": 0.15, "feather_px": 3.0,
                "tex_size": 2048, "img_size": 1024, "background": "transparent", "max_faces": 0,
                "min_face_size": 40, "threshold": None}

HEADER = ("| flags | faces | re-id strong composite | re-id strong render | re-id weak composite | weak detected "
          "| mean dist strong | mean dist weak | eye residual | mouth residual | skin ΔE00 mean | skin ΔE00 median |")


def flags_of(out: Path) -> str:
    try:
        opts = json.loads((out / "report.json").read_text(encoding="utf-8")).get("options", {})
    except (OSError, ValueError):
        return out.name
    parts = [f"--model {opts.get('model', '?')}"]
    for k, default in RUN_DEFAULTS.items():
        if k in opts and opts[k] != default:
            v = opts[k]
            flag = "--" + k.replace("_", "-")
            parts.append(flag if v is True else f"{flag} {v}")
    return " ".join(parts)


def pct(v: float) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f} %"


def num(v: float, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def markdown_row(label: str, s: dict) -> str:
    cells = [label, str(s["faces"]), pct(s["reid_rate_strong_composite"]), pct(s["reid_rate_strong_render"]),
             pct(s["reid_rate_weak_composite"]), pct(s["weak_detect_rate_composite"]),
             num(s["mean_strong_composite_dist"]), num(s["mean_weak_composite_dist"]),
             pct(s["mean_eye_residual"]), pct(s["mean_mouth_residual"]),
             num(s["mean_skin_de"], 2), num(s["median_skin_de"], 2)]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def summarise(out: Path, originals, threshold: float, reuse: bool) -> dict:
    from faceanon.audit import AuditResult, read_audit_json, run_audit

    if reuse and (out / "audit.json").is_file():
        data = json.loads((out / "audit.json").read_text(encoding="utf-8"))
        res = AuditResult(run_out=str(out), threshold=data["threshold"], residual_tolerance=data["residual_tolerance"],
                          rows=read_audit_json(out / "audit.json"))
    else:
        res = run_audit(out, originals, threshold)
    s = res.summary()
    if s["errors"]:
        print(f"warning: {out}: {s['errors']} face(s) could not be audited (see {out / 'audit.csv'})", file=sys.stderr)
    return s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outs", nargs="+", type=Path, metavar="OUT", help="run output folders")
    ap.add_argument("--originals", type=Path, default=None, help="folder of the originals (default: report.json)")
    ap.add_argument("--threshold", type=float, default=0.6)
    ap.add_argument("--label", action="append", default=None, help="flags column text, once per OUT")
    ap.add_argument("--header", action="store_true", help="print the table header first")
    ap.add_argument("--reuse", action="store_true", help="summarise an existing OUT/audit.json instead of re-auditing")
    args = ap.parse_args(argv)
    if args.label is not None and len(args.label) != len(args.outs):
        ap.error("give --label once per OUT (or not at all)")
    if args.header:
        print(HEADER)
        print("|" + "---|" * HEADER.count(" | ") + "---|")
    for i, out in enumerate(args.outs):
        label = args.label[i] if args.label else flags_of(out)
        print(markdown_row(label, summarise(out, args.originals, args.threshold, args.reuse)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
