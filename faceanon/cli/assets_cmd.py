"""``faceanon assets``: download, list, verify and locate the model files.

Errors are raised as :mod:`faceanon.errors` exceptions; the central handler of :mod:`faceanon.cli.app`
prints them as one line and sets the exit code.
"""

from __future__ import annotations

import sys
from enum import Enum
from typing import Optional

import typer

from faceanon.assets import get_store
from faceanon.assets.manifest import DEFAULT_MODEL, MODEL_CHOICES, download_hint
from faceanon.assets.store import CORRUPT, DOWNLOADED, MISSING, VERIFIED
from faceanon.cli.app import app
from faceanon.errors import AssetError, LicenseNotAccepted


#: ``--model`` of the asset commands: a model set of faceanon.models.registry, or all of them
ModelSet = Enum("ModelSet", {m.replace("-", "_"): m for m in MODEL_CHOICES}, type=str)


assets_app = typer.Typer(
    name="assets",
    help=(
        "Download, list, verify and locate the model files.\n\n"
        "Files live in the data dir (FACEANON_HOME, default: the per-user data folder). "
        "FACEANON_ASSETS_MIRROR (a folder or an http(s) base URL) replaces the upstream URLs; "
        "FACEANON_OFFLINE=1 forbids any connection.\n\n"
        "Examples:\n\n"
        "  faceanon assets download --accept-license\n\n"
        "  faceanon assets verify\n\n"
        "  faceanon assets path 3ddfa_v2/mb05_120x120.pth"
    ),
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(assets_app, name="assets")


def _human(size: int | None) -> str:
    if size is None:
        return "unknown"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover


def _stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def _ask_yes(question: str) -> bool:
    try:
        return typer.confirm(question, default=False, err=True)
    except (typer.Abort, EOFError, KeyboardInterrupt):
        return False


@assets_app.command(
    "download",
    help=(
        "Download (or copy from a mirror) every file of a model set and verify its sha256.\n\n"
        "Files already present and verified are skipped; interrupted downloads resume. "
        "BFM-derived files are for non-commercial research use only: accept their licence with "
        "--accept-license (or answer yes when asked).\n\n"
        "Examples:\n\n"
        "  faceanon assets download --accept-license\n\n"
        "  faceanon assets download --model 3ddfa-v3 --accept-license\n\n"
        "  faceanon assets download --mirror /data/faceanon-mirror\n\n"
        "  FACEANON_ASSETS_MIRROR=https://example.org/faceanon faceanon assets download --force"
    ),
)
def download_cmd(
    model: ModelSet = typer.Option(ModelSet(DEFAULT_MODEL), "--model", "-m", help="Model set to download.",
                                   case_sensitive=False),
    mirror: Optional[str] = typer.Option(
        None, "--mirror", metavar="DIR_OR_URL",
        help="Folder or http(s) base URL holding <mirror>/<name>; overrides FACEANON_ASSETS_MIRROR."),
    accept_license: bool = typer.Option(
        False, "--accept-license",
        help="Accept the non-commercial research licence of BFM-derived files (remembered)."),
    force: bool = typer.Option(False, "--force", help="Download again even files already present and verified."),
    offline: bool = typer.Option(False, "--offline",
                                 help="Never open a connection (as FACEANON_OFFLINE=1); a local mirror folder still works."),
) -> None:
    store = get_store(mirror=mirror, offline=True if offline else None)
    previously_accepted = store.license_accepted()
    pending = store.pending_license(model.value, force=force)
    if pending and not accept_license:
        store.show_license_notice(pending)
        if _stdin_is_tty():
            if not _ask_yes("Accept this licence and download them?"):
                raise LicenseNotAccepted("the BFM licence was not accepted; nothing was downloaded",
                                         hint="answer yes, or rerun with `--accept-license`")
            accept_license = True
        # otherwise store.download raises LicenseNotAccepted naming the files and `--accept-license`

    results = store.download(model=model.value, force=force, accept_license=accept_license, progress=True)

    fetched = [r for r in results if r.status == DOWNLOADED]
    for r in results:
        if r.status == DOWNLOADED:
            extra = f", resumed at {_human(r.resumed_from)}" if r.resumed_from else ""
            typer.echo(f"downloaded  {r.name}  ({_human(r.path.stat().st_size)}{extra})")
        else:
            typer.echo(f"present     {r.name}")
    bfm_fetched = [r for r in fetched if r.entry.bfm_derived]
    if bfm_fetched and previously_accepted:
        typer.echo(
            f"note: {len(bfm_fetched)} downloaded file(s) are BFM-derived: non-commercial research use only "
            f"(licence accepted on {previously_accepted.get('date', '?')})",
            err=True,
        )
    typer.echo(f"{len(results)} {model.value} file(s) verified in {store.data_dir} "
               f"({len(fetched)} downloaded, {len(results) - len(fetched)} already present)")


@assets_app.command(
    "list",
    help=(
        "Show the model files: name, size, model set, licence, BFM-derived, and whether each is present on disk "
        "(verified = hash checked for its current size and mtime; present = not hashed yet).\n\n"
        "Examples:\n\n"
        "  faceanon assets list\n\n"
        "  faceanon assets list --model 3ddfa-v3"
    ),
)
def list_cmd(
    model: ModelSet = typer.Option(ModelSet("all"), "--model", "-m", help="Model set to list.", case_sensitive=False),
) -> None:
    from rich.console import Console
    from rich.table import Table

    store = get_store()
    table = Table(title=f"faceanon model files ({store.data_dir})", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("model", no_wrap=True)
    table.add_column("licence")
    table.add_column("BFM-derived", no_wrap=True)
    table.add_column("status", no_wrap=True)
    styles = {VERIFIED: "green", "present": "yellow", MISSING: "red"}
    for entry in store.entries(model.value):
        status = store.status(entry.name)
        table.add_row(entry.name, _human(entry.size), entry.model, entry.license,
                      "yes" if entry.bfm_derived else "no", f"[{styles.get(status, '')}]{status}[/]")
    console = Console()
    if not console.is_terminal:
        console = Console(width=220)  # piped: never wrap a row
    console.print(table)


@assets_app.command(
    "verify",
    help=(
        "Hash every file of a model set and print it as verified, missing or corrupt. "
        "Exit code 0 only when all are verified, 1 otherwise.\n\n"
        "Examples:\n\n"
        "  faceanon assets verify\n\n"
        "  faceanon assets verify --model all"
    ),
)
def verify_cmd(
    model: ModelSet = typer.Option(ModelSet(DEFAULT_MODEL), "--model", "-m", help="Model set to verify.", case_sensitive=False),
) -> None:
    store = get_store()
    results = store.verify(model.value)
    for entry, status in results:
        typer.echo(f"{status:<9} {entry.name}")
    missing = sum(1 for _, s in results if s == MISSING)
    corrupt = sum(1 for _, s in results if s == CORRUPT)
    if missing or corrupt:
        raise AssetError(
            f"{missing + corrupt} of {len(results)} {model.value} file(s) not verified in {store.data_dir} "
            f"({missing} missing, {corrupt} corrupt)",
            hint=download_hint(model.value),
        )
    typer.echo(f"all {len(results)} {model.value} file(s) verified in {store.data_dir}")


@assets_app.command(
    "path",
    help=(
        "Print the data dir, or the path of one model file (whether or not it is downloaded yet).\n\n"
        "Examples:\n\n"
        "  faceanon assets path\n\n"
        "  faceanon assets path bfm/w_shp_sim.npy"
    ),
)
def path_cmd(
    name: Optional[str] = typer.Argument(None, metavar="[NAME]", help="A file name as shown by `faceanon assets list`."),
) -> None:
    store = get_store()
    typer.echo(str(store.data_dir if name is None else store.path_for(name)))
