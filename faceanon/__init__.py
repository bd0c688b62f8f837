"""faceanon: anonymize faces in photos through 3D face reconstruction.

Python API: :class:`faceanon.Anonymizer` (see :mod:`faceanon.api`); many images, locally or on a Dask
cluster: :class:`faceanon.runner.Runner`.
"""

__version__ = "0.1.0"

from faceanon.errors import FaceanonError  # noqa: E402,F401


def __getattr__(name: str):
    # Lazy: `import faceanon` (and the CLI's --help) stays light; the API pulls numpy and the stages.
    if name in ("Anonymizer", "AnonymizeResult", "FaceRecord"):
        from faceanon import api

        return getattr(api, name)
    raise AttributeError(f"module 'faceanon' has no attribute {name!r}")


__all__ = ["Anonymizer", "AnonymizeResult", "FaceRecord", "FaceanonError", "__version__"]
