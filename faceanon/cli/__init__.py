"""Command-line interface: ``faceanon`` (Typer). Command modules register themselves on import."""

from __future__ import annotations

from faceanon.cli.app import app

# Command groups. Each module registers its commands on ``app`` when imported.
from faceanon.cli import assets_cmd, reconstruct_cmd  # noqa: E402,F401


def main() -> None:
    """Console-script entry point."""
    app(prog_name="faceanon")


__all__ = ["app", "main"]
