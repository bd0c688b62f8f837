"""The command-line options: each built from its :class:`faceanon.options.Spec` (one name, default,
bound and help for ``faceanon run`` and the stage commands alike), and the old spellings of renamed
options (:func:`renamed`).
"""

from __future__ import annotations

import sys
from enum import Enum
from typing import Optional

import typer
from typer.core import TyperCommand

from faceanon import options as o
from faceanon.io.layout import PATTERNS
from faceanon.options import Spec


def _choices(name: str, spec: Spec) -> type[Enum]:
    """A str Enum of a spec's choices (Typer shows and checks them)."""
    return Enum(name, {c.replace("-", "_"): c for c in spec.choices}, type=str)


Model = _choices("Model", o.MODEL)
Fill = _choices("Fill", o.FILL)
Privacy = _choices("Privacy", o.PRIVACY)
Background = _choices("Background", o.BACKGROUND)
Renderer = _choices("Renderer", o.RENDERER)

_ENUMS = {o.MODEL: Model, o.FILL: Fill, o.PRIVACY: Privacy, o.BACKGROUND: Background, o.RENDERER: Renderer}


def option(spec: Spec, *short: str, help: Optional[str] = None, default=...):
    """The Typer option of ``spec`` (its flag, bounds and help; ``default`` overrides its default,
    e.g. None for an option whose default comes from elsewhere)."""
    value = spec.default if default is ... else default
    enum = _ENUMS.get(spec)
    if enum is not None and value is not None:
        value = enum(value)
    bounds = {k: v for k, v in (("min", spec.min), ("max", spec.max)) if v is not None}
    return typer.Option(value, spec.flag, *short, help=help or spec.help, **bounds)


MODEL = option(o.MODEL, "-m")
FILL = option(o.FILL)
PRIVACY = option(o.PRIVACY)
MARGIN = option(o.MARGIN)
KEEP_BROWS = option(o.KEEP_BROWS)
KEEP_MOUTH = option(o.KEEP_MOUTH)
FEATHER_PX = option(o.FEATHER_PX)
ALPHA = option(o.ALPHA)
KEEP_POSE = option(o.KEEP_POSE)
TEX_SIZE = option(o.TEX_SIZE)
RECON_TEX_SIZE = option(o.RECON_TEX_SIZE)
IMG_SIZE = option(o.IMG_SIZE)
FRAME_FILL = option(o.FRAME_FILL)
BACKGROUND = option(o.BACKGROUND)
SUPERSAMPLE = option(o.SUPERSAMPLE)
RENDERER = option(o.RENDERER)
BLEND_PX = option(o.BLEND_PX)
VIS = option(o.VIS)
MIN_FACE = option(o.MIN_FACE_SIZE)
MAX_FACES = option(o.MAX_FACES)
THRESHOLD = option(o.THRESHOLD)
MAX_PIXELS = option(o.MAX_PIXELS)

RECURSIVE = typer.Option(False, "--recursive", "-r", help="Also process images in subfolders of IN.")
MIRROR = typer.Option(
    None, "--mirror", help="Asset mirror (folder or http(s) base URL); default: $FACEANON_ASSETS_MIRROR.",
)
OFFLINE = typer.Option(False, "--offline", help="Never open a network connection (also: FACEANON_OFFLINE=1).")
PHOTOS = typer.Option(..., "--images", "-i", help="Folder of the original photos given to `faceanon reconstruct`.")
SEG = typer.Option(..., "--seg", "-s", help=f"Output folder of `faceanon segment` ({PATTERNS['segmented']}).")


def store_from(mirror: Optional[str], offline: bool):
    from faceanon.assets import get_store

    return get_store(mirror=mirror, offline=True if offline else None)


# ------------------------------------------------------------------------------------ old spellings


def renamed(**aliases: str) -> type[TyperCommand]:
    """A command class that still accepts the old spelling of renamed options, for one release:
    ``renamed(**{"--margin": "--frame-fill"})``. The old flag is hidden (not in --help); using it
    prints one warning line on stderr and works as the new one (``--old value``, ``--old=value``;
    a short old flag only as a separate token)."""

    class Renamed(TyperCommand):
        def parse_args(self, ctx, args: list[str]) -> list[str]:
            return super().parse_args(ctx, _rename(args, aliases))

    return Renamed


def _rename(args: list[str], aliases: dict[str, str]) -> list[str]:
    out: list[str] = []
    warned: set[str] = set()
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        old, eq, value = arg.partition("=")
        new = aliases.get(old)
        if new is None or (eq and not old.startswith("--")):
            out.append(arg)
            continue
        if old not in warned:
            warned.add(old)
            sys.stderr.write(f"warning: {old} is deprecated, use {new} (the old name goes in the next release)\n")
        out.append(f"{new}={value}" if eq else new)
    return out
