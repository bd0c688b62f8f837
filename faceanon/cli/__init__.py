"""Command-line interface: ``faceanon`` (Typer). Command modules register themselves on import."""

from __future__ import annotations

from faceanon.cli.app import app

# Each module registers its commands on ``app`` when imported (order = order in --help).
from faceanon.cli import (  # noqa: E402,F401
    reconstruct_cmd,
    segment_cmd,
    anonymize_cmd,
    render_cmd,
    composite_cmd,
    run_cmd,
    audit_cmd,
    assets_cmd,
)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="faceanon")


__all__ = ["app", "main"]
