"""One exception family for every user-facing failure.

Every error carries a one-line ``message`` (what went wrong, naming the file or
argument) and an optional ``hint`` (the command or action that fixes it). The
CLI prints ``error: <message> (hint: <hint>)`` on one line and exits with
``exit_code``; tracebacks are shown only with ``--debug``.
"""

from __future__ import annotations


class FaceanonError(Exception):
    """Base class of every error faceanon reports to its user."""

    exit_code = 1  # runtime failure

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = " ".join(self.message.split())
        if self.hint:
            text += f" (hint: {' '.join(self.hint.split())})"
        return text

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.one_line()


class UsageError(FaceanonError):
    """The command line itself is wrong (bad option value, OUT inside IN...)."""

    exit_code = 2


class AssetError(FaceanonError):
    """A model file is missing, unverified, corrupt or could not be downloaded."""


class DownloadError(AssetError):
    """A download failed (HTTP error, dead host, hash mismatch)."""


class ChecksumError(DownloadError):
    """A file's sha256 differs from the one the manifest (or first download) recorded."""


class LicenseNotAccepted(AssetError):
    """BFM-derived files need an explicit acceptance of their non-commercial licence."""


class ImageError(FaceanonError):
    """An input image cannot be read, is too large, or has an unsupported layout."""


class NoFaceError(FaceanonError):
    """No face was found in an image (or none passed the size filter)."""


class CheckpointError(AssetError):
    """A checkpoint does not match the network it is loaded into (strict loading)."""


class OutputError(FaceanonError):
    """An output cannot be written (permissions, disk full...)."""
