"""Privacy benchmark of `faceanon run` outputs: one markdown table row per run output folder.

Usage:
    python bench/bench_privacy.py OUT [OUT ...] [--originals IN] [--threshold 0.6] [--label TEXT] [--header]
                                  [--reuse] [--by-pose] [--attackers dlib,sface]

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

--by-pose prints instead, for each OUT, a heading and one table row per pose bucket (|yaw| below 30°,
30-60°, above 60°; ground-truth yaw where the original has an AFLW2000-3D/300W-LP .mat) and "all":

| pose | faces | yaw from gt | <attacker> re-id / eraser / beyond (per attacker) | any beyond | detection kept |
  eye residual in place | moved | chance | mouth residual | skin mean-colour ΔE00 median |

* re-id: faces the strong attacker re-identifies on the composite or the render; eraser: faces it
  re-identifies on the original with the face box painted grey; beyond: re-identified while the eraser is
  not, or via the render (the figure the project's target is 0 for); any beyond: by some attacker;
* detection kept: of the faces dlib's detector finds in the original, the share it still finds in the
  anonymized photo;
* eye residual in place / moved / chance: share of eye pixels with ΔE00 < 2 at their place / at the best
  shift within 0.15 x face size / the same search just beyond that radius (the level reached by
  coincidence);
* skin mean-colour ΔE00: CIEDE2000 between the mean Lab colour of the skin in original and anonymized
  photo, median over faces. A last line gives the share of far pixels changed (max and mean over images).

--attackers picks the recognizers (default: every installed one; sface needs faceanon[audit-sface]).
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

#: report.json option keys that are not `faceanon run` flags, or not worth naming in a table row
_NOT_FLAGS = ("model", "outputs", "vis", "max_pixels", "lossless", "strict", "supersample", "renderer", "blend_px")


HEADER = ("| flags | faces | re-id strong composite | re-id strong render | re-id weak composite | weak detected "
          "| mean dist strong | mean dist weak | eye residual | mouth residual | skin ΔE00 mean | skin ΔE00 median |")


def flags_of(out: Path) -> str:
    """The flags of the run in ``out`` that differ from `faceanon run`'s defaults (faceanon/options.py)."""
    from dataclasses import fields

    from faceanon.options import RunOptions
    from faceanon.stages.privacy import PRIVACY_LEVELS

    try:
        opts = json.loads((out / "report.json").read_text(encoding="utf-8")).get("options", {})
    except (OSError, ValueError):
        return out.name
    parts = [f"--model {opts.get('model', '?')}"]
    level = PRIVACY_LEVELS.get(str(opts.get("privacy")), PRIVACY_LEVELS["standard"])
    if "brows" in opts:  # a report of an earlier release: margin and brows resolved from --privacy
        if opts.get("margin") is not None and abs(float(opts["margin"]) - level.margin) > 1e-9:
            parts.append(f"--margin {opts['margin']}")
        if bool(opts["brows"]) != level.brows:
            parts.append("--keep-brows")
        opts = {k: v for k, v in opts.items() if k not in ("margin", "brows")}
    defaults = RunOptions()
    for f in fields(RunOptions):
        if f.name in _NOT_FLAGS or f.name not in opts or opts[f.name] == getattr(defaults, f.name):
            continue
        v, flag = opts[f.name], "--" + f.name.replace("_", "-")
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


def audit_of(out: Path, originals, threshold: float, reuse: bool, attackers=None):
    """The AuditResult of one run output: re-audited, or read back from OUT/audit.json with --reuse."""
    from faceanon.audit import attackers as _att
    from faceanon.audit import run_audit
    from faceanon.audit.core import load_audit

    if reuse and (out / "audit.json").is_file():
        return load_audit(out / "audit.json")
    extra = [_att.load(n) for n in _att.resolve(attackers) if n != "dlib"]
    res = run_audit(out, originals, threshold, attackers=extra)
    if res.summary()["errors"]:
        print(f"warning: {out}: {res.summary()['errors']} face(s) could not be audited (see {out / 'audit.csv'})",
              file=sys.stderr)
    return res


def summarise(out: Path, originals, threshold: float, reuse: bool, attackers=None) -> dict:
    return audit_of(out, originals, threshold, reuse, attackers).summary()


def pose_header(attackers) -> str:
    cells = ["pose", "faces", "yaw from gt"]
    for a in attackers:
        cells += [f"{a} re-id", f"{a} eraser", f"{a} beyond eraser"]
    if len(attackers) > 1:
        cells.append("any beyond eraser")
    cells += ["detection kept", "eye residual in place", "eye residual moved", "eye residual chance",
              "mouth residual", "skin mean-colour ΔE00 median"]
    return "| " + " | ".join(cells) + " |\n" + "|" + "---|" * len(cells)


def pose_rows(res) -> list:
    from faceanon.audit.pose import BUCKET_TITLES

    lines = []
    for bucket, fig in res.by_pose().items():
        title = "**all**" if bucket == "all" else BUCKET_TITLES[bucket]
        cells = [title, str(fig["faces"]), str(fig["gt_pose"])]
        for a in res.attackers:
            cells += [str(fig[f"{a}_reid"]), str(fig[f"{a}_eraser_reid"]), str(fig[f"{a}_reid_beyond_eraser"])]
        if len(res.attackers) > 1:
            cells.append(str(fig["reid_beyond_eraser_any"]))
        cells += [f"{pct(fig['detection_kept'])} ({fig['detected_both']}/{fig['detected_original']})",
                  pct(fig["eye_residual"]), pct(fig["eye_residual_moved"]), pct(fig["eye_residual_chance"]),
                  pct(fig["mouth_residual"]), num(fig["skin_mean_colour_de_median"], 2)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outs", nargs="+", type=Path, metavar="OUT", help="run output folders")
    ap.add_argument("--originals", type=Path, default=None, help="folder of the originals (default: report.json)")
    ap.add_argument("--threshold", type=float, default=0.6)
    ap.add_argument("--label", action="append", default=None, help="flags column text, once per OUT")
    ap.add_argument("--header", action="store_true", help="print the table header first")
    ap.add_argument("--reuse", action="store_true", help="summarise an existing OUT/audit.json instead of re-auditing")
    ap.add_argument("--by-pose", action="store_true", help="one markdown table per OUT, one row per pose bucket")
    ap.add_argument("--attackers", default=None, help="recognizers, comma-separated (default: every installed one)")
    args = ap.parse_args(argv)
    if args.label is not None and len(args.label) != len(args.outs):
        ap.error("give --label once per OUT (or not at all)")
    if args.by_pose:
        for i, out in enumerate(args.outs):
            label = args.label[i] if args.label else flags_of(out)
            res = audit_of(out, args.originals, args.threshold, args.reuse, args.attackers)
            s = res.summary()
            print(f"### {label}\n")
            print(pose_header(res.attackers))
            print("\n".join(pose_rows(res)))
            print(f"\nFar pixels (farther than 0.5 x face size from every face) changed: max {pct(s['far_changed_max'])}, "
                  f"mean {pct(s['far_changed_mean'])} over {s['images']} images.\n", flush=True)
        return 0
    if args.header:
        print(HEADER)
        print("|" + "---|" * HEADER.count(" | ") + "---|")
    for i, out in enumerate(args.outs):
        label = args.label[i] if args.label else flags_of(out)
        print(markdown_row(label, summarise(out, args.originals, args.threshold, args.reuse, args.attackers)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
