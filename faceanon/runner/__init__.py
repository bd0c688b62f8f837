"""Running the pipeline over many images: :class:`Runner` (resume, crash markers, the lock on OUT,
per-file failure isolation, report.json, atomic outputs) and its executors - this process, local
worker processes (``jobs``), or a Dask cluster (``scheduler``). ``faceanon run`` and
:meth:`faceanon.Anonymizer.run` are thin users of it."""

from faceanon.runner.core import RunEvents, Runner, RunResult
from faceanon.stages.pipeline import OUTPUT_KINDS, SAFE_OUTPUTS, ImageReport, RunOptions

__all__ = ["Runner", "RunEvents", "RunResult", "RunOptions", "ImageReport", "OUTPUT_KINDS", "SAFE_OUTPUTS"]
