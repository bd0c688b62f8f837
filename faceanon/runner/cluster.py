"""Running the images on the workers of a Dask cluster (``faceanon run IN OUT --scheduler tcp://HOST:8786``).

No shared file system is assumed. The client (this process) holds the lock on OUT, decides what is
complete, reads each input and sends its bytes to a worker; the worker decodes them, runs the
stage chain and returns the encoded output files (bytes); the client writes every file atomically
into its own OUT and the completion marker last, exactly as a local run does (see
:mod:`faceanon.runner.commit`). So resume, report.json and exit codes are those of a local run.

Workers: each worker process loads the models once (a per-process cache) from its own asset store
(its FACEANON_HOME, FACEANON_ASSETS_MIRROR and FACEANON_OFFLINE, or the run's --mirror/--offline),
downloading missing files like ``faceanon assets download`` unless offline. Every worker is checked
before any image is sent; a worker that cannot run stops the run with one line naming it.

Crashes: a worker killed while it holds an image (``kill -9``, the out-of-memory killer, a lost
node) costs a retry - the scheduler gives the image to another worker, and the client writes it
once, when the first result arrives. An image that kills every worker it is given (Dask's
``distributed.scheduler.allowed-failures``, default 3 retries) is reported failed.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import time
import traceback
import warnings
from dataclasses import asdict
from pathlib import Path

from faceanon import __version__
from faceanon.errors import AssetError, FaceanonError, ImageError
from faceanon.runner.commit import ImageFiles, start_image
from faceanon.runner.models import StoreArgs, load_models, require_assets, store_for
from faceanon.runner.state import clear_in_progress, failure_report, input_signature
from faceanon.stages.pipeline import ImageReport

#: Seconds to reach the scheduler, and to wait for its first worker (a batch system may take a
#: while to start them); FACEANON_SCHEDULER_TIMEOUT / FACEANON_WORKER_WAIT override them.
CONNECT_TIMEOUT = 30.0
WORKER_WAIT = 600.0
#: Images sent ahead per worker thread: one computing, one queued, so no worker waits for the client.
AHEAD_PER_THREAD = 2

KILLED = FaceanonError(
    "the image crashed every worker process it was given (in native code: a decoder or library bug, "
    "or out of memory); it was skipped, the rest of the batch is not affected", "check the file")


def _seconds(env: str, default: float) -> float:
    try:
        return float(os.environ.get(env, default))
    except ValueError:
        return default


def import_distributed():
    """The ``distributed`` module, or one line saying which extra installs it."""
    try:
        import distributed
    except ImportError:
        raise FaceanonError("--scheduler needs the cluster extra (the `distributed` package), which is not installed",
                            "pip install 'faceanon[cluster]'") from None
    return distributed


class RemoteFailure(Exception):
    """An unexpected error on a worker; ``remote_traceback`` is the worker's traceback text (--debug)."""

    def __init__(self, reason: str, remote_traceback: str) -> None:
        super().__init__(reason)
        self.remote_traceback = remote_traceback


# ------------------------------------------------------------------------------------ worker side

_MODELS: dict = {}
_LOCK = threading.Lock()  # one image at a time per process: the models are not shared between threads


def _where() -> str:
    try:
        from distributed import get_worker

        return f"{get_worker().address} ({socket.gethostname()})"
    except Exception:  # not in a worker (tests calling the task directly)
        return f"pid {os.getpid()} ({socket.gethostname()})"


def _ensure_assets(store_args: StoreArgs, model: str):
    """This worker's store with every file of ``model`` verified; missing files are downloaded
    (a local mirror folder, or an http mirror / upstream unless offline), as ``faceanon assets download``
    would; the BFM licence must have been accepted in that worker's data dir."""
    store = store_for(store_args)
    try:
        require_assets(store, model)
    except AssetError:  # fetched by the store's own rules: a local mirror even offline, else not offline
        store.download(model, accept_license=False, progress=False)
        require_assets(store, model)
    return store


def check_worker(store_args: StoreArgs, model: str, client_version: str) -> str | None:
    """Task run once on every worker before any image: None when it can work, else one line naming it."""
    if client_version != __version__:
        return (f"worker {_where()} runs faceanon {__version__}, this run is faceanon {client_version} "
                "(hint: install the same faceanon version on the client and every worker)")
    try:
        _ensure_assets(store_args, model)
    except FaceanonError as exc:
        return f"worker {_where()}: {exc.one_line()}"
    return None


def _models(store_args: StoreArgs, opts):
    key = (tuple(store_args), opts.model, opts.min_face_size, opts.max_faces, opts.threshold)
    if key not in _MODELS:
        _MODELS[key] = load_models(_ensure_assets(store_args, opts.model), opts)
    return _MODELS[key]


