"""Clean-room 3DDFA-V3 inference: networks, face model, alignment (docs/ddfa_v3.md).

A package of its own: importing it (or any of its modules) imports nothing from ``faceanon``
(``tests/test_ddfa_v3_standalone.py``). It raises its own errors (:mod:`ddfa_v3.errors`) and returns
its own records (:class:`~ddfa_v3.retinaface.FaceBox`, plain dicts); the project's adapter
``faceanon/models/ddfa_v3_backend.py`` converts both. Two services are borrowed from ``faceanon`` at
call time only, when the caller passes none: the compiled rasterizer (``rasterize=`` of
:meth:`DDFAv3.fit` and :func:`ddfa_v3.texture.uv_render`) and the numpy-only unpickler that reads
``face_model.npy`` from a path (pass a dict to :class:`~ddfa_v3.face_model.FaceModel` to avoid it).

Modules: :mod:`~ddfa_v3.model` (``DDFAv3``: detect every face, fit one face, project convention),
:mod:`~ddfa_v3.retinaface`, :mod:`~ddfa_v3.landmark106`, :mod:`~ddfa_v3.recon_net`,
:mod:`~ddfa_v3.face_model`, :mod:`~ddfa_v3.align` (numpy + PIL only), :mod:`~ddfa_v3.checkpoints`,
:mod:`~ddfa_v3.texture` (the seed's extractTex), :mod:`~ddfa_v3.landmarks` (``ldm106_2d``),
:mod:`~ddfa_v3.errors`, :mod:`~ddfa_v3.testing` (a synthetic asset set for tests).
"""

from __future__ import annotations

__all__ = ["DDFAv3", "FaceBox", "write_synthetic_assets", "ASSET_FILES"]


def __getattr__(name: str):  # lazy: `import ddfa_v3.align` does not pull in torch
    if name in ("DDFAv3", "FaceBox"):
        from . import model

        return getattr(model, name)
    if name in ("write_synthetic_assets", "ASSET_FILES"):
        from . import testing

        return getattr(testing, name)
    raise AttributeError(f"module 'ddfa_v3' has no attribute {name!r}")
