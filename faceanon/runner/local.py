"""Running the images on this machine: in this process (``--jobs 1``) or on a pool of worker
processes (``--jobs N``), with crash isolation.

Crash protocol: the process that processes an image marks it in progress first
(``OUT/.done/<stem>.inprogress``) and clears the mark when the image is finished, ok or failed.
A mark found by a later run means a process died on that image (a segfault in a native decoder,
the out-of-memory killer, ``kill -9``): such images run one at a time in a process of their own
(:func:`run_isolated`), so a file that crashes again fails alone. With ``--jobs N`` a worker that
dies breaks its pool: the image it was on is isolated within the same run, the images queued
with it go back to a new pool.
"""

from __future__ import annotations

import os
from pathlib import Path

from faceanon.errors import FaceanonError
from faceanon.runner.commit import start_image
from faceanon.runner.models import StoreArgs, load_models, require_assets, store_for
from faceanon.runner.state import clear_in_progress, died_on, failure_report, mark_in_progress

_WORKER: dict = {}

CRASHED = FaceanonError(
    "the process crashed on this image (in native code: a decoder or library bug, or out "
    "of memory); it was skipped, the rest of the batch is not affected",
    "check the file; later runs keep processing it in a separate process")


class LocalExecutor:
    """``jobs`` = 1: this process; ``jobs`` > 1: that many worker processes (each loads the models once)."""

    def __init__(self, jobs: int, store_args: StoreArgs) -> None:
        self.jobs = max(1, int(jobs))
        self.store_args = store_args

    def run(self, items: list, batch) -> None:
        require_assets(store_for(self.store_args), batch.opts.model)
        # images an earlier run died on (a crash in native code kills the process): each runs in
        # a separate process, so it cannot take this run down too
        suspects = [(p, s) for p, s in items if died_on(batch.out, s)]
        if suspects:
            batch.events.note(f"{len(suspects)} image(s) were being processed when an earlier run died: "
                              "processing them in a separate process")
            items = [x for x in items if x not in suspects]
            batch.events.status("isolated: earlier crash")
            run_isolated(suspects, self.store_args, batch)
        if not items:
            return
        if self.jobs == 1:
            InProcess(batch, load_models(store_for(self.store_args), batch.opts)).run(items)
        else:
            batch.events.status(f"{self.jobs} workers")
            run_pool(items, self.jobs, self.store_args, batch)


class InProcess:
    """The images one after another in this process. Image i's files (and, last, its completion
    marker) are written on the background writer while image i+1 computes; image i is reported
    once they are all on disk. At most 2 images are in flight, and reports stay in input order."""

    def __init__(self, batch, models) -> None:
        self.batch = batch
        self.models = models
        self.inflight: list = []  # (path, stem, PendingImage), oldest first

    def run(self, items: list) -> None:
        try:
            for path, stem in items:
                self._start(path, stem)
                while len(self.inflight) > 1:
                    self._finish(self.inflight.pop(0))
            while self.inflight:
                self._finish(self.inflight.pop(0))
        except BaseException:
            self._unwind()
            raise

    def _start(self, path: Path, stem: str) -> None:
        b = self.batch
        try:
            mark_in_progress(b.out, stem, path)
            self.inflight.append((path, stem, start_image(path, stem, b.out, self.models, b.opts,
                                                          on_stage=_StageEvents(b.events, path))))
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            while self.inflight:  # keep the lines and the report in input order
                self._finish(self.inflight.pop(0))
            clear_in_progress(b.out, stem)
            b.failed(path, stem, exc)

    def _finish(self, item) -> None:
        path, stem, pending = item
        try:
            rep = pending.result()
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            clear_in_progress(self.batch.out, stem)  # finished with a clean failure: not a crash
            self.batch.failed(path, stem, exc)
            return
        clear_in_progress(self.batch.out, stem)
        self.batch.done(path, rep)

    def _unwind(self) -> None:
        """Leaving (Ctrl-C, a report that cannot be written): let the in-flight images' files land
        (or clean them up), and report the ones that did complete."""
        done = []
        for path, stem, pending in self.inflight:
            try:
                done.append(pending.result())
                clear_in_progress(self.batch.out, stem)
            except Exception as exc:  # its one line, even on the way out
                self.batch.events.image_failed(path, failure_report(path, stem, exc).error or "", exc)
                clear_in_progress(self.batch.out, stem)
            except BaseException:
                pass
        self.inflight.clear()
        if done:
            self.batch.reports.extend(done)
            try:
                self.batch.save()
            except BaseException:
                pass


