"""The `technic` app: the top-level group, its one-line errors and its lazily built commands.

The data and models commands are registered here; the engine's commands (ENGINE_COMMANDS:
scan and those built on it) are built on first use (`engine_command`), so `technic data info`
never loads numba or XGBoost. Every failure, usage errors included, is one `error:` line and
an exit status (technic_v4/cli/__init__.py).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from technic_v4.cli import (
    fetch,  # noqa: F401 - registers `data init` and `data update`
    firstrun,
)
from technic_v4.cli.data import data_app
from technic_v4.cli.models import models_app
from technic_v4.cli.options import EXIT_ERROR, err, fail, state

ENGINE_COMMANDS = ("scan", "explain", "screen", "validate", "watch", "regimes", "live")


class _Commands(TyperGroup):
    """The top-level group; the engine's commands are built when first asked for (module
    docstring)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted([*ENGINE_COMMANDS, *super().list_commands(ctx)])

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name == "scan":
            firstrun.start_warming([*getattr(ctx, "_protected_args", []), *ctx.args])
        if cmd_name in ENGINE_COMMANDS:
            return engine_command(cmd_name)
        return super().get_command(ctx, cmd_name)


class _App(typer.Typer):
    """typer.Typer whose every failure is one `error:` line (module docstring)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("standalone_mode", False)
        try:
            code = super().__call__(*args, **kwargs)
        except typer.Exit as exc:
            code = exc.exit_code
        except (typer.Abort, KeyboardInterrupt):
            _exit_with("interrupted", 130)
        except TyperException as exc:  # usage: unknown option, bad value, missing argument
            if type(exc).__name__ == "NoArgsIsHelpError":  # `technic data`: the help
                typer.echo(_usage_text(exc))
                raise SystemExit(0) from None
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            _exit_with(f"{_usage_text(exc)}{hint}")
        except Exception as exc:  # noqa: BLE001  (a bug or an unforeseen failure: one line)
            if state.verbose:
                raise
            _exit_with(f"{type(exc).__name__}: {exc} (unexpected; run `technic --verbose ...` "
                       "for the traceback and report it)")
        if state.exit_fast and not args and "args" not in kwargs:  # the program, after a scan
            exit_now(code if isinstance(code, int) else 0)
        if isinstance(code, int) and code:
            raise SystemExit(code)
        return code


def exit_now(code: int) -> NoReturn:
    """End the process without the interpreter's teardown of numba, llvmlite and XGBoost
    (~0.45 s of CPU after a scan, measured), once the output is flushed and the kernel-compile
    processes are stopped. Only `technic scan` run as a program exits this way."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    logging.shutdown()
    firstrun.stop_warming()
    os._exit(code)


def _usage_text(exc: Exception) -> str:
    """A usage error's message, as click words it."""
    format_message = getattr(exc, "format_message", None)
    return str(format_message()) if callable(format_message) else str(exc)


def _exit_with(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """`fail` outside a command: the `error:` line, then the process exits."""
    try:
        fail(message, code)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None


app = _App(cls=_Commands, help="technic: a full-universe stock technical scanner.",
           no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")


class _PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


@app.callback()
def _setup(verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Debug logs; an unexpected error shows its traceback.")] = False
           ) -> None:
    state.verbose = verbose
    state.settings = None  # read once for this command, when it first needs them (options.py)
    if err.is_terminal:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=err, show_path=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_PlainFormatter())
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[handler], force=True)
    if not verbose:
        logging.getLogger("numba").setLevel(logging.WARNING)


@functools.cache
def engine_command(name: str) -> Any:
    """The click command `name` of ENGINE_COMMANDS, built (and the engine imported) now."""
    if name in ("screen", "watch"):  # groups built from scan's options
        from technic_v4.cli.scan import scan_command

        if name == "screen":
            from technic_v4.cli.screen import screen_app as build
        else:
            from technic_v4.cli.watch import watch_app as build
        outer = typer.Typer(add_completion=False)  # completion is the root's option
        outer.add_typer(build(scan_command), name=name)
        outer.callback()(lambda: None)  # a group of one group: get_command keeps the level
        return typer.main.get_command(outer).commands[name]  # type: ignore[attr-defined]
    single = typer.Typer(add_completion=False)
    if name == "scan":
        from technic_v4.cli.scan import scan_command

        single.command(name="scan")(scan_command)
    elif name == "explain":
        from technic_v4.cli.explain import explain_command

        single.command(name="explain")(explain_command)
    elif name == "regimes":
        from technic_v4.cli.regimes import regimes_command

        single.command(name="regimes")(regimes_command)
    elif name == "live":
        from technic_v4.cli.live import live_command

        single.command(name="live")(live_command)
    else:
        from technic_v4.cli.validate import validate_command

        single.command(name="validate")(validate_command)
    return typer.main.get_command(single)
