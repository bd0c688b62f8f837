"""The exceptions of the ``ddfa_v3`` package (no dependency on ``faceanon``).

Each carries a one-line ``message`` and an optional ``hint``, like the project's own family
(:mod:`faceanon.errors`); the project's adapter (``faceanon/models/ddfa_v3_backend.py``) turns them
into that family at the package boundary, so ``ddfa_v3`` itself imports nothing from ``faceanon``.
"""

from __future__ import annotations

__all__ = ["DDFAv3Error", "AssetError", "CheckpointError", "ImageError", "NoFaceError"]


class DDFAv3Error(Exception):
    """Base class of every error ``ddfa_v3`` raises on purpose."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(f"{message} (hint: {hint})" if hint else message)
        self.message, self.hint = message, hint

    def one_line(self) -> str:
        """``<message> (hint: <hint>)`` with every run of white space folded to one space."""
        return " ".join(str(self).split())


class AssetError(DDFAv3Error):
    """A model file (face model, alignment template) is missing, unreadable or malformed."""


class CheckpointError(AssetError):
    """A checkpoint cannot be read or does not match its network (strict loading)."""


class ImageError(DDFAv3Error):
    """The image argument is not an (H, W, 3) uint8 array."""


class NoFaceError(DDFAv3Error):
    """No face was found, or a detection cannot be aligned."""