class _StageEvents:
    """``on_stage(name)`` of :func:`start_image` -> ``events.stage(path, name)`` (picklable, no closure)."""

    def __init__(self, events, path: Path) -> None:
        self.events, self.path = events, path

    def __call__(self, name: str) -> None:
        self.events.stage(self.path, name)


# ------------------------------------------------------------------------------------ worker processes

def _die_with_parent(parent_pid: int) -> None:
    """Linux: have the kernel kill this worker when the parent ``faceanon run`` dies (even by
    ``kill -9``), so no orphan keeps writing into OUT after the run is gone and its lock released."""
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the worker stops at its next result instead
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _worker_init(store_args: StoreArgs, opts, parent_pid: int = 0) -> None:
    import torch

    if parent_pid:
        _die_with_parent(parent_pid)
    torch.set_num_threads(1)
    _WORKER["models"] = load_models(store_for(store_args), opts)
    _WORKER["opts"] = opts


def _worker_run(path: Path, stem: str, out: Path):
    try:
        mark_in_progress(out, stem, path)  # left behind only if this process dies on the image
        rep = start_image(path, stem, out, _WORKER["models"], _WORKER["opts"]).result()
    except Exception as exc:  # returned, not raised: the parent prints the one line
        rep = failure_report(path, stem, exc)
    clear_in_progress(out, stem)
    return rep


def _pool(workers: int, store_args: StoreArgs, opts):
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing as mp

    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                               initargs=(store_args, opts, os.getpid()))


def run_pool(items: list, jobs: int, store_args: StoreArgs, batch) -> None:
    """Process ``items`` on ``jobs`` worker processes. A worker that dies breaks the pool: every image
    still queued in it failed with it. The image(s) being processed left their in-progress marker:
    those run isolated (a crasher fails alone); the others go back to a new pool."""
    pending = items
    while pending:
        broken = _run_one_pool(pending, jobs, store_args, batch)
        crashed = [(p, s) for p, s in broken if died_on(batch.out, s)]
        if broken and not crashed:  # died for another reason (e.g. out of memory)
            for p, s in broken:
                batch.done(p, failure_report(p, s, FaceanonError(
                    "a worker process died while this image was queued", "rerun the same command to retry it")))
            return
        run_isolated(crashed, store_args, batch)
        pending = [(p, s) for p, s in broken if (p, s) not in crashed]


def _run_one_pool(items: list, jobs: int, store_args: StoreArgs, batch) -> list:
    """Returns the items whose worker pool broke (a worker process died) before they completed."""
    from concurrent.futures import as_completed
    from concurrent.futures.process import BrokenProcessPool

    broken = []
    with _pool(jobs, store_args, batch.opts) as pool:
        futs = {pool.submit(_worker_run, p, s, batch.out): (p, s) for p, s in items}
        try:
            for fut in as_completed(futs):
                p, s = futs[fut]
                try:
                    rep = fut.result()
                except BrokenProcessPool:
                    broken.append((p, s))
                    continue
                except Exception as exc:
                    rep = failure_report(p, s, exc)
                batch.done(p, rep)
        except BaseException:  # stop now: do not let the queued images run on unreported
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    lost = set(broken)
    return [x for x in items if x in lost]  # input order


def run_isolated(items: list, store_args: StoreArgs, batch) -> None:
    """Each item in a worker process of its own pool: when the process dies on an image, that image
    is reported failed and the next one gets a new process. The in-progress marker of an image that
    crashes again is kept (the next run isolates it too)."""
    from concurrent.futures.process import BrokenProcessPool

    pool = None
    try:
        for p, s in items:
            if pool is None:
                pool = _pool(1, store_args, batch.opts)
            try:
                rep = pool.submit(_worker_run, p, s, batch.out).result()
            except BrokenProcessPool:
                pool.shutdown(wait=False, cancel_futures=True)
                pool = None
                rep = failure_report(p, s, CRASHED)
            batch.done(p, rep)
    except BaseException:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        raise
    if pool is not None:
        pool.shutdown(wait=True)  # nothing queued: the worker exits at once
