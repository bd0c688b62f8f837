"""A real Dask cluster on 127.0.0.1 for tests and benchmarks: ``dask scheduler`` and ``dask worker``
processes started exactly as the README tells users to, stopped at the end.

    with LocalDaskCluster(tmp_path, workers=2, env=cli_env(home)) as cluster:
        subprocess.run([..., "run", IN, OUT, "--scheduler", cluster.address])
        cluster.worker_pids()  # {worker address: pid of the worker process}

Each worker runs under its nanny (the default), with one thread, as `dask worker --nthreads 1` does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def dask_command() -> list[str]:
    """argv prefix of the ``dask`` command line next to this Python (else ``python -m dask``)."""
    script = Path(sys.executable).with_name("dask")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "dask"]


class LocalDaskCluster:
    def __init__(self, folder: Path, workers: int = 2, env: dict | None = None, nanny: bool = True,
                 timeout: float = 180.0) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.n_workers, self.env, self.nanny, self.timeout = workers, env or dict(os.environ), nanny, timeout
        self.scheduler_file = self.folder / "scheduler.json"
        self.procs: list[subprocess.Popen] = []
        self.address = ""

    def _spawn(self, args: list[str], log: str) -> subprocess.Popen:
        fh = (self.folder / log).open("w")
        proc = subprocess.Popen([*dask_command(), *args], env=self.env, stdout=fh, stderr=subprocess.STDOUT,
                                cwd=self.folder, start_new_session=True)
        fh.close()
        self.procs.append(proc)
        return proc

    def start(self) -> "LocalDaskCluster":
        self._spawn(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(self.scheduler_file)], "scheduler.log")
        deadline = time.monotonic() + self.timeout
        while not self.scheduler_file.is_file() or not self.scheduler_file.read_text().strip():
            if time.monotonic() > deadline or self.procs[0].poll() is not None:
                raise RuntimeError(f"the Dask scheduler did not start: {(self.folder / 'scheduler.log').read_text()}")
            time.sleep(0.1)
        self.address = json.loads(self.scheduler_file.read_text())["address"]
        for i in range(self.n_workers):
            self.add_worker(f"w{i}")
        self.wait_for_workers(self.n_workers)
        return self

    def add_worker(self, name: str, env: dict | None = None) -> subprocess.Popen:
        args = ["worker", self.address, "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard", "--name", name]
        if not self.nanny:
            args.append("--no-nanny")
        saved = self.env
        if env is not None:
            self.env = env
        try:
            return self._spawn(args, f"worker-{name}.log")
        finally:
            self.env = saved

    def client(self):
        from distributed import Client

        return Client(self.address, set_as_default=False, timeout=30)

    def wait_for_workers(self, n: int) -> None:
        with self.client() as c:
            c.wait_for_workers(n, timeout=self.timeout)

    def worker_pids(self) -> dict[str, int]:
        with self.client() as c:
            return c.run(os.getpid)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.folder.glob("*.log")))

    def stop(self) -> None:
        for proc in reversed(self.procs):  # workers first, the scheduler last
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)
        self.procs.clear()

    def __enter__(self) -> "LocalDaskCluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
