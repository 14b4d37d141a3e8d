"""What every `technic` command shares: the two consoles, the one `error:` line and the exit
statuses, the --data-dir option and its checked root, the --format / --out checks and the
writing of a result, the screen budget, and the run's state.

This module imports typer and rich only (the engine's modules inside functions), so the
commands that do not scan stay free of numba and XGBoost (technic_v4/cli/__init__.py).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from technic_v4.data.store_fs import DataRoot
    from technic_v4.settings import Settings

EXIT_ERROR = 2  # the command could not do its job: one `error:` line
EXIT_UNKNOWN_SYMBOLS = 3  # `scan --symbol` named symbols that are not in the universe
WIDE = 200  # columns for text and tables when the stream is not a terminal
MAX_ERROR = 2000  # characters of an `error:` line
DEFAULT_CALENDAR = "XNYS"  # technic_v4.data.calendar.DEFAULT_CALENDAR, without importing pandas

DATA_DIR_OPTION = typer.Option(
    "--data-dir", help="Data directory or object-store URI such as s3://bucket/prefix "
    "(default: $TECHNIC_DATA_DIR or the per-user data folder).")
# a string, not a path type: a path would collapse an object-store URI's `//`
DataDir = Annotated[str | None, DATA_DIR_OPTION]


@dataclass
class RunState:
    """What one invocation decided that the top-level app reads once the command returns."""

    verbose: bool = False  # --verbose: an unexpected exception shows its traceback
    settings: Any = None  # the environment's Settings, read once as the command starts
    exit_fast: bool = False  # set by `technic scan`: see technic_v4.cli.main.exit_now


state = RunState()


def console(stderr: bool = False) -> Console:
    """A rich Console for stdout or stderr: as rich sees fit on a terminal; on a file or a pipe
    plain (no colour), wide, and never wrapping a line."""
    out = Console(stderr=stderr)
    if out.is_terminal:
        return out
    return Console(stderr=stderr, width=WIDE, soft_wrap=True, no_color=True,
                   highlight=False)


err = console(stderr=True)


def fail(message: str, exit_code: int = EXIT_ERROR) -> NoReturn:
    """One `error: ...` line on stderr, then exit (2: the command could not do its job)."""
    line = " ".join(str(message).split())
    if len(line) > MAX_ERROR:
        line = f"{line[:MAX_ERROR]}... ({len(line) - MAX_ERROR} more characters)"
    err.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(exit_code)


def spinner(text: str) -> Any:
    """A spinner on a terminal; nothing when stderr is a file or a pipe."""
    return err.status(text) if err.is_terminal else contextlib.nullcontext()


def check_format(fmt: str, valid: Iterable[str], out: Path | None,
                 needs_out: Iterable[str] = ()) -> None:
    """--format is one of `valid`, and a binary one (`needs_out`) comes with --out FILE."""
    valid = list(valid)
    if fmt not in valid:
        fail(f"unknown --format {fmt!r}; valid: {', '.join(valid)}")
    if fmt in needs_out and out is None:
        fail(f"--format {fmt} needs --out FILE")


def write_result(payload: bytes, out: Path | None) -> None:
    """A command's result: to --out when given, else to stdout (never mixed with messages)."""
    try:
        if out is None:
            sys.stdout.buffer.write(payload)
            sys.stdout.flush()
        else:
            out.write_bytes(payload)
    except OSError as exc:
        fail(f"cannot write {out or 'stdout'}: {exc.strerror or exc}")


def settings() -> Settings:
    """The command's settings: read from the environment once per command, when it first
    needs them (not before: `data info` imports neither numba nor xgboost), and passed down
    from here."""
    if state.settings is None:
        load_settings()
    return state.settings


def load_settings() -> None:
    """Read the environment into `state.settings`; a malformed value fails the command."""
    from pydantic import ValidationError

    from technic_v4.settings import Settings

    try:
        state.settings = Settings()
    except ValidationError as exc:
        fail(f"bad setting: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")


def data_root(data_dir: str | None) -> DataRoot:
    """--data-dir checked (a bad URI is an error naming its scheme), else the settings'."""
    from technic_v4.data.store_fs import StoreError
    from technic_v4.data.store_fs import data_root as checked

    try:
        return checked(data_dir) if data_dir else settings().data_root()
    except (StoreError, ValueError) as exc:
        fail(str(exc))


def screen_budget() -> Any:
    """What a command's where / rank may cost (TECHNIC_SCREEN_MAX_READS / _MEMORY_MB)."""
    return settings().screen_budget()
