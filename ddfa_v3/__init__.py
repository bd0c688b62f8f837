"""Clean-room 3DDFA-V3 inference (see ``SEED_PIPELINE.md`` §A): networks, face model, alignment.

Importable without ``faceanon.cli``; it uses ``faceanon.errors``, ``faceanon.types``, the numpy-only
unpickler ``faceanon.io.safe_pickle`` and, by default, the project rasterizer ``faceanon.raster``.

Modules: :mod:`~ddfa_v3.model` (``DDFAv3``: detect every face, fit one face, project convention),
:mod:`~ddfa_v3.retinaface`, :mod:`~ddfa_v3.landmark106`, :mod:`~ddfa_v3.recon_net`,
:mod:`~ddfa_v3.face_model`, :mod:`~ddfa_v3.align` (numpy + PIL only), :mod:`~ddfa_v3.checkpoints`,
:mod:`~ddfa_v3.texture` (the seed's extractTex, §A11), :mod:`~ddfa_v3.landmarks` (``ldm106_2d``, §A10),
:mod:`~ddfa_v3.testing` (a synthetic asset set for tests).
"""

from __future__ import annotations

__all__ = ["DDFAv3", "to_facefit", "write_synthetic_assets", "ASSET_FILES"]


def __getattr__(name: str):  # lazy: `import ddfa_v3.align` does not pull in torch
    if name in ("DDFAv3", "to_facefit"):
        from . import model

        return getattr(model, name)
    if name in ("write_synthetic_assets", "ASSET_FILES"):
        from . import testing

        return getattr(testing, name)
    raise AttributeError(f"module 'ddfa_v3' has no attribute {name!r}")
