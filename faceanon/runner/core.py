"""The Runner: one run of the pipeline over a folder of images into OUT.

It owns what every way of running shares - the lock on OUT, resume (completion markers), the
crash markers, per-file failure isolation, ``report.json`` and the atomic writing of the outputs -
and hands the images to an executor:

* :class:`faceanon.runner.local.LocalExecutor`: this process (``jobs=1``) or ``jobs`` worker processes;
* :class:`faceanon.runner.cluster.DaskExecutor`: the workers of a Dask scheduler (``scheduler=``).

Progress and failures are told to a :class:`RunEvents` (the CLI shows them; the default is silent).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from faceanon.runner.inputs import check_out_not_in, collect_inputs, prepare_out
from faceanon.runner.state import failure_report, is_complete, write_report
from faceanon.stages.pipeline import ImageReport, RunOptions


class RunEvents:
    """What a run tells its caller while it works. Every method is a no-op here; override what you show.

    ``note`` informational lines (images skipped, crashed images isolated); ``begin``/``end`` bracket
    the processing (``total`` images, ``done`` of them already complete); ``status`` what the run is
    doing now; ``stage`` the stage an image entered (only for images processed in this process);
    ``image_done`` every finished image's report (ok or failed); ``image_failed`` the one-line
    reason of a failed image, before its ``image_done``, with the exception when it was raised in
    this process (None when it came from another process or machine).
    """

    def note(self, text: str) -> None: ...

    def begin(self, total: int, done: int) -> None: ...

    def status(self, text: str) -> None: ...

    def stage(self, path: Path, name: str) -> None: ...

    def image_done(self, report: ImageReport) -> None: ...

    def image_failed(self, path: Path, reason: str, exc: BaseException | None) -> None: ...

    def end(self) -> None: ...


@dataclass
class RunResult:
    """The outcome of :meth:`Runner.run`: one report per input (in input order) and report.json."""

    out: Path
    reports: list[ImageReport] = field(default_factory=list)
    report_path: Path | None = None

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.reports)

    @property
    def exit_code(self) -> int:
        """0 when every image succeeded or was already complete, 1 when one failed."""
        return 1 if self.count("failed") else 0


#: report.json is rewritten after an image at most every this many seconds, and at most every 10x
#: the time its last write took: the report grows with the run, and writing it after every image
#: of a 100k-image archive would write terabytes (a run that stops saves it; the completion markers,
#: not the report, decide what a rerun skips).
SAVE_INTERVAL = 1.0


class Batch:
    """The run in progress: the reports so far, saved to report.json as images finish (see
    :data:`SAVE_INTERVAL`) and when the run ends or stops, so that a stopped run leaves the report
    of what it finished. Executors report through it."""

    def __init__(self, out: Path, opts: RunOptions, events: RunEvents) -> None:
        self.out, self.opts, self.events = out, opts, events
        self.started = time.time()
        self.reports: list[ImageReport] = []
        self._next_save = 0.0  # monotonic time; the first finished image is saved at once

    def done(self, path: Path, rep: ImageReport, exc: BaseException | None = None) -> None:
        """An image is finished (ok or failed): its failure line, then the progress and report.json."""
        if rep.status == "failed":
            self.events.image_failed(path, rep.error or "", exc)
        self.reports.append(rep)
        self.events.image_done(rep)
        if time.monotonic() >= self._next_save:
            self.save()

    def failed(self, path: Path, stem: str, exc: BaseException) -> None:
        self.done(path, failure_report(path, stem, exc), exc)

    def save(self) -> Path:
        t = time.monotonic()
        path = write_report(self.out, self.reports, self.opts, self.started)
        now = time.monotonic()
        self._next_save = now + max(SAVE_INTERVAL, 10 * (now - t))
        return path


class Runner:
    """Runs the pipeline over a folder (or one image) into OUT.

    options:   the :class:`~faceanon.stages.pipeline.RunOptions` (every ``faceanon run`` option)
    jobs:      worker processes on this machine (1 = this process)
    scheduler: a Dask scheduler address (``tcp://host:8786``): the images go to its workers,
               which need ``faceanon[cluster]``; ``jobs`` must then be 1
    mirror, offline: the asset store rules of ``--mirror`` / ``--offline`` (also sent to workers)
    events:    a :class:`RunEvents` to show progress and failures
    """

    def __init__(self, options: RunOptions | None = None, *, jobs: int = 1, scheduler: str | None = None,
                 mirror: str | None = None, offline: bool = False, events: RunEvents | None = None) -> None:
        from faceanon.errors import UsageError

        self.options = (options or RunOptions()).check()
        if scheduler and jobs != 1:
            raise UsageError("--jobs and --scheduler cannot be combined",
                             "the cluster's workers set the parallelism: start more `dask worker`s")
        self.jobs, self.scheduler = int(jobs), scheduler or None
        self.store_args = (mirror, bool(offline))
        self.events = events or RunEvents()

    def executor(self):
        if self.scheduler:
            from faceanon.runner.cluster import DaskExecutor

            return DaskExecutor(self.scheduler, self.store_args)
        from faceanon.runner.local import LocalExecutor

        return LocalExecutor(self.jobs, self.store_args)

    def run(self, inp: Path | str, out: Path | str, *, recursive: bool = False, resume: bool = True,
            force: bool = False) -> RunResult:
        """Process every image of ``inp`` into ``out``; images already complete with the same options
        are skipped unless ``force`` (or ``resume=False``). Per-image failures are reported, never
        raised; raises FaceanonError when the run itself cannot go on (OUT not writable or locked by
        another run, a missing model file, an unreachable scheduler...)."""
        from faceanon.io.atomic import clean_stale_temp_files, out_lock

        inp, out = Path(inp), Path(out)
        check_out_not_in(inp, out)
        items = collect_inputs(inp, recursive)
        executor = self.executor()  # e.g. the cluster extra is missing: before touching OUT
        prepare_out(out)
        with out_lock(out):  # one run per OUT: a second one would delete this one's temp files
            clean_stale_temp_files(out, older_than=0, recursive=True)  # left by a killed run
            batch = Batch(out, self.options, self.events)
            todo = []
            for path, stem in items:
                prev = None if (force or not resume) else is_complete(out, path, stem, self.options)
                if prev is not None:
                    batch.reports.append(ImageReport(**{**prev, "status": "skipped"}))
                else:
                    todo.append((path, stem))
            if batch.reports:
                self.events.note(f"skipping {len(batch.reports)} image(s) already complete (use --force to redo)")
            self.events.begin(len(items), len(batch.reports))
            try:
                if todo:
                    executor.run(todo, batch)
                self.events.status("done")
            except BaseException:
                if batch.reports:  # stopped (Ctrl-C, a worker that cannot run...): what it finished
                    try:
                        batch.save()
                    except BaseException:
                        pass
                raise
            finally:
                self.events.end()
            order = {str(p.resolve()): i for i, (p, _s) in enumerate(items)}
            batch.reports.sort(key=lambda r: order.get(r.input, 0))
            return RunResult(out=out, reports=batch.reports, report_path=batch.save())
