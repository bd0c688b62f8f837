"""Checks for the old spellings of renamed command-line options (kept for one release)."""

from __future__ import annotations

from pathlib import Path


def files_of(root: Path) -> dict[str, bytes]:
    """Every file below ``root``: relative POSIX path -> bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}


def assert_same_files(a: Path, b: Path) -> None:
    """``a`` and ``b`` hold the same files, byte for byte (and at least one)."""
    fa, fb = files_of(a), files_of(b)
    assert fa, f"{a} is empty"
    assert sorted(fa) == sorted(fb)
    differ = [k for k in fa if fa[k] != fb[k]]
    assert not differ, f"files differ: {differ}"


def assert_one_warning(result, old: str, new: str) -> None:
    """The command worked and said once, on stderr, that ``old`` is deprecated in favour of ``new``."""
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.stderr.splitlines() if "deprecated" in ln]
    assert lines == [f"warning: {old} is deprecated, use {new} (the old name goes in the next release)"], lines


def assert_no_warning(result) -> None:
    assert result.exit_code == 0, result.output
    assert "deprecated" not in result.stderr