def process_remote(data: bytes, name: str, stem: str, opts, store_args: StoreArgs,
                   dicom_key: str | None = None) -> dict:
    """Task: one image on a worker. ``data``: the input file's bytes, ``name``: its file name;
    ``dicom_key``: the run's DICOM de-identification key (``OUT/.faceanon-dicom-key`` on the client),
    so that every worker gives the same replacement UIDs and IDs (one study stays one study).

    Returns ``{"report": ImageReport fields, "files": {relative output path: bytes}}``; a failure of
    the image is a failed report (with ``"traceback"`` for an unexpected error); a worker that
    cannot load its models returns ``{"setup_error": one line naming the worker}``.
    """
    with _LOCK:
        try:
            models = _models(store_args, opts)
        except FaceanonError as exc:
            return {"setup_error": f"worker {_where()}: {exc.one_line()}"}
        # The stage chain writes files: into a private scratch folder on the worker's disk, read
        # back as the encoded bytes to return, so the worker runs exactly the code of a local run.
        with tempfile.TemporaryDirectory(prefix="faceanon-") as tmp:
            src = Path(tmp) / "in" / name
            src.parent.mkdir()
            src.write_bytes(data)
            out = Path(tmp) / "out"
            if dicom_key:
                from faceanon.io.dicom import DEID_KEY_NAME

                out.mkdir()
                key_file = out / DEID_KEY_NAME
                key_file.write_text(dicom_key + "\n", encoding="ascii")
                key_file.chmod(0o600)
            try:
                rep = start_image(src, stem, out, models, opts).result()
                files = {rel: (out / rel).read_bytes() for rel in rep.outputs}
                return {"report": asdict(rep), "files": files}
            except Exception as exc:
                res = {"report": asdict(failure_report(src, stem, exc)), "files": {}}
                if not isinstance(exc, FaceanonError):
                    res["traceback"] = "".join(traceback.format_exception(exc))
                return res


# ------------------------------------------------------------------------------------ client side

def _read_input(path: Path) -> tuple[dict, bytes]:
    """(signature, bytes) of an input; the signature first (an input changed meanwhile is redone next run)."""
    try:
        return input_signature(path), path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot open the file ({exc.strerror or exc})") from None


class DaskExecutor:
    """The images of a run on the workers of the Dask scheduler at ``address``."""

    def __init__(self, address: str, store_args: StoreArgs) -> None:
        self.distributed = import_distributed()
        self.address = address
        self.store_args = store_args

    def run(self, items: list, batch) -> None:
        quiet = logging.getLogger("distributed")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # its warnings would break the one-line-per-problem output
        try:
            client = self._connect(batch)
            try:
                self._check_workers(client, batch)
                _Feeder(self.distributed, client, items, batch, self.store_args).run()
            finally:
                client.close()
        finally:
            quiet.setLevel(level)

    def _connect(self, batch):
        batch.events.status(f"connecting to {self.address}")
        try:
            return self.distributed.Client(self.address, timeout=_seconds("FACEANON_SCHEDULER_TIMEOUT", CONNECT_TIMEOUT),
                                           set_as_default=False)
        except Exception as exc:
            raise FaceanonError(f"cannot connect to the Dask scheduler at {self.address}: "
                                f"{' '.join(str(exc).split()) or type(exc).__name__}",
                                "start one with `dask scheduler` and pass its address (tcp://HOST:8786) to "
                                "--scheduler or FACEANON_SCHEDULER") from None

    def _check_workers(self, client, batch) -> None:
        batch.events.status(f"waiting for Dask workers at {self.address}")
        wait = _seconds("FACEANON_WORKER_WAIT", WORKER_WAIT)
        try:
            client.wait_for_workers(1, timeout=wait)
        except Exception:
            raise FaceanonError(f"no Dask worker joined the scheduler at {self.address} within {wait:.0f} s",
                                f"start workers: dask worker {self.address} --nthreads 1") from None
        batch.events.status("checking the workers")
        addresses = sorted(client.scheduler_info(n_workers=-1)["workers"])
        # allow_other_workers: a worker that leaves meanwhile must not leave its check waiting forever
        # (its replacement is checked by its first image, see process_remote)
        futs = [client.submit(check_worker, self.store_args, batch.opts.model, __version__, workers=[a],
                              allow_other_workers=True, pure=False) for a in addresses]
        for addr, fut in zip(addresses, futs):
            try:
                problem = fut.result()
            except Exception as exc:
                raise FaceanonError(f"worker {addr} cannot run faceanon ({type(exc).__name__}: "
                                    f"{' '.join(str(exc).split())})",
                                    "install the same faceanon version, with the cluster extra, on every "
                                    "worker: pip install 'faceanon[cluster]'") from None
            if problem:
                raise FaceanonError(problem)


