"""The face recognizers ("attackers") the audit knows by name, each behind its own optional extra.

``dlib`` is the primary attacker: its detector also runs the weak attacker, the detection-kept figure
and the render's alignment. Every other attacker only embeds faces (aligned by the run's landmarks or
by dlib's landmarks on the render) and gets its own rows in the audit's ``attacks`` table.

Each entry: a loader (imports lazily; raises a :class:`~faceanon.errors.FaceanonError` naming the extra
when its packages are missing) and a cheap availability check (no model loading).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List

from faceanon.errors import UsageError


@dataclass(frozen=True)
class AttackerEntry:
    name: str
    extra: str  # the pip extra that installs it
    load: Callable[[], object]  # -> a recognizer.Recognizer
    available: Callable[[], bool]  # installed? (imports nothing heavy)
    about: str


def _dlib_load():
    from faceanon.audit.recognizer import load_models  # noqa: PLC0415

    return load_models()


def _dlib_available() -> bool:
    from faceanon.audit.recognizer import AuditExtraMissing, check_available  # noqa: PLC0415

    try:
        check_available()
    except AuditExtraMissing:
        return False
    return True


def _sface_load():
    from faceanon.audit import sface  # noqa: PLC0415

    return sface.load()


def _sface_available() -> bool:
    from faceanon.audit import sface  # noqa: PLC0415

    return sface.available()


REGISTRY: Dict[str, AttackerEntry] = {
    "dlib": AttackerEntry("dlib", "audit", _dlib_load, _dlib_available,
                          "dlib ResNet 128-D descriptor, Euclidean distance < 0.6"),
    "sface": AttackerEntry("sface", "audit-sface", _sface_load, _sface_available,
                           "OpenCV Zoo SFace 128-D feature, 1 - cosine < 0.637"),
}


def names() -> List[str]:
    """Every attacker name the audit knows, primary first."""
    return list(REGISTRY)


def installed() -> List[str]:
    """The known attackers whose extra is installed, primary first."""
    return [n for n, e in REGISTRY.items() if e.available()]


def resolve(requested) -> List[str]:
    """Attacker names from ``--attackers`` text ("dlib,sface", "all" = every installed one, "" / None =
    every installed one); dlib is always first (the audit needs its detector). UsageError on unknown names."""
    if requested is None or (isinstance(requested, str) and requested.strip().lower() in ("", "all")):
        out = installed()
        return out if "dlib" in out else ["dlib", *out]
    items = requested.split(",") if isinstance(requested, str) else list(requested)
    wanted = [x.strip().lower() for x in items if x.strip()]
    unknown = [x for x in wanted if x not in REGISTRY]
    if unknown:
        raise UsageError(f"unknown attacker(s): {', '.join(unknown)}", f"choose from: {', '.join(names())}, all")
    return ["dlib", *[x for x in dict.fromkeys(wanted) if x != "dlib"]]


def load(name: str):
    """The loaded recognizer called ``name`` (cached by its loader)."""
    try:
        entry = REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown attacker {name!r}", f"choose from: {', '.join(names())}") from None
    return entry.load()
