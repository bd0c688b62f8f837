"""Privacy audit of a ``faceanon run`` output (``faceanon audit``): no Typer/Rich here.

Public API::

    from faceanon.audit import run_audit
    result = run_audit(Path("out"), originals=None, threshold=0.6)   # writes out/audit.json + audit.csv
    result.exit_code(fail_on_reid=True)                              # 3 if a face is re-identified

dlib (the optional ``faceanon[audit]`` extra) is imported only when an audit runs.
"""

from faceanon.audit.color import ciede2000, delta_e_srgb, srgb_to_lab
from faceanon.audit.core import (
    DEFAULT_THRESHOLD,
    FIELD_NAMES,
    AuditResult,
    FaceAudit,
    read_audit_csv,
    read_audit_json,
    rows_equal,
    run_audit,
)
from faceanon.audit.metrics import DEFAULT_TOLERANCE, RegionStats, face_region_stats, region_delta_e
from faceanon.audit.recognizer import INSTALL_HINT, AuditExtraMissing

__all__ = [
    "DEFAULT_THRESHOLD",
    "DEFAULT_TOLERANCE",
    "FIELD_NAMES",
    "INSTALL_HINT",
    "AuditExtraMissing",
    "AuditResult",
    "FaceAudit",
    "RegionStats",
    "ciede2000",
    "delta_e_srgb",
    "face_region_stats",
    "read_audit_csv",
    "read_audit_json",
    "region_delta_e",
    "rows_equal",
    "run_audit",
    "srgb_to_lab",
]
