"""Model files and models for a run: the asset store of this process (data dir, mirror, offline),
the verification of every file a model set loads, and the per-process cached models."""

from __future__ import annotations

from faceanon.options import DetectOptions
from faceanon.stages.pipeline import Models

#: ``(mirror, offline)`` as given to ``run`` (``--mirror``, ``--offline``); None / False: the
#: environment decides (FACEANON_ASSETS_MIRROR, FACEANON_OFFLINE). A plain tuple: it is sent to
#: worker processes and cluster workers, which build their own store from it.
StoreArgs = tuple


def store_for(store_args: StoreArgs):
    from faceanon.assets import get_store

    mirror, offline = store_args
    return get_store(mirror=mirror, offline=True if offline else None)


def require_assets(store, model: str) -> None:
    """Verify the model files ``model`` loads before any work (hashes are cached, so this is cheap).

    A missing or corrupt file is then one error line naming it and ``faceanon assets download``,
    the same with or without --jobs (a worker failing to load its models would only break the pool).
    """
    from faceanon.models.loader import required_assets

    for name in required_assets(model):
        store.require(name)


def load_models(store, opts: DetectOptions) -> Models:
    """The detector and the reconstruction backend of ``opts`` (any record with the
    :class:`~faceanon.options.DetectOptions` fields, e.g. RunOptions; loaded once per process and options)."""
    from faceanon.models.loader import get_backend, get_detector

    # threshold None: the loader applies each detector's own default
    detector = get_detector(store, model=opts.model, min_face_size=opts.min_face_size,
                            max_faces=opts.max_faces or None, threshold=opts.threshold)
    return Models(detector=detector, backend=get_backend(store, opts.model))
