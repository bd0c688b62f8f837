"""``faceanon run IN OUT``: the whole pipeline in one pass."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from faceanon.cli import options as opt
from faceanon.cli.app import STATE, app
from faceanon.cli.batch import (
    check_out_not_in, collect_inputs, err_console, print_failure, progress_bar, report_failure,
)
from faceanon.cli.formats_cli import print_run_notes, print_warnings
from faceanon.errors import FaceanonError, UsageError

_WORKER: dict = {}


def _load(store_args: tuple, opts) -> object:
    from faceanon.stages.pipeline import Models

    store = opt.store_from(*store_args)
    detector, backend = opt.load_models(store, opt.Model(opts.model), min_face_size=opts.min_face_size,
                                        max_faces=opts.max_faces, threshold=opts.threshold)
    return Models(detector=detector, backend=backend)


def _require_assets(store_args: tuple, model: str) -> None:
    """Verify the model files ``model`` loads before any work (hashes are cached, so this is cheap).

    A missing or corrupt file is then one error line naming it and ``faceanon assets download``,
    the same with or without --jobs (a worker failing to load its models would only break the pool).
    """
    from faceanon.models.loader import required_assets

    store = opt.store_from(*store_args)
    for name in required_assets(model):
        store.require(name)


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


def _worker_init(store_args: tuple, opts, debug: bool, parent_pid: int = 0) -> None:
    import torch

    if parent_pid:
        _die_with_parent(parent_pid)
    torch.set_num_threads(1)
    STATE["debug"] = debug
    _WORKER["models"] = _load(store_args, opts)
    _WORKER["opts"] = opts


def _worker_run(path: Path, stem: str, out: Path):
    from faceanon.stages.pipeline import clear_in_progress, failure_report, mark_in_progress, process_image

    try:
        mark_in_progress(out, stem, path)  # left behind only if this process dies on the image
        rep = process_image(path, stem, out, _WORKER["models"], _WORKER["opts"])
    except Exception as exc:  # returned, not raised: the parent prints the one line
        rep = failure_report(path, stem, exc)
    clear_in_progress(out, stem)
    return rep


def _pool(workers: int, store_args: tuple, opts):
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing as mp

    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                               initargs=(store_args, opts, STATE["debug"], os.getpid()))


def _run_pool(items: list, jobs: int, store_args: tuple, opts, out: Path, record) -> list:
    """Process ``items`` on ``jobs`` worker processes, recording each report as it completes.
    Returns the items whose worker pool broke (a worker process died) before they completed."""
    from concurrent.futures import as_completed
    from concurrent.futures.process import BrokenProcessPool

    from faceanon.stages.pipeline import failure_report

    broken = []
    with _pool(jobs, store_args, opts) as pool:
        futs = {pool.submit(_worker_run, p, s, out): (p, s) for p, s in items}
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
                if rep.status == "failed":
                    print_failure(p, rep.error or "")
                record(rep)
        except BaseException:  # stop now: do not let the queued images run on unreported
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    lost = set(broken)
    return [x for x in items if x in lost]  # input order


def _run_isolated(items: list, store_args: tuple, opts, out: Path):
    """Yield a report per item, each processed in a worker process of its own pool: when the
    process dies on an image, that image is reported failed and the next one gets a new process.
    The in-progress marker of an image that crashes again is kept (the next run isolates it too)."""
    from concurrent.futures.process import BrokenProcessPool

    from faceanon.stages.pipeline import failure_report

    pool = None
    try:
        for p, s in items:
            if pool is None:
                pool = _pool(1, store_args, opts)
            try:
                rep = pool.submit(_worker_run, p, s, out).result()
            except BrokenProcessPool:
                pool.shutdown(wait=False, cancel_futures=True)
                pool = None
                rep = failure_report(p, s, FaceanonError(
                    "the process crashed on this image (in native code: a decoder or library bug, or out "
                    "of memory); it was skipped, the rest of the batch is not affected",
                    "check the file; later runs keep processing it in a separate process"))
            if rep.status == "failed":
                print_failure(p, rep.error or "")
            yield rep
    except BaseException:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        raise
    if pool is not None:
        pool.shutdown(wait=True)  # nothing queued: the worker exits at once


@app.command(
    "run",
    epilog=(
        "Examples:\n\n"
        "  faceanon run photos/ out/\n\n"
        "  faceanon run photos/ out/ --alpha 0.7 --keep-mouth --jobs 2\n\n"
        "  faceanon run photos/ out/ --privacy high          (wider removal: see bench/privacy.md)\n\n"
        "  faceanon run photos/ out/ --fill inpaint          (the seed's look: no drawn eyes, lips or brows)\n\n"
        "  faceanon run photos/ out/ --force          (redo images that are already complete)"
    ),
)
def run(
    inp: Path = typer.Argument(..., metavar="IN", help="An image or a folder of images."),
    out: Path = typer.Argument(..., metavar="OUT", help="Output folder (never inside IN)."),
    model: opt.Model = opt.MODEL,
    alpha: float = typer.Option(1.0, "--alpha", min=0.0, max=1.0, help="Morph strength toward the mean face (0..1)."),
    keep_pose: bool = typer.Option(False, "--keep-pose", help="Anonymized OBJ keeps the original pose and position."),
    keep_mouth: bool = typer.Option(False, "--keep-mouth", help="Do not remove the lips."),
    fill: opt.Fill = opt.FILL,
    privacy: opt.Privacy = opt.PRIVACY,
    margin: Optional[float] = opt.MARGIN,
    keep_brows: bool = opt.KEEP_BROWS,
    feather_px: float = typer.Option(3.0, "--feather-px", min=0.0, help="Outward feather of the removal mask (px)."),
    tex_size: int = opt.tex_size(2048, "Anonymized UV texture size"),
    img_size: int = typer.Option(1024, "--img-size", min=16, max=8192, help="Frontal render size (px)."),
    background: str = typer.Option("transparent", "--background", help="Render background: transparent or white."),
    recursive: bool = opt.RECURSIVE,
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Skip images already completed with the same options."),
    force: bool = typer.Option(False, "--force", help="Redo every image, even complete ones."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, max=64, help="Worker processes (each loads the models once)."),
    vis: bool = typer.Option(False, "--vis", help="Also write reconstruction overlays."),
    lossless: bool = typer.Option(
        False, "--lossless",
        help="Write anonymized photos of JPEG/WebP inputs as PNG: every pixel away from the faces stays "
             "bit-identical to the input (a JPEG re-encode changes them slightly)."),
    audit: bool = typer.Option(False, "--audit", help="Run `faceanon audit` at the end (needs faceanon[audit])."),
    strict: bool = typer.Option(
        False, "--strict", help="Refuse DICOM inputs whose Burned In Annotation is not NO (faceanon does not "
                                "look for burned-in text); without it they get a warning line."),
    min_face_size: int = opt.MIN_FACE,
    max_faces: int = opt.MAX_FACES,
    threshold: Optional[float] = opt.THRESHOLD,
    max_pixels: int = opt.MAX_PIXELS,
    mirror: Optional[str] = opt.MIRROR,
    offline: bool = opt.OFFLINE,
) -> None:
    """Reconstruct, segment, anonymize, render and composite every image, loading the models once.

    Writes OUT/face3d, OUT/seg, OUT/anon, OUT/render, OUT/anonymized and OUT/report.json. Exit 0 when
    every image succeeded, 1 when some failed, 2 on a usage error.
    """
    from faceanon.io.atomic import clean_stale_temp_files, out_lock
    from faceanon.stages.pipeline import (
        ImageReport, RunOptions, clear_in_progress, died_on, failure_report, is_complete, mark_in_progress,
        start_image, write_report,
    )

    if background not in ("transparent", "white"):
        raise UsageError(f"--background must be transparent or white, got {background!r}")
    check_out_not_in(inp, out)
    items = collect_inputs(inp, recursive)
    if audit:  # fail before hours of work, not after
        from faceanon.audit.recognizer import check_available

        check_available()
    from faceanon.stages.privacy import resolve_privacy

    margin, brows = resolve_privacy(privacy.value, margin=margin, keep_brows=keep_brows)
    opts = RunOptions(model=model.value, tex_size=tex_size, alpha=alpha, keep_pose=keep_pose, keep_mouth=keep_mouth,
                      fill=fill.value, privacy=privacy.value, brows=brows, margin=margin, feather_px=feather_px, img_size=img_size, background=background,
                      max_pixels=max_pixels, min_face_size=min_face_size, max_faces=max_faces,
                      threshold=threshold, vis=vis, lossless=lossless, strict=strict)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        from faceanon.errors import OutputError

        raise OutputError(f"cannot write to {out}: {exc.strerror or exc}", "choose a writable output folder") from exc
    with out_lock(out):  # one run per OUT: a second one would delete this one's temp files
        clean_stale_temp_files(out, older_than=0, recursive=True)  # left by a killed run
        started = time.time()

        reports: list[ImageReport] = []
        todo = []
        for path, stem in items:
            prev = None if (force or not resume) else is_complete(out, path, stem, opts)
            if prev is not None:
                reports.append(ImageReport(**{**prev, "status": "skipped"}))
            else:
                todo.append((path, stem))
        if reports:
            err_console.print(f"skipping {len(reports)} image(s) already complete (use --force to redo)")

        store_args = (mirror, offline)
        with progress_bar() as progress:
            overall = progress.add_task("images", total=len(items), completed=len(reports))
            current = progress.add_task("loading models", total=None)

            def record(rep) -> None:
                print_warnings(rep.input, rep.notes)  # e.g. DICOM burned-in annotation (faceanon.cli.formats_cli)
                reports.append(rep)
                progress.advance(overall)
                write_report(out, reports, opts, started)

            if todo:
                _require_assets(store_args, opts.model)
                # images an earlier run died on (a crash in native code kills the process): each
                # runs in a separate process, so it cannot take this run down too
                suspects = [(p, s) for p, s in todo if died_on(out, s)]
                if suspects:
                    err_console.print(f"{len(suspects)} image(s) were being processed when an earlier run died: "
                                      "processing them in a separate process")
                    todo = [x for x in todo if x not in suspects]
                    progress.update(current, description="isolated: earlier crash")
                    for rep in _run_isolated(suspects, store_args, opts, out):
                        record(rep)
            if todo:
                if jobs == 1:
                    models = _load(store_args, opts)
                    # Image i's files (and, last, its completion marker) are written on the background
                    # writer while image i+1 computes; image i is reported once they are all on disk.
                    inflight: list = []  # (path, stem, PendingImage), oldest first, at most 2

                    def finish(item) -> None:
                        p, s, pend = item
                        try:
                            rep = pend.result()
                        except KeyboardInterrupt:
                            raise
                        except Exception as exc:
                            report_failure(p, exc)
                            rep = failure_report(p, s, exc)
                        clear_in_progress(out, s)  # finished (ok or a clean failure): not a crash
                        record(rep)

                    try:
                        for path, stem in todo:
                            def on_stage(name: str, _p=path) -> None:
                                progress.update(current, description=f"{name}: {escape(_p.name)}")

                            try:
                                mark_in_progress(out, stem, path)
                                inflight.append((path, stem, start_image(path, stem, out, models, opts,
                                                                         on_stage=on_stage)))
                            except KeyboardInterrupt:
                                raise
                            except Exception as exc:
                                while inflight:  # keep the lines and the report in input order
                                    finish(inflight.pop(0))
                                report_failure(path, exc)
                                clear_in_progress(out, stem)
                                record(failure_report(path, stem, exc))
                                continue
                            while len(inflight) > 1:
                                finish(inflight.pop(0))
                        while inflight:
                            finish(inflight.pop(0))
                    except BaseException:
                        # before leaving: let the in-flight images' files land (or clean them up), and
                        # report the ones that did complete
                        done = []
                        for _p, _s, pend in inflight:
                            try:
                                done.append(pend.result())
                                clear_in_progress(out, _s)
                            except Exception as exc:  # its one line, even on the way out
                                report_failure(_p, exc)
                                clear_in_progress(out, _s)
                            except BaseException:
                                pass
                        if done:
                            reports.extend(done)
                            try:
                                write_report(out, reports, opts, started)
                            except BaseException:
                                pass
                        raise
                else:
                    progress.update(current, description=f"{jobs} workers")
                    pending = todo
                    while pending:
                        broken = _run_pool(pending, jobs, store_args, opts, out, record)
                        # a worker died: every image still queued in that pool failed with it. The
                        # image(s) being processed left their in-progress marker: those run isolated
                        # (a crasher fails alone); the others go back to a new pool.
                        crashed = [(p, s) for p, s in broken if died_on(out, s)]
                        if broken and not crashed:  # died for another reason (e.g. out of memory)
                            for p, s in broken:
                                rep = failure_report(p, s, FaceanonError(
                                    "a worker process died while this image was queued",
                                    "rerun the same command to retry it"))
                                print_failure(p, rep.error or "")
                                record(rep)
                            break
                        for rep in _run_isolated(crashed, store_args, opts, out):
                            record(rep)
                        pending = [(p, s) for p, s in broken if (p, s) not in crashed]
            progress.update(current, description="done", total=1, completed=1)

        order = {str(p.resolve()): i for i, (p, _s) in enumerate(items)}
        reports.sort(key=lambda r: order.get(r.input, 0))
        report_path = write_report(out, reports, opts, started)
        _summary(reports)
        print_run_notes(reports, inp, recursive)  # format notes, files of IN that are not images
        err_console.print(f"report: {escape(str(report_path))}")
        failed = sum(r.status == "failed" for r in reports)

        code = 1 if failed else 0
        if audit:
            from faceanon.cli.audit_cmd import audit_and_report

            audit_code = audit_and_report(out, inp if inp.is_dir() else inp.parent)  # the audit's default threshold
            code = max(code, audit_code)
        raise typer.Exit(code)


def _summary(reports) -> None:
    table = Table(title="faceanon run", show_lines=False)
    # no error column: each failure already had its one line above, and its reason is in report.json
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
