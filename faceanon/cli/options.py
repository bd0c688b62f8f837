"""Options shared by several commands (one definition, same help everywhere)."""

from __future__ import annotations

from enum import Enum
from typing import Optional

import typer


class Model(str, Enum):
    lite = "lite"
    ddfa_v3 = "3ddfa-v3"


class Fill(str, Enum):
    features = "features"
    inpaint = "inpaint"


FILL = typer.Option(
    Fill.features, "--fill",
    help="What replaces the removed eyes and lips: 'features' draws closed eyes with a lash line and lips "
         "from the mean face, coloured from the person's skin (identity-free, reads as a face); 'inpaint' "
         "leaves the skin-coloured fill of the segment stage (the seed's look).")
class Privacy(str, Enum):
    low = "low"
    standard = "standard"
    high = "high"


PRIVACY = typer.Option(
    Privacy.standard, "--privacy",
    help="How much is removed and redrawn: low = eyes and lips (margin 0.15 of the inter-ocular distance, "
         "the person's eyebrows kept); standard = eyes, lips and eyebrows (margin 0.25); high = the same with "
         "margin 0.3. Measured trade-off in bench/privacy.md.")
MARGIN = typer.Option(
    None, "--margin", min=0.0, max=2.0,
    help="Removal margin around the removed parts, as a fraction of the face's inter-ocular distance "
         "measured in 3D (default: from --privacy). Smaller keeps more skin but leaves faces easier to "
         "re-identify (see `faceanon audit`).")
KEEP_BROWS = typer.Option(False, "--keep-brows", help="Keep the person's eyebrows (only moved with the face's new shape).")
MODEL = typer.Option(Model.lite, "--model", "-m", help="Reconstruction model: lite (default, CPU-fast) or 3ddfa-v3.")
RECURSIVE = typer.Option(False, "--recursive", "-r", help="Also process images in subfolders of IN.")
MIRROR = typer.Option(
    None, "--mirror", help="Asset mirror (folder or http(s) base URL); default: $FACEANON_ASSETS_MIRROR.",
)
OFFLINE = typer.Option(False, "--offline", help="Never open a network connection (also: FACEANON_OFFLINE=1).")
PHOTOS = typer.Option(..., "--images", "-i", help="Folder of the original photos given to `faceanon reconstruct`.")
MAX_PIXELS = typer.Option(60_000_000, "--max-pixels", min=1, help="Refuse images larger than this many pixels (checked before decoding).")
def tex_size(default: int, what: str):
    """``--tex-size`` of a command that bakes a UV texture (``what`` names it)."""
    return typer.Option(default, "--tex-size", min=64, max=8192,
                        help=f"{what} (px); a face small in its photo is sampled at the resolution it has "
                             "(>= 2 texels per photo pixel) and resampled to this size.")


MIN_FACE = typer.Option(40, "--min-face-size", min=0, help="Ignore faces whose box is smaller than this (px).")
MAX_FACES = typer.Option(0, "--max-faces", min=0, help="Keep at most this many faces per image (0 = all).")
THRESHOLD = typer.Option(None, "--threshold", min=0.0, max=0.99,
                         help="Face detector score threshold (default: 0.5 lite, 0.7 3ddfa-v3).")


def store_from(mirror: Optional[str], offline: bool):
    from faceanon.assets import get_store

    return get_store(mirror=mirror, offline=True if offline else None)


def load_models(store, model: Model, *, min_face_size: int, max_faces: int, threshold: float | None):
    """Load the detector and the reconstruction backend once (cached per process)."""
    from faceanon.models.loader import get_backend, get_detector

    # threshold None: the loader applies each detector's own default
    detector = get_detector(store, model=model.value, min_face_size=min_face_size, max_faces=max_faces or None,
                            threshold=threshold)
    backend = get_backend(store, model.value)
    return detector, backend
