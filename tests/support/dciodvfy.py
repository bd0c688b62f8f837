"""``dciodvfy`` (Debian package dicom3tools): the DICOM object validator the DICOM tests run.

:func:`dciodvfy` returns the program's path, installing the package with apt-get once when it is
missing and the tests run as root (as CI does); the caller skips with the returned reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

_STATE: dict = {}


def dciodvfy() -> tuple[str | None, str]:
    """(path to dciodvfy or None, why it is not available)."""
    if "result" in _STATE:
        return _STATE["result"]
    exe = shutil.which("dciodvfy")
    reason = ""
    if exe is None:
        if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
            reason = "dciodvfy not installed (apt-get install dicom3tools, needs root)"
        else:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            try:
                subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600, check=False)
                done = subprocess.run(["apt-get", "install", "-y", "-qq", "dicom3tools"], env=env,
                                      capture_output=True, text=True, timeout=900, check=False)
                exe = shutil.which("dciodvfy")
                if exe is None:
                    reason = f"apt-get install dicom3tools failed: {(done.stderr or done.stdout).strip()[-300:]}"
            except (OSError, subprocess.TimeoutExpired) as exc:
                reason = f"apt-get install dicom3tools failed: {exc}"
    _STATE["result"] = (exe, reason)
    return _STATE["result"]


def validate(exe: str, path: Path) -> tuple[list[str], str]:
    """(error lines, full output) of ``dciodvfy path``; warnings are not errors."""
    done = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=120, check=False)
    text = done.stdout + done.stderr
    errors = [line for line in text.splitlines() if line.startswith("Error")]
    return errors, text