class _Feeder:
    """Sends the images to the cluster, a few per worker thread ahead, and writes every result
    into OUT as it arrives (input bytes and results never pile up in memory)."""

    def __init__(self, distributed, client, items: list, batch, store_args: StoreArgs) -> None:
        self.distributed, self.client, self.batch, self.store_args = distributed, client, batch, store_args
        self.queue = list(reversed(items))
        self.futures: dict = {}  # future -> (path, stem, signature)
        self.limit, self.limit_at = 2, 0.0
        self.completed = distributed.as_completed(loop=client.loop)

    def run(self) -> None:
        try:
            self._fill()
            for fut in self.completed:
                path, stem, signature = self.futures.pop(fut)
                self._collect(fut, path, stem, signature)
                self._fill()
        finally:
            if self.futures:  # stopped early (Ctrl-C, a worker that cannot run): nothing goes on running
                try:
                    self.client.cancel(list(self.futures), force=True)
                except Exception:  # the scheduler is gone: so are the tasks
                    pass
                self.futures.clear()

    def _threads(self) -> int:
        now = time.monotonic()
        if now - self.limit_at > 2.0:  # workers may come and go (a batch system scales them)
            threads = sum(self.client.nthreads().values())
            self.limit, self.limit_at = max(2, AHEAD_PER_THREAD * threads), now
            self.batch.events.status(f"cluster: {threads} worker thread(s)")
        return self.limit

    def _fill(self) -> None:
        while self.queue and len(self.futures) < self._threads():
            path, stem = self.queue.pop()
            try:
                signature, data = _read_input(path)
            except ImageError as exc:
                self._forget(path, stem)
                self.batch.failed(path, stem, exc)
                continue
            with warnings.catch_warnings():
                # the photo travels inside the task (through the scheduler, which holds at most the
                # few images sent ahead): Dask's advice for big graphs does not apply to one file
                warnings.filterwarnings("ignore", message="Sending large graph")
                fut = self.client.submit(process_remote, data, path.name, stem, self.batch.opts, self.store_args,
                                         self._dicom_key(path), pure=False)
            self.futures[fut] = (path, stem, signature)
            self.completed.add(fut)

    def _dicom_key(self, path: Path) -> str | None:
        """The run's DICOM key (created in OUT on the first DICOM input) for a DICOM input, else None."""
        from faceanon.io.formats import is_dicom_path

        if not is_dicom_path(path):
            return None
        from faceanon.io.dicom import run_key

        return run_key(self.batch.out)

    def _forget(self, path: Path, stem: str) -> None:
        """A failed image leaves none of an earlier run's outputs (they no longer describe the input)."""
        files = ImageFiles(self.batch.out, stem, {})
        try:
            files.begin()
        except FaceanonError:  # a marker that cannot be removed: its outputs go below, so no rerun trusts it
            pass
        files.cleanup()
        clear_in_progress(self.batch.out, stem)

    def _collect(self, fut, path: Path, stem: str, signature: dict) -> None:
        b = self.batch
        try:
            res = fut.result()
        except self.distributed.KilledWorker:
            self._forget(path, stem)
            b.done(path, failure_report(path, stem, KILLED))
            return
        except Exception as exc:  # e.g. a result that could not be deserialized
            self._forget(path, stem)
            b.failed(path, stem, exc)
            return
        if res.get("setup_error"):
            raise FaceanonError(res["setup_error"])
        rep = ImageReport(**res["report"])
        rep.input = str(path.resolve())
        if rep.status == "failed":
            self._forget(path, stem)
            exc = RemoteFailure(rep.error or "", res["traceback"]) if res.get("traceback") else None
            b.done(path, rep, exc)
            return
        files = ImageFiles(b.out, stem, signature)
        try:
            files.begin()
            for rel in rep.outputs:
                files.put(rel, res["files"][rel])
            pending = files.commit(rep, b.opts)
        except BaseException as exc:
            files.cleanup()
            if not isinstance(exc, Exception):
                raise
            b.failed(path, stem, exc)
            return
        try:
            rep = pending.result()  # every file, then the marker, on disk (cleaned up on failure)
        except Exception as exc:
            clear_in_progress(b.out, stem)
            b.failed(path, stem, exc)
            return
        clear_in_progress(b.out, stem)  # an earlier local run may have died on it: finished now
        b.done(path, rep)
