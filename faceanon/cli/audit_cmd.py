"""``faceanon audit RUN_OUT``: can the original faces still be recognised in a run's outputs?

Thin command: the computations live in :mod:`faceanon.audit` (dlib is imported only when it runs, so
``faceanon --help`` works without the ``faceanon[audit]`` extra).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typing_extensions import Annotated

from faceanon.cli.app import app

_EPILOG = (
    "Examples:\n\n"
    "  faceanon audit out/\n\n"
    "  faceanon audit out/ --originals photos/ --fail-on-reid        (exit 3 if a face is re-identified beyond the eraser baseline)\n\n"
    "  faceanon audit out/ --fail-on-reid --raw-reid                 (exit 3 if a face is re-identified at all)\n\n"
    "  faceanon audit out/ --attackers dlib                          (dlib only, even if other recognizers are installed)\n\n"
    "  faceanon audit out/ --threshold 0.5 --json audit.json --csv audit.csv\n\n"
    "Needs the audit extra:  pip install 'faceanon\\[audit]'  (second recognizer, SFace:  'faceanon\\[audit-sface]')"
)


def _f(v: float, fmt: str = "{:.3f}") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def _pct(v: float) -> str:
    return _f(v if v is None or math.isnan(v) else 100.0 * v, "{:.1f}%")


def _dist(d: float, reid: Optional[bool], detected: Optional[bool] = True) -> str:
    if detected is False:
        return "[dim]not det.[/dim]"
    if d is None or math.isnan(d):
        return "-"
    return f"[bold red]{d:.3f}[/bold red]" if reid else f"[green]{d:.3f}[/green]"


def _console() -> Console:
    """stdout console; 200 columns when stdout is not a terminal (pipes, logs), so the table is not squeezed."""
    c = Console(highlight=False, soft_wrap=False)
    if not c.is_terminal:
        c = Console(highlight=False, soft_wrap=False, width=200)
    return c


def _reid_cell(r) -> str:
    """YES: re-identified beyond the eraser baseline (by some attacker); "eraser": re-identified, but the
    photo with the face painted grey is too; no; - (not computed)."""
    if r.reid_beyond_eraser or r.reid_beyond_eraser_by:
        by = r.reid_beyond_eraser_by
        return "[bold red]YES[/bold red]" + (f" [dim]({escape(by)})[/dim]" if by and by != "dlib" else "")
    if r.reidentified:
        return "[yellow]eraser[/yellow]"
    return "-" if r.reidentified is None else "[green]no[/green]"


def _yaw_cell(r) -> str:
    if r.pose_yaw is None or math.isnan(r.pose_yaw):
        return "-"
    return f"{r.pose_yaw:+.0f}°" + (" gt" if r.pose_source == "gt" else "")


def print_pose_table(result, console: Optional[Console] = None) -> None:
    """The summary by pose bucket (|yaw| below 30°, 30-60°, above 60°; ground-truth yaw where known)."""
    from faceanon.audit.pose import BUCKET_TITLES  # noqa: PLC0415

    console = console or _console()
    by = result.by_pose()
    table = Table(title="by pose (|yaw|; ground truth where the original has a .mat, else the run's fit)",
                  caption="re-id: strong attacker on the composite or the render; eraser: the same attacker "
                          "on the original with the face box painted grey; beyond eraser: re-identified "
                          "while the eraser is not (or via the render). Counts of faces.")
    table.add_column("pose", no_wrap=True)
    table.add_column("faces", justify="right")
    table.add_column("yaw\nfrom gt", justify="right")
    for name in result.attackers:
        table.add_column(f"{name}\nre-id", justify="right")
        table.add_column(f"{name}\neraser", justify="right")
        table.add_column(f"{name}\nbeyond", justify="right")
    if len(result.attackers) > 1:
        table.add_column("any\nbeyond", justify="right")
    table.add_column("detection\nkept", justify="right", no_wrap=True)
    table.add_column("eye residual\nin place / moved\n(chance)", justify="right", no_wrap=True)
    table.add_column("mouth\nresidual", justify="right")
    table.add_column("skin mean-colour\nΔE00 median", justify="right")
    for bucket, fig in by.items():
        title = "all" if bucket == "all" else BUCKET_TITLES[bucket]
        cells = [f"[bold]{title}[/bold]" if bucket == "all" else title, str(fig["faces"]), str(fig["gt_pose"])]
        for name in result.attackers:
            beyond = fig[f"{name}_reid_beyond_eraser"]
            cells += [str(fig[f"{name}_reid"]), str(fig[f"{name}_eraser_reid"]),
                      f"[bold red]{beyond}[/bold red]" if beyond else f"[green]{beyond}[/green]"]
        if len(result.attackers) > 1:
            n = fig["reid_beyond_eraser_any"]
            cells.append(f"[bold red]{n}[/bold red]" if n else f"[green]{n}[/green]")
        kept = fig["detection_kept"]
        cells += [f"{_pct(kept)} ({fig['detected_both']}/{fig['detected_original']})",
                  f"{_pct(fig['eye_residual'])} / {_pct(fig['eye_residual_moved'])} ({_pct(fig['eye_residual_chance'])})",
                  _pct(fig["mouth_residual"]),
                  _f(fig["skin_mean_colour_de_median"], "{:.2f}")]
        table.add_row(*cells)
    console.print(table)


def print_result(result, console: Optional[Console] = None) -> None:
    """The audit table, its notes, the table by pose and a summary line on stdout."""
    console = console or _console()
    table = Table(title=f"faceanon audit - re-identified when the dlib distance < {result.threshold:g}",
                  caption="strong: aligned with the run's landmarks; weak: dlib's own detector; eraser: strong "
                          "attacker on the original with the face box grey. re-id: YES beyond the eraser, "
                          "'eraser' when the eraser image is re-identified too. residual: share of pixels with "
                          f"ΔE00 < {result.residual_tolerance:g}, in place / at the best shift within 0.15 x face size "
                          "(the pose table adds its chance level: the best shift just beyond that radius)")
    table.add_column("image", no_wrap=True, overflow="ellipsis", max_width=32)
    table.add_column("face", justify="right")
    table.add_column("yaw", justify="right", no_wrap=True)
    for col in ("strong\ncomposite", "strong\nrender", "weak\ncomposite", "weak\nrender", "eraser"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("re-id", no_wrap=True)
    table.add_column("eye residual\nin place/moved", justify="right", no_wrap=True)
    table.add_column("mouth\nresidual", justify="right", no_wrap=True)
    table.add_column("skin ΔE00\nmean/median/colour", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    notes = []
    for r in result.rows:
        status = {"ok": "[green]ok[/green]", "error": "[red]error[/red]", "run_failed": "[yellow]run failed[/yellow]",
                  "missed_face": "[bold red]missed face[/bold red]"}.get(r.status, escape(r.status))
        face = "-" if r.face < 0 else str(r.face)
        text = "; ".join(x for x in (r.error, r.render_note, r.pose_note) if x)
        if text:
            notes.append(f"{escape(r.stem)} face {face}: {escape(text)}")
            status += f" [dim]({len(notes)})[/dim]"
        table.add_row(
            escape(r.stem), face, _yaw_cell(r),
            _dist(r.strong_composite_dist, r.strong_composite_reid),
            _dist(r.strong_render_dist, r.strong_render_reid),
            _dist(r.weak_composite_dist, r.weak_composite_reid, r.weak_composite_detected),
            _dist(r.weak_render_dist, r.weak_render_reid, r.weak_render_detected),
            _dist(r.eraser_dist, r.eraser_reid),
            _reid_cell(r), f"{_pct(r.eye_residual)} / {_pct(r.eye_residual_moved)}", _pct(r.mouth_residual),
            f"{_f(r.skin_de_mean, '{:.2f}')} / {_f(r.skin_de_median, '{:.2f}')} / {_f(r.skin_mean_colour_de, '{:.2f}')}",
            status,
        )
    console.print(table)
    for i, n in enumerate(notes, 1):
        console.print(f"[dim]({i})[/dim] {n}")
    if result.face_rows:
        print_pose_table(result, console)
    s = result.summary()
    colour = "red" if s["reid_beyond_eraser"] else "green"
    console.print(
        f"[{colour}]audit ({', '.join(s['attackers'])}): {s['faces']} face(s) in {s['images']} image(s); "
        f"re-identified beyond the eraser baseline {s['reid_beyond_eraser']} (raw: dlib strong {s['reidentified']}, "
        f"eraser {s['eraser_reidentified']}); detection kept {_pct(s['detection_kept'])}; "
        f"eye residual {_pct(s['mean_eye_residual'])} (moved {_pct(s['mean_eye_residual_moved'])}, chance "
        f"{_pct(s['mean_eye_residual_chance'])}); "
        f"skin mean-colour ΔE00 median {_f(s['median_skin_mean_colour_de'], '{:.2f}')}; far pixels changed "
        f"max {_pct(s['far_changed_max'])}; errors {s['errors']}; missed faces {s['missed_faces']}[/{colour}]",
        soft_wrap=True,
    )
    if result.json_path:
        console.print(f"wrote {escape(result.json_path)}, {escape(result.csv_path)} and {escape(result.attacks_csv_path)}")


def audit_and_report(run_out: Path, originals: Optional[Path] = None, threshold: float = 0.6, *,
                     fail_on_reid: bool = False, json_path: Optional[Path] = None, csv_path: Optional[Path] = None,
                     residual_tolerance: float = 2.0, raw_reid: bool = False, attackers: Optional[str] = None) -> int:
    """Run the audit, write audit.json/audit.csv/audit_attacks.csv, print the tables; return the exit code
    (0, 1 or 3). attackers: "dlib,sface"-style names, None = every installed attacker.

    For ``faceanon run --audit``: call this and combine its code with the run's own.
    """
    from faceanon.audit import attackers as _attackers
    from faceanon.audit import run_audit
    from faceanon.audit.recognizer import check_available

    check_available()  # one line + install hint without the extra, before any work
    names = _attackers.resolve(attackers)
    extra = [_attackers.load(n) for n in names if n != "dlib"]  # fails here, with its extra named, if missing
    err = Console(stderr=True, highlight=False)

    def progress(i: int, n: int, stem: str) -> None:
        err.print(f"[dim]audit {i + 1}/{n}: {escape(stem)}[/dim]")

    result = run_audit(run_out, originals, threshold, residual_tolerance=residual_tolerance, write=True,
                       json_path=json_path, csv_path=csv_path, progress=progress, attackers=extra)
    print_result(result)
    return result.exit_code(fail_on_reid, raw=raw_reid)


@app.command("audit", epilog=_EPILOG)
def audit(
    run_out: Annotated[Path, typer.Argument(metavar="RUN_OUT", help="The OUT folder of `faceanon run IN OUT`.")],
    originals: Annotated[Optional[Path], typer.Option(
        "--originals", metavar="IN", help="Folder of the original photos (default: the paths in RUN_OUT/report.json).")] = None,
    threshold: Annotated[float, typer.Option(
        "--threshold", min=0.0, help="dlib descriptor distance below which a face counts as re-identified.")] = 0.6,
    fail_on_reid: Annotated[bool, typer.Option(
        "--fail-on-reid", help="Exit 3 if any face is re-identified by a strong attacker beyond the eraser baseline.")] = False,
    json_path: Annotated[Optional[Path], typer.Option(
        "--json", metavar="PATH", help="Where to write the JSON rows (default RUN_OUT/audit.json).")] = None,
    csv_path: Annotated[Optional[Path], typer.Option(
        "--csv", metavar="PATH", help="Where to write the CSV rows (default RUN_OUT/audit.csv).")] = None,
    residual_tolerance: Annotated[float, typer.Option(
        "--residual-tolerance", min=0.0, help="ΔE00 under which a pixel counts as surviving (residuals, far pixels).")] = 2.0,
    raw_reid: Annotated[bool, typer.Option(
        "--raw-reid", help="With --fail-on-reid: count every strong re-identification, even one the eraser "
                           "baseline also gets.")] = False,
    attackers: Annotated[Optional[str], typer.Option(
        "--attackers", metavar="NAMES", help="Face recognizers to attack with, comma-separated (dlib always "
                                             "included); default: every installed one.")] = None,
) -> None:
    """Measure how re-identifiable the faces of a run output are (dlib 128-D face descriptors, and other recognizers if installed).

    For every face: the recognizer distance from the original to the anonymized photo and to the frontal render, for a strong attacker (aligned with the run's own 68 landmarks) and a weak one (dlib's own detector); the eraser baseline (the strong attacker against the original with the face box painted grey: what hair, ears and outline alone give away); the share of eye and mouth pixels left unchanged (ΔE00 < 2), for the eyes also at the best shift within 0.15 x face size (an eye a warp moved); the CIEDE2000 difference of the skin, per pixel and of its mean colour; the share of pixels farther than half a face size from every face that changed; whether dlib still detects the face. A table by head pose (|yaw| below 30°, 30-60°, above 60°; ground-truth yaw from an AFLW2000-3D/300W-LP .mat next to the original, else the run's fit) follows.

    Writes RUN_OUT/audit.json, RUN_OUT/audit.csv (one row per face) and RUN_OUT/audit_attacks.csv (one row per face and recognizer). Exit 0; 3 with --fail-on-reid when a face is re-identified beyond the eraser baseline by any recognizer (--raw-reid: re-identified at all); 1 when a face could not be audited.
    """  # noqa: E501
    code = audit_and_report(run_out, originals, threshold, fail_on_reid=fail_on_reid, json_path=json_path,
                            csv_path=csv_path, residual_tolerance=residual_tolerance, raw_reid=raw_reid,
                            attackers=attackers)
    if code:
        # SystemExit, not typer.Exit/click Exit: typer >= 0.2x only maps its own Exit (a RuntimeError, which
        # the central handler currently reports as an internal error), and click's Exit becomes exit code 1
        raise SystemExit(code)
