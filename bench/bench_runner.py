"""Benchmark of the Runner: default vs all outputs, --jobs 2, and a Dask cluster of two workers on this machine.

Usage (real model files through the mirror; the cluster extra installed):

    FACEANON_ASSETS_MIRROR=<asset mirror folder> python bench/bench_runner.py [--repeat 3]

The 16 fixture photos are copied ``--repeat`` times (distinct names) into a temporary IN folder and
run with ``faceanon.runner.Runner`` exactly as ``faceanon run`` does (lock, markers, report.json,
atomic outputs), default options. Every configuration runs once to warm up (models loaded, detector
networks built) and is then timed on two ``force=True`` reruns (the faster counts):

1. this process, default outputs (anonymized, anon, render) vs ``--outputs all`` (+ face3d, seg);
2. ``--jobs 2`` (two worker processes; a pool is started per run, as the CLI does);
3. a Dask cluster on 127.0.0.1: ``dask scheduler`` + 2 ``dask worker --nthreads 1`` (under their
   nannies, so torch runs one thread per worker), the same process count as ``--jobs 2``.

Then the cluster path's own per-image costs, measured directly: the worker's scratch round trip
(``process_remote`` vs ``start_image`` on the same photo in this process) and the client's write of
the returned files. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests.support (the local cluster helper)
DEFAULT_PHOTOS = HERE.parent.parent / "shared" / "fixtures" / "photos"


def _batch(photos: Path, folder: Path, repeat: int) -> int:
    from faceanon.io.images import list_images

    folder.mkdir()
    n = 0
    for r in range(repeat):
        for p in list_images(photos):
            shutil.copy(p, folder / f"r{r}_{p.name}")
            n += 1
    return n


def _timed_run(runner, inp: Path, out: Path, runs: int = 2) -> float:
    """The fastest of ``runs`` timed reruns after a warm-up (the shared VM's noise only adds time)."""
    runner.run(inp, out, force=True)  # warm-up
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        result = runner.run(inp, out, force=True)
        best = min(best, time.perf_counter() - t)
        assert result.count("ok") == len(result.reports), [r.error for r in result.reports if r.error]
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--outputs-only", action="store_true", help="only the interleaved default-vs-all comparison")
    args = ap.parse_args()

    from faceanon.assets import get_store
    from faceanon.runner import Runner, RunOptions

    store = get_store()
    store.download(model="lite", accept_license=True, progress=False)
    if args.outputs_only:
        with tempfile.TemporaryDirectory() as tmp:
            _outputs_saving(args.photos, Path(tmp))
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inp = tmp / "in"
        n = _batch(args.photos, inp, args.repeat)
        t_default = _timed_run(Runner(RunOptions()), inp, tmp / "default")
        rows.append(("this process, default outputs (anonymized, anon, render)", t_default))
        t_all = _timed_run(Runner(RunOptions(outputs="all")), inp, tmp / "all")
        rows.append(("this process, `--outputs all` (+ face3d, seg)", t_all))
        rows.append(("`--jobs 2`, default outputs", _timed_run(Runner(RunOptions(), jobs=2), inp, tmp / "jobs2")))

        from tests.support.dask_cluster import LocalDaskCluster

        from faceanon.assets.store import default_data_dir

        env = dict(os.environ, FACEANON_HOME=str(default_data_dir()))  # the workers share this data dir
        with LocalDaskCluster(tmp / "dask", workers=2, env=env) as cluster:
            runner = Runner(RunOptions(), scheduler=cluster.address)
            rows.append(("Dask cluster, 2 workers x 1 thread, default outputs", _timed_run(runner, inp, tmp / "cluster")))
            with cluster.client() as c:
                per_worker = c.run(_worker_threads)
                roundtrip = _dask_roundtrip(c, 300_000, 8_000_000)

        print(f"## Runner on {n} images (the 16 fixtures x {args.repeat}), {os.cpu_count()} cores\n")
        print("| configuration | wall s / image | images / s |")
        print("|---|---:|---:|")
        for name, dt in rows:
            print(f"| {name} | {dt / n:.3f} | {n / dt:.2f} |")
        print(f"\ndefault outputs save {100 * (1 - t_default / t_all):.0f} % of the `--outputs all` time; "
              f"torch threads per cluster worker: {sorted(per_worker.values())}\n")
        _cluster_costs(args.photos, tmp, roundtrip)
        _outputs_saving(args.photos, tmp)
    return 0


def _worker_threads() -> int:
    import torch

    return torch.get_num_threads()


def _outputs_saving(photos: Path, tmp: Path, reps: int = 3) -> None:
    """Default outputs vs ``--outputs all`` on the same photo back to back (interleaved, so that the
    shared VM's slow phases hit both alike), the fastest of ``reps`` each: wall clock of one image
    with its files on disk, and the CPU seconds of all threads (the extracted texture and the
    face3d/seg encoding run on the writer thread, partly hidden behind the main thread on 2 cores)."""
    from faceanon.io.images import list_images
    from faceanon.runner.commit import start_image
    from faceanon.runner.models import load_models, store_for
    from faceanon.stages.pipeline import RunOptions

    configs = {"default": RunOptions(), "all": RunOptions(outputs="all")}
    models = load_models(store_for((None, False)), configs["default"])
    wall = {k: [] for k in configs}
    cpu = {k: [] for k in configs}
    for i, p in enumerate(list_images(photos)):
        start_image(p, p.stem, tmp / "warm", models, configs["all"]).result()
        best = {k: (float("inf"), float("inf")) for k in configs}
        for r in range(reps):
            for name, opts in configs.items():
                t, c = time.perf_counter(), time.process_time()
                start_image(p, p.stem, tmp / f"o_{name}_{i}_{r}", models, opts).result()
                best[name] = min(best[name], (time.perf_counter() - t, time.process_time() - c))
        for name in configs:
            wall[name].append(best[name][0])
            cpu[name].append(best[name][1])
    print("## Default outputs vs `--outputs all` (one image at a time, interleaved, fastest of 3)\n")
    print("| outputs | wall s / image (sum / 16) | CPU s / image (all threads) |")
    print("|---|---:|---:|")
    n = len(wall["all"])
    for name in configs:
        print(f"| {name} | {sum(wall[name]) / n:.3f} | {sum(cpu[name]) / n:.3f} |")
    print(f"\ndefault saves {100 * (1 - sum(wall['default']) / sum(wall['all'])):.0f} % of the wall clock and "
          f"{100 * (1 - sum(cpu['default']) / sum(cpu['all'])):.0f} % of the CPU time of `--outputs all`\n")


def _echo(data: bytes, size: int) -> bytes:
    return b"x" * size


def _dask_roundtrip(client, up: int, down: int, runs: int = 10) -> float:
    """Median seconds of one task that takes ``up`` bytes and returns ``down`` bytes (no compute):
    Dask's own cost per image (scheduling, transfer through the scheduler and back)."""
    payload = os.urandom(up)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        client.submit(_echo, payload, down, pure=False).result()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _cluster_costs(photos: Path, tmp: Path, roundtrip: float) -> None:
    """Per-image costs of the cluster path besides Dask's transport: the worker's scratch folder
    (input written, outputs written and read back) and the client's atomic writes of the result.
    Each photo is run 3 times each way, interleaved, and the fastest of each counts (the VM's noise
    only adds time)."""
    from faceanon.io.images import list_images
    from faceanon.runner.cluster import process_remote
    from faceanon.runner.commit import ImageFiles, start_image
    from faceanon.runner.models import load_models, store_for
    from faceanon.runner.state import input_signature
    from faceanon.stages.pipeline import ImageReport, RunOptions

    opts = RunOptions()
    models = load_models(store_for((None, False)), opts)
    direct, remote, write, sizes = [], [], [], []
    for i, p in enumerate(list_images(photos)):
        data = p.read_bytes()
        start_image(p, p.stem, tmp / "warm", models, opts).result()
        d, r, w = [], [], []
        for k in range(3):
            t = time.perf_counter()
            start_image(p, p.stem, tmp / f"direct{i}_{k}", models, opts).result()
            d.append(time.perf_counter() - t)
            t = time.perf_counter()
            res = process_remote(data, p.name, p.stem, opts, (None, False))
            r.append(time.perf_counter() - t)
            t = time.perf_counter()
            files = ImageFiles(tmp / f"client{k}", p.stem, input_signature(p))
            files.begin()
            for rel in res["report"]["outputs"]:
                files.put(rel, res["files"][rel])
            files.commit(ImageReport(**res["report"]), opts).result()
            w.append(time.perf_counter() - t)
        direct.append(min(d))
        remote.append(min(r))
        write.append(min(w))
        sizes.append((len(data), sum(len(b) for b in res["files"].values())))
    med = statistics.median
    print("## Cluster path: its own per-image costs (median over the fixtures)\n")
    print("| step | median s |")
    print("|---|---:|")
    print(f"| stage chain in this process (start_image, files written) | {med(direct):.3f} |")
    print(f"| the same as a worker task (process_remote: scratch folder, outputs read back) | {med(remote):.3f} |")
    print(f"| worker scratch overhead (difference per photo) | {med([r - d for r, d in zip(remote, direct)]):+.3f} |")
    print(f"| Dask round trip of a photo's bytes and its outputs (no compute) | {roundtrip:.3f} |")
    print(f"| client: atomic writes of the returned files + marker | {med(write):.3f} |")
    print(f"\nper image: median {med([a for a, _ in sizes]) / 1e6:.2f} MB sent, "
          f"{med([b for _, b in sizes]) / 1e6:.2f} MB returned (default outputs)")


if __name__ == "__main__":
    sys.exit(main())
