"""Shared machinery of the batch commands: inputs, OUT-vs-IN checks, per-file isolation, progress.

A failing file never stops a batch: it gets exactly one line on stderr naming the file and the
reason, the rest completes, and the command exits 1 at the end if anything failed.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from faceanon.cli.app import STATE
from faceanon.errors import FaceanonError
from faceanon.runner.core import RunEvents
from faceanon.runner.inputs import check_out_not_in, collect_inputs  # noqa: F401 (used by the stage commands)

err_console = Console(stderr=True, soft_wrap=True, highlight=False)


@dataclass
class Outcome:
    path: Path
    stem: str
    ok: bool
    reason: str = ""
    seconds: float = 0.0


def progress_bar() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )


def print_failure(path: Path, reason: str) -> None:
    """The one line of a failed file: ``failed <path>: <reason>``."""
    err_console.print(f"[red]failed[/red] {escape(str(path))}: {escape(reason)}")


def report_failure(path: Path, exc: BaseException) -> str:
    """Print one line for a failed file and return the reason text (the path is not repeated in it)."""
    from faceanon.runner.state import failure_reason

    reason = _with_traceback(failure_reason(path, exc), exc)
    print_failure(path, reason)
    return reason


def _with_traceback(reason: str, exc: BaseException) -> str:
    """An unexpected error (not a FaceanonError): its traceback is printed with --debug, else the
    reason says how to get it."""
    if not isinstance(exc, FaceanonError):
        if STATE["debug"]:
            tb = getattr(exc, "remote_traceback", None) or "".join(traceback.format_exception(exc))
            err_console.print(escape(tb))
        else:
            reason += " (rerun with --debug for the traceback)"
    return reason


def run_batch(items: Iterable[tuple[Path, str]], process: Callable[[Path, str], None], *, label: str) -> list[Outcome]:
    """Run ``process(path, stem)`` for every item with a progress bar; failures are isolated."""
    items = list(items)
    outcomes: list[Outcome] = []
    with progress_bar() as progress:
        task = progress.add_task(label, total=len(items))
        for path, stem in items:
            progress.update(task, description=f"{label} {escape(path.name)}")
            t0 = time.perf_counter()
            try:
                process(path, stem)
                outcomes.append(Outcome(path, stem, True, seconds=time.perf_counter() - t0))
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # isolate every per-file failure
                reason = report_failure(path, exc)  # with --debug it also prints the traceback
                outcomes.append(Outcome(path, stem, False, reason, time.perf_counter() - t0))
            progress.advance(task)
        progress.update(task, description=label)
    return outcomes


def finish(outcomes: list[Outcome], what: str) -> int:
    """Print the closing summary line; return the exit code (1 if any file failed)."""
    ok = sum(o.ok for o in outcomes)
    failed = len(outcomes) - ok
    colour = "green" if failed == 0 else "red"
    err_console.print(f"[{colour}]{what}: {ok} ok, {failed} failed[/{colour}]")
    return 0 if failed == 0 else 1


class RunDisplay(RunEvents):
    """``faceanon run``'s view of a :class:`~faceanon.runner.Runner`: a progress bar (images, and what
    the run is doing now), one line per failed file, notes above the bar."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.overall = self.current = None

    def note(self, text: str) -> None:
        err_console.print(escape(text))

    def begin(self, total: int, done: int) -> None:
        self.progress = progress_bar()
        self.progress.start()
        self.overall = self.progress.add_task("images", total=total, completed=done)
        self.current = self.progress.add_task("loading models", total=None)

    def status(self, text: str) -> None:
        if self.progress is not None:
            self.progress.update(self.current, description=escape(text))

    def stage(self, path: Path, name: str) -> None:
        self.status(f"{name}: {path.name}")

    def image_done(self, report) -> None:
        from faceanon.cli.formats_cli import print_warnings

        print_warnings(report.input, getattr(report, "notes", None))  # e.g. a DICOM's burned-in annotation
        if self.progress is not None:
            self.progress.advance(self.overall)

    def image_failed(self, path: Path, reason: str, exc: BaseException | None) -> None:
        print_failure(path, reason if exc is None else _with_traceback(reason, exc))

    def end(self) -> None:
        if self.progress is not None:
            self.progress.update(self.current, total=1, completed=1)
            self.progress.stop()
            self.progress = None


def print_run_summary(reports) -> None:
    """The closing table of ``faceanon run`` (no error column: each failure already had its one line
    above, and its reason is in report.json) and the counts."""
    from rich.table import Table

    table = Table(title="faceanon run", show_lines=False)
    for col in ("image", "status", "faces", "seconds"):
        table.add_column(col)
    for r in reports:
        colour = {"ok": "green", "skipped": "cyan", "failed": "red"}.get(r.status, "white")
        table.add_row(escape(Path(r.input).name), f"[{colour}]{r.status}[/{colour}]", str(r.faces),
                      f"{r.seconds.get('total', 0):.2f}" if r.seconds else "-")
    err_console.print(table)
    ok = sum(r.status == "ok" for r in reports)
    sk = sum(r.status == "skipped" for r in reports)
    fl = sum(r.status == "failed" for r in reports)
    colour = "green" if fl == 0 else "red"
    err_console.print(f"[{colour}]run: {ok} ok, {sk} skipped, {fl} failed[/{colour}]")
