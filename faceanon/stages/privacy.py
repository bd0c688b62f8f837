"""The privacy knob: one name for a tested set of removal settings (``--privacy``).

=========  ===========  ========================================================================
level      margin       what is removed and redrawn (besides the warp to the mean face's shape)
=========  ===========  ========================================================================
low        0.15 x IOD   eyes and lips (identity-free closed eyes and lips); the person's eyebrows
                        are kept, moved to the mean face's brow position by the warp
standard   0.25 x IOD   eyes, lips AND eyebrows (redrawn with the mean face's brows); default
high       0.30 x IOD   the same with a wider margin: more of the periocular and perioral skin
=========  ===========  ========================================================================

IOD is the face's inter-ocular distance measured in 3D (it does not shrink when the head turns). The
measured trade-off of the levels - faces still matched by face recognizers against the skin kept - is
in bench/privacy.md. ``--margin`` and ``--keep-brows`` override a level's settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["PrivacyLevel", "PRIVACY_LEVELS", "DEFAULT_PRIVACY", "resolve_privacy"]


@dataclass(frozen=True)
class PrivacyLevel:
    """margin: removal margin as a fraction of the 3D inter-ocular distance; brows: remove and redraw
    the eyebrows."""

    name: str
    margin: float
    brows: bool


PRIVACY_LEVELS = {
    "low": PrivacyLevel("low", 0.15, False),
    "standard": PrivacyLevel("standard", 0.25, True),
    "high": PrivacyLevel("high", 0.30, True),
}
DEFAULT_PRIVACY = "standard"


def resolve_privacy(level: str = DEFAULT_PRIVACY, *, margin: Optional[float] = None,
                    keep_brows: bool = False) -> tuple[float, bool]:
    """(margin, brows) of a privacy level, with the explicit ``margin`` / ``keep_brows`` overrides."""
    from faceanon.errors import UsageError

    if level not in PRIVACY_LEVELS:
        raise UsageError(f"unknown privacy level {level!r}", f"use one of {', '.join(PRIVACY_LEVELS)}")
    lv = PRIVACY_LEVELS[level]
    return (lv.margin if margin is None else float(margin)), (lv.brows and not keep_brows)
