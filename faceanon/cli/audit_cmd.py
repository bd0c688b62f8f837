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
    "  faceanon audit out/ --originals photos/ --fail-on-reid        (exit 3 if a face is re-identified)\n\n"
    "  faceanon audit out/ --threshold 0.5 --json audit.json --csv audit.csv\n\n"
    "Needs the audit extra:  pip install 'faceanon\\[audit]'"
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
    """stdout console; 160 columns when stdout is not a terminal (pipes, logs), so the table is not squeezed."""
    c = Console(highlight=False, soft_wrap=False)
    if not c.is_terminal:
        c = Console(highlight=False, soft_wrap=False, width=160)
    return c


def print_result(result, console: Optional[Console] = None) -> None:
    """The audit table, its notes and a summary line on stdout."""
    console = console or _console()
    table = Table(title=f"faceanon audit - re-identified when the dlib distance < {result.threshold:g}",
                  caption="strong: aligned with the run's landmarks; weak: dlib's own detector. "
                          "residual: share of pixels with ΔE00 < " + f"{result.residual_tolerance:g}")
    table.add_column("image", no_wrap=True, overflow="ellipsis", max_width=40)
    table.add_column("face", justify="right")
    for col in ("strong\ncomposite", "strong\nrender", "weak\ncomposite", "weak\nrender"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("re-id", no_wrap=True)
    table.add_column("eye\nresidual", justify="right", no_wrap=True)
    table.add_column("mouth\nresidual", justify="right", no_wrap=True)
    table.add_column("skin ΔE00\nmean/median", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    notes = []
    for r in result.rows:
        status = {"ok": "[green]ok[/green]", "error": "[red]error[/red]", "run_failed": "[yellow]run failed[/yellow]",
                  "missed_face": "[bold red]missed face[/bold red]"}.get(r.status, escape(r.status))
        face = "-" if r.face < 0 else str(r.face)
        text = "; ".join(x for x in (r.error, r.render_note) if x)
        if text:
            notes.append(f"{escape(r.stem)} face {face}: {escape(text)}")
            status += f" [dim]({len(notes)})[/dim]"
        reid = "-" if r.reidentified is None else ("[bold red]YES[/bold red]" if r.reidentified else "[green]no[/green]")
        table.add_row(
            escape(r.stem), face,
            _dist(r.strong_composite_dist, r.strong_composite_reid),
            _dist(r.strong_render_dist, r.strong_render_reid),
            _dist(r.weak_composite_dist, r.weak_composite_reid, r.weak_composite_detected),
            _dist(r.weak_render_dist, r.weak_render_reid, r.weak_render_detected),
            reid, _pct(r.eye_residual), _pct(r.mouth_residual),
            f"{_f(r.skin_de_mean, '{:.2f}')} / {_f(r.skin_de_median, '{:.2f}')}", status,
        )
    console.print(table)
    for i, n in enumerate(notes, 1):
        console.print(f"[dim]({i})[/dim] {n}")
    s = result.summary()
    colour = "red" if s["reidentified"] else "green"
    console.print(
        f"[{colour}]audit: {s['faces']} face(s) in {s['images']} image(s); re-identified {s['reidentified']} "
        f"(strong {_pct(s['reid_rate_strong'])}, weak composite {_pct(s['reid_rate_weak_composite'])}); "
        f"mean strong distance {_f(s['mean_strong_composite_dist'])}; eye residual {_pct(s['mean_eye_residual'])}; "
        f"skin ΔE00 {_f(s['mean_skin_de'], '{:.2f}')}; errors {s['errors']}; missed faces {s['missed_faces']}[/{colour}]",
        soft_wrap=True,
    )
    if result.json_path:
        console.print(f"wrote {escape(result.json_path)} and {escape(result.csv_path)}")


def audit_and_report(run_out: Path, originals: Optional[Path] = None, threshold: float = 0.6, *,
                     fail_on_reid: bool = False, json_path: Optional[Path] = None, csv_path: Optional[Path] = None,
                     residual_tolerance: float = 2.0) -> int:
    """Run the audit, write audit.json/audit.csv, print the table; return the exit code (0, 1 or 3).

    For ``faceanon run --audit``: call this and combine its code with the run's own.
    """
    from faceanon.audit import run_audit
    from faceanon.audit.recognizer import check_available

    check_available()  # one line + install hint without the extra, before any work
    err = Console(stderr=True, highlight=False)

    def progress(i: int, n: int, stem: str) -> None:
        err.print(f"[dim]audit {i + 1}/{n}: {escape(stem)}[/dim]")

    result = run_audit(run_out, originals, threshold, residual_tolerance=residual_tolerance, write=True,
                       json_path=json_path, csv_path=csv_path, progress=progress)
    print_result(result)
    return result.exit_code(fail_on_reid)


@app.command("audit", epilog=_EPILOG)
def audit(
    run_out: Annotated[Path, typer.Argument(metavar="RUN_OUT", help="The OUT folder of `faceanon run IN OUT`.")],
    originals: Annotated[Optional[Path], typer.Option(
        "--originals", metavar="IN", help="Folder of the original photos (default: the paths in RUN_OUT/report.json).")] = None,
    threshold: Annotated[float, typer.Option(
        "--threshold", min=0.0, help="dlib descriptor distance below which a face counts as re-identified.")] = 0.6,
    fail_on_reid: Annotated[bool, typer.Option(
        "--fail-on-reid", help="Exit 3 if any face is re-identified by the strong attacker.")] = False,
    json_path: Annotated[Optional[Path], typer.Option(
        "--json", metavar="PATH", help="Where to write the JSON rows (default RUN_OUT/audit.json).")] = None,
    csv_path: Annotated[Optional[Path], typer.Option(
        "--csv", metavar="PATH", help="Where to write the CSV rows (default RUN_OUT/audit.csv).")] = None,
    residual_tolerance: Annotated[float, typer.Option(
        "--residual-tolerance", min=0.0, help="ΔE00 under which an eye/mouth pixel counts as surviving.")] = 2.0,
) -> None:
    """Measure how re-identifiable the faces of a run output are (dlib 128-D face descriptors).

    For every face: the dlib distance from the original to the anonymized photo and to the frontal render, for a strong attacker (aligned with the run's own 68 landmarks) and a weak one (dlib's own detector); the share of eye and mouth pixels left unchanged (ΔE00 < 2); the CIEDE2000 difference of the skin.

    Writes RUN_OUT/audit.json and RUN_OUT/audit.csv (same rows). Exit 0; 3 with --fail-on-reid when a face is re-identified; 1 when a face could not be audited.
    """  # noqa: E501
    code = audit_and_report(run_out, originals, threshold, fail_on_reid=fail_on_reid, json_path=json_path,
                            csv_path=csv_path, residual_tolerance=residual_tolerance)
    if code:
        # SystemExit, not typer.Exit/click Exit: typer >= 0.2x only maps its own Exit (a RuntimeError, which
        # the central handler currently reports as an internal error), and click's Exit becomes exit code 1
        raise SystemExit(code)
