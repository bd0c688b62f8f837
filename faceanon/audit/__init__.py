"""Privacy audit of a ``faceanon run`` output (``faceanon audit``): no Typer/Rich here.

Public API::

    from faceanon.audit import run_audit
    result = run_audit(Path("out"), originals=None, threshold=0.6)   # writes out/audit.json + audit.csv
    result.exit_code(fail_on_reid=True)                              # 3 if re-identified beyond the eraser
    result.by_pose()                                                 # the figures per pose bucket

    from faceanon.audit import attackers                             # several recognizers:
    run_audit(Path("out"), attackers=[attackers.load("sface")])      # dlib + SFace (faceanon[audit-sface])

dlib (the optional ``faceanon[audit]`` extra) is imported only when an audit runs; every other recognizer
only when it is loaded. A recognizer is any object with the :class:`Recognizer` interface.
"""

from faceanon.audit.color import ciede2000, delta_e_srgb, srgb_to_lab
from faceanon.audit.core import (
    ATTACK_FIELD_NAMES,
    DEFAULT_THRESHOLD,
    FIELD_NAMES,
    AttackRow,
    AuditResult,
    FaceAudit,
    load_audit,
    read_attacks_csv,
    read_attacks_json,
    read_audit_csv,
    read_audit_json,
    rows_equal,
    run_audit,
)
from faceanon.audit.metrics import DEFAULT_TOLERANCE, RegionStats, face_region_stats, region_delta_e
from faceanon.audit.pose import pose_bucket
from faceanon.audit.recognizer import INSTALL_HINT, AuditExtraMissing, Recognizer

__all__ = [
    "ATTACK_FIELD_NAMES",
    "AttackRow",
    "DEFAULT_THRESHOLD",
    "DEFAULT_TOLERANCE",
    "FIELD_NAMES",
    "INSTALL_HINT",
    "AuditExtraMissing",
    "AuditResult",
    "FaceAudit",
    "Recognizer",
    "RegionStats",
    "ciede2000",
    "delta_e_srgb",
    "face_region_stats",
    "load_audit",
    "pose_bucket",
    "read_attacks_csv",
    "read_attacks_json",
    "read_audit_csv",
    "read_audit_json",
    "region_delta_e",
    "rows_equal",
    "run_audit",
    "srgb_to_lab",
]
