"""faceanon: anonymize faces in photos through 3D face reconstruction."""

__version__ = "0.1.0"

from faceanon.errors import FaceanonError  # noqa: E402,F401
