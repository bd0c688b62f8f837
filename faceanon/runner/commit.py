"""Writing one image's outputs into OUT so that a rerun never trusts a half-written set.

Protocol, the same for an image computed here (:func:`start_image`) and for the encoded files a
cluster worker returned (:meth:`ImageFiles.put`):

1. the image's old completion marker is removed, the outputs an earlier run listed are remembered;
2. every output is written atomically (temp file + rename) on a background writer thread, and its
   path is listed BEFORE the write starts;
3. after every write succeeded: the earlier run's outputs that the new set lacks are removed, then
   the completion marker is written, last;
4. on any failure: the writer is drained and every listed path (and the earlier run's set, now
   obsolete) is removed - only this image's own files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from faceanon.errors import OutputError
from faceanon.io.atomic import output_op
from faceanon.io.facefiles import Output
from faceanon.stages.pipeline import ImageReport, Models, Processed, RunOptions, image_chain, run_chain
from faceanon.runner.state import input_signature, marker_path, previous_outputs, remove_outputs, write_marker


class BackgroundWriter:
    """Runs output writes on one background thread, in submission order.

    PNG/JPEG encoding, zlib and file I/O release the GIL, so an image's files are written while the
    next stage computes. Errors surface through the futures (the completion marker task checks
    them); ``drain()`` only waits, so that no write lands after a cleanup.
    """

    _pool = None

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        if BackgroundWriter._pool is None:
            BackgroundWriter._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faceanon-writer")
        self._futures: list = []

    def submit(self, fn, *args, **kwargs):
        fut = self._pool.submit(fn, *args, **kwargs)
        self._futures.append(fut)
        return fut

    def pending(self) -> list:
        """The futures of the writes submitted so far."""
        return list(self._futures)

    def drain(self) -> None:
        for fut in self._futures:
            fut.exception()  # waits; the error itself is reported by the marker task
        self._futures.clear()


@dataclass
class PendingImage:
    """An image whose stages have run and whose files are being written in the background.

    ``result()`` waits until every file and then the completion marker are on disk and returns the
    report; if a write failed, it removes the image's outputs and raises the write error.
    ``processed`` is the in-memory result (None for files received from a cluster worker).
    """

    report: ImageReport
    commit: object  # Future of the marker write, queued after every output write of the image
    cleanup: Callable[[], None]
    processed: Processed | None = None

    def result(self) -> ImageReport:
        try:
            self.commit.result()
        except BaseException:
            self.cleanup()
            raise
        return self.report


def _write_bytes(path: Path, data: bytes) -> None:
    from faceanon.io.atomic import atomic_write

    with atomic_write(path, "wb") as fh:
        fh.write(data)


class ImageFiles:
    """The output set of one image in OUT while it is being written (steps 1-4 above).

    ``signature``: the input's :func:`input_signature`, taken BEFORE the input was read, so that an
    input changed during the run is redone by the next one.
    """

    def __init__(self, out: Path, stem: str, signature: dict) -> None:
        self.out, self.stem, self.signature = out, stem, signature
        self.written: list[Path] = []
        self.previous = previous_outputs(out, stem)  # an earlier run's set is obsolete once we start over
        self.writer = BackgroundWriter()

    def begin(self) -> None:
        """Step 1: the old completion marker goes first (a failure here is cleaned up like any other)."""
        output_op(marker_path(self.out, self.stem), lambda p: p.unlink(missing_ok=True))

    def add(self, output: Output) -> None:
        """Step 2 for a write of the stage chain: list its paths, then queue it."""
        self.written += output.paths
        self.writer.submit(output.run)

    def outputs(self) -> list[str]:
        """The listed paths, relative to OUT (POSIX), for the report."""
        return [p.relative_to(self.out).as_posix() for p in self.written]

    def put(self, rel: str, data: bytes) -> None:
        """Queue the atomic write of ``OUT/rel`` (``rel``: a relative POSIX path inside OUT)."""
        parts = PurePosixPath(rel).parts
        if not parts or PurePosixPath(rel).is_absolute() or any(p in ("", ".", "..") for p in parts) \
                or parts[0] == marker_path(self.out, "x").parent.name:
            raise OutputError(f"refused output path {rel!r}: not a file inside the output folder")
        path = self.out.joinpath(*parts)
        self.written.append(path)
        self.writer.submit(_write_bytes, path, data)

    def cleanup(self) -> None:
        self.writer.drain()  # no write of this image may land after the cleanup
        remove_outputs(self.out, self.stem, self.written + self.previous)

    def commit(self, report: ImageReport, opts: RunOptions, processed: Processed | None = None) -> PendingImage:
        """Queue, after every write so far: the removal of the earlier set's leftovers, then the marker."""
        keep = set(self.written)
        stale = [p for p in self.previous if p not in keep]  # e.g. faces or formats the new outputs no longer have
        fut = self.writer.submit(_finish, self.writer.pending(), self, opts, report, stale)
        return PendingImage(report=report, commit=fut, cleanup=self.cleanup, processed=processed)


def _finish(prior: list, files: ImageFiles, opts: RunOptions, report: ImageReport, stale: list[Path]) -> None:
    """On the writer thread, after every output write of the image (the writer runs tasks in order,
    so they are all done here): only if every write succeeded, the leftovers go and the marker is written."""
    for fut in prior:
        exc = fut.exception()
        if exc is not None:
            raise exc
    for p in stale:
        output_op(p, lambda q: q.unlink(missing_ok=True))
    write_marker(files.out, files.stem, files.signature, opts, report)


def start_image(
    path: Path,
    stem: str,
    out: Path,
    models: Models,
    opts: RunOptions,
    on_stage: Callable[[str], None] | None = None,
) -> PendingImage:
    """Run every stage of one image now; queue its file writes and, last, its completion marker on
    the background writer, and return without waiting for them.

    The caller may start the next image while this one's files are written (encoding overlaps
    computing) and must call ``result()`` before reporting the image. A failure while computing
    removes what was written so far and raises.
    """
    report = ImageReport(input=str(path.resolve()), stem=stem)
    files = ImageFiles(out, stem, input_signature(path))  # signature before reading (see ImageFiles)
    try:
        files.begin()
        processed = run_chain(image_chain(path, stem, out, models, opts, on_stage), files.add)
    except BaseException:
        files.cleanup()
        raise
    # report.seconds is completed by the writer tasks and finalized with the completion marker
    return files.commit(processed.fill(report, files.outputs()), opts, processed)
