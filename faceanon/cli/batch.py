"""Shared machinery of the batch commands: inputs, OUT-vs-IN checks, per-file isolation, progress.

A failing file never stops a batch: it gets exactly one line on stderr naming the file and the
reason, the rest completes, and the command exits 1 at the end if anything failed.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from faceanon.cli.app import STATE
from faceanon.errors import FaceanonError, UsageError

err_console = Console(stderr=True, soft_wrap=True, highlight=False)


@dataclass
class Outcome:
    path: Path
    stem: str
    ok: bool
    reason: str = ""
    seconds: float = 0.0
    data: dict = field(default_factory=dict)


def check_out_not_in(inp: Path, out: Path) -> None:
    """Refuse IN and OUT inside one another: outputs must never land among the inputs (a later
    recursive run would take them as photos) nor overwrite them (IN inside OUT)."""
    i = inp.resolve()
    o = out.resolve()
    if inp.is_dir() and (o == i or i in o.parents):
        raise UsageError(f"OUT ({out}) is inside IN ({inp})", "choose an output folder outside the input folder")
    if o in i.parents:
        raise UsageError(f"IN ({inp}) is inside OUT ({out})",
                         "outputs could overwrite the inputs: choose an output folder that does not contain them")


def collect_inputs(inp: Path, recursive: bool) -> list[tuple[Path, str]]:
    """The (path, output stem) pairs of an input file or folder; raises UsageError when there are none."""
    from faceanon.io.images import IMAGE_EXTENSIONS, list_images, output_stems

    if not inp.exists():
        raise UsageError(f"input not found: {inp}")
    if inp.is_file():
        paths = [inp]
        root = inp.parent
    else:
        paths = list_images(inp, recursive=recursive)
        root = inp
    if not paths:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise UsageError(f"no images in {inp}", f"supported: {exts} (any letter case); use --recursive for subfolders")
    stems = output_stems(paths, root)
    return [(p, stems[p]) for p in paths]


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
    from faceanon.stages.pipeline import failure_reason

    reason = failure_reason(path, exc)
    if not isinstance(exc, FaceanonError):
        if STATE["debug"]:
            err_console.print(escape("".join(traceback.format_exception(exc))))
        else:
            reason += " (rerun with --debug for the traceback)"
    print_failure(path, reason)
    return reason


def run_batch(items: Iterable[tuple[Path, str]], process: Callable[[Path, str], dict | None], *, label: str) -> list[Outcome]:
    """Run ``process(path, stem)`` for every item with a progress bar; failures are isolated."""
    items = list(items)
    outcomes: list[Outcome] = []
    with progress_bar() as progress:
        task = progress.add_task(label, total=len(items))
        for path, stem in items:
            progress.update(task, description=f"{label} {escape(path.name)}")
            t0 = time.perf_counter()
            try:
                data = process(path, stem) or {}
                outcomes.append(Outcome(path, stem, True, seconds=time.perf_counter() - t0, data=data))
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
