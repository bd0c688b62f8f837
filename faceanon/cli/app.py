"""The Typer application object and the central error handler.

Every command module decorates functions on :data:`app` (or adds a sub-Typer). Errors of the
:class:`~faceanon.errors.FaceanonError` family are turned into one line on stderr and an exit code
(1 runtime, 2 usage) here, in one place; tracebacks only with ``--debug``.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer
from typer.core import TyperGroup

from faceanon import __version__
from faceanon.errors import FaceanonError

STATE = {"debug": False}

# typer >= 0.29 bundles its own click: its Exit/Abort and TyperException (the base of every click
# usage error) must pass through untouched so that --help exits 0 and usage errors exit 2.
_PASS_THROUGH = (typer.Exit, typer.Abort, typer.TyperException, SystemExit)


def error_line(text: str) -> None:
    """Print one error line on stderr (never wrapped: one line per failure)."""
    sys.stderr.write(f"error: {text}\n")
    sys.stderr.flush()


class FaceanonGroup(TyperGroup):
    """Click group that maps faceanon errors to one line and an exit code."""

    def invoke(self, ctx: typer.Context):  # noqa: D401
        try:
            return super().invoke(ctx)
        except FaceanonError as exc:
            if STATE["debug"]:
                raise
            error_line(exc.one_line())
            ctx.exit(exc.exit_code)
        except _PASS_THROUGH:  # --help, usage errors, typer.Exit(code): click's own handling
            raise
        except KeyboardInterrupt:
            error_line("interrupted")
            ctx.exit(130)
        except Exception as exc:  # an unexpected bug: still one line unless --debug
            if STATE["debug"]:
                raise
            error_line(f"internal error: {type(exc).__name__}: {exc} (hint: rerun with --debug for the traceback)")
            ctx.exit(1)


app = typer.Typer(
    name="faceanon",
    cls=FaceanonGroup,
    help=(
        "Anonymize faces in photos through 3D face reconstruction.\n\n"
        "Quick start:\n\n"
        "  faceanon assets download --accept-license\n\n"
        "  faceanon run photos/ out/"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"faceanon {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-line errors."),
) -> None:
    """Anonymize faces in photos through 3D face reconstruction."""
    STATE["debug"] = debug
