"""Console lines about input formats (see :mod:`faceanon.io.formats`): per-file warnings, the
end-of-run notes ("3 files: HEIC/HEIF input written as JPEG ...") and the files that were not
images ("skipped 2 files (not images): 1 .txt, 1 .xyz"), so that nothing in IN passes silently."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable

from rich.markup import escape

from faceanon.cli.batch import err_console

WARNING = "warning: "


def print_warnings(path: Path | str, notes: Iterable[str]) -> None:
    """One ``warning <file>: <text>`` line per warning note of a processed file."""
    for note in notes or []:
        if str(note).startswith(WARNING):
            err_console.print(f"[yellow]warning[/yellow] {escape(str(path))}: {escape(str(note)[len(WARNING):])}")


def print_run_notes(reports: Iterable, inp: Path, recursive: bool) -> list[str]:
    """After the summary: each non-warning note once with its file count, then the skipped files
    of IN. Returns the printed lines (without markup)."""
    from faceanon.io.formats import describe_skipped, skipped_files

    lines = []
    counts = Counter(n for r in reports for n in (getattr(r, "notes", None) or []) if not str(n).startswith(WARNING))
    for note, n in counts.items():
        lines.append(f"note: {note} ({n} file{'s' if n != 1 else ''})")
    warned = sum(any(str(n).startswith(WARNING) for n in (getattr(r, "notes", None) or [])) for r in reports)
    if warned:
        lines.append(f"warning: {warned} file{'s' if warned != 1 else ''} with warnings (see the lines above "
                     "and report.json)")
    skipped = describe_skipped(skipped_files(inp, recursive)) if Path(inp).is_dir() else None
    if skipped:
        lines.append(skipped)
    for line in lines:
        colour = "yellow" if line.startswith(("warning", "skipped")) else "cyan"
        err_console.print(f"[{colour}]{escape(line)}[/{colour}]")
    return lines
