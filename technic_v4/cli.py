"""`technic`: scan from the terminal, and manage the price store.

    technic scan [filters] [--format table|csv|json|parquet] [--out FILE]
    technic data demo | ingest FILE|FOLDER [--universe FILE] [--calendar MIC] | append FILE
                 | update | check | info | calendars
    technic models train [--seed N] | show
    technic explain SYMBOL [--as-of DATE] [--format table|json]
    technic screen list | show NAME | save NAME [scan options] | delete NAME | run NAME | columns
    technic validate [scan options] [--horizon N ...] [--every K] [--out FILE]
    technic watch add | list | show | remove | test | status | redeliver | tail | run

Manners (tests/cli/test_cli_errors.py drives every command with bad input):
  - Results (the scan's table / CSV / JSON, `data info`, `data check`'s table, `data
    calendars`, `models show`) go to stdout (or --out); progress, logs, summaries and errors go
    to stderr, so `technic scan --format csv > scan.csv` stays clean. When stderr is not a
    terminal nothing is wrapped or decorated.
  - Exit status: 0 done; 1 `data check` found flagged symbols / `data update` left sessions
    missing or failed; 2 an error: one `error: ...` line on stderr, never a traceback (bad
    options and values included; `technic --verbose ...` re-raises an unexpected exception
    with its traceback); 3 `scan --symbol` named symbols that are not in the universe (the
    results for the others are printed, then one `error:` line names the unknown ones).
  - `technic data info` and the other data commands do not import numba or XGBoost: `scan`
    and the commands built on it (`screen`, `watch`, `validate`, `explain`) are built on first
    use (their options come from ScanConfig, whose package loads the engine).
  - A scan whose numba kernel cache is cold says "compiling indicator kernels, first run
    only" before the indicator stage starts; numba caches them next to the package
    (`__pycache__`), or in ~/.cache/numba when the package folder is not writable.
  - An `--as-of` that is not a session of the store (a weekend, a holiday, after the data) is
    scanned as of the last session on or before it, and a `note:` says which and why.
`--data-dir` takes a path or an object-store URI (`s3://bucket/prefix?region=...`): it is a
string option, since a path type would collapse the URI's `//`, and messages show a URI
without its query and userinfo.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import logging
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup
from typer.exceptions import TyperException

from technic_v4.cli_models import Watches, console, err, fail, models_app, spinner

if TYPE_CHECKING:
    import pandas as pd

    from technic_v4.data.reader import StoreReader
    from technic_v4.data.store_fs import DataRoot
    from technic_v4.scan import ScanConfig, ScanStatus

# Imports stay inside the commands: this module loads typer and rich only, so `technic data
# info` never loads numba or XGBoost, and a first `technic scan` can start compiling its
# kernels in two other processes before its own heavy imports (`_start_warming`).
DEFAULT_CALENDAR = "XNYS"  # technic_v4.data.calendar.DEFAULT_CALENDAR, without importing pandas

EXIT_ERROR, EXIT_UNKNOWN_SYMBOLS = 2, 3
DEMO_SYMBOLS = (50, 20_000)  # `data demo --symbols` bounds (20,000 x 5 years: ~1.5 GB to build)
TABLE_COLUMNS = ["Symbol", "Sector", "Close", "TechRating", "Signal", "RSI", "MACD_hist",
                 "ATR_pct", "Volume_ratio", "mom_21", "mom_63", "Alpha5d", "Alpha10d"]
_VERBOSE = False
_EXIT_FAST = False  # set by `technic scan`: see _exit_now


class _Commands(TyperGroup):
    """The top-level group; the engine's commands are built when first asked for (module
    docstring)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted([*ENGINE_COMMANDS, *super().list_commands(ctx)])

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name == "scan":
            _start_warming([*getattr(ctx, "_protected_args", []), *ctx.args])
        if cmd_name in ENGINE_COMMANDS:
            return _engine_command(cmd_name)
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
            if _VERBOSE:
                raise
            _exit_with(f"{type(exc).__name__}: {exc} (unexpected; run `technic --verbose ...` "
                       "for the traceback and report it)")
        if _EXIT_FAST and not args and "args" not in kwargs:  # the program, after a scan
            _exit_now(code if isinstance(code, int) else 0)
        if isinstance(code, int) and code:
            raise SystemExit(code)
        return code


def _exit_now(code: int) -> NoReturn:
    """End the process without the interpreter's teardown of numba, llvmlite and XGBoost
    (~0.45 s of CPU after a scan, measured), once the output is flushed and the kernel-compile
    processes are stopped. Only `technic scan` run as a program exits this way."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    logging.shutdown()
    _stop_warming()
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
data_app = typer.Typer(help="Manage the price store.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")

DATA_DIR_OPTION = typer.Option(
    "--data-dir", help="Data directory or object-store URI such as s3://bucket/prefix "
    "(default: $TECHNIC_DATA_DIR or the per-user data folder).")
DataDir = Annotated[str | None, DATA_DIR_OPTION]
CALENDAR_HELP = ("Exchange calendar of the bars (exchange_calendars name: XNYS, XLON, XTKS, "
                 "XHKG, XPHS, ...; `technic data calendars` lists them).")
DATE_FORMAT_HELP = ("How the file writes dates: iso, mdy (M/D/YYYY[ H:MM[:SS]]), dmy "
                    "(D/M/YYYY, D.M.YYYY), yyyymmdd, epoch-s, epoch-ms, or a strftime pattern "
                    "like '%d-%b-%Y' (default: detected; ambiguous dates are an error).")
EXTRA_SHARE_HELP = ("Keep a day the calendar calls a holiday as a session when at least this "
                    "share of the symbols listed around it traded on it (at least 2 symbols).")


class _PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


@app.callback()
def _setup(verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Debug logs; an unexpected error shows its traceback.")] = False
           ) -> None:
    global _VERBOSE
    _VERBOSE = verbose
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


def _root(data_dir: str | None) -> DataRoot:
    """--data-dir checked (a bad URI is an error naming its scheme), else the default."""
    from technic_v4.data.reader import default_data_dir
    from technic_v4.data.store_fs import StoreError, data_root

    try:
        return data_root(data_dir) if data_dir else default_data_dir()
    except (StoreError, ValueError) as exc:
        fail(str(exc))


def screen_budget() -> Any:
    """What a command's where / rank may cost (TECHNIC_SCREEN_MAX_READS / _MEMORY_MB)."""
    from pydantic import ValidationError

    from technic_v4.settings import Settings

    try:
        return Settings().screen_budget()
    except ValidationError as exc:
        fail(f"bad setting: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")


# ------------------------------------------------------------------------------------- scan


CLI_TYPES: dict[str, Any] = {  # how a ScanConfig field is typed on the command line
    "max_symbols": int | None, "lookback_days": int, "sectors": list[str] | None,
    "industries": list[str] | None, "symbols": list[str] | None,
    "min_tech_rating": float | None, "as_of_date": str | None, "min_price": float | None,
    "min_dollar_volume": float | None, "signals": list[str] | None, "min_bars": int,
    "max_stale_sessions": int, "sort_by": str, "ascending": bool, "exclude_flagged": bool,
    "exclude_flags": list[str] | None, "where": str | None, "rank": str | None,
    "screen": str | None, "columns": list[str] | None,
}


def config_options(leave_out: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """One option per exposed ScanConfig field (its Option says the flag, help and valid
    values) but `leave_out`: what `technic scan` and `technic validate` take to describe a
    screen."""
    from technic_v4.data.universe import alias_list
    from technic_v4.scan import ScanConfig
    from technic_v4.scan.config import options

    defaults = ScanConfig()
    params = []
    for name, option in options().items():
        if not option.exposed or name in leave_out:
            continue
        flags = [option.cli or "--" + name.replace("_", "-"), *(
            [option.short] if option.short else [])]
        text = option.help + (" Repeatable." if option.max_items else "")
        if name == "sectors":
            text += f" Aliases: {alias_list()}."
        elif name == "symbols":
            text += f" Exit status {EXIT_UNKNOWN_SYMBOLS} when one is not in the universe."
        elif option.valid:
            text += f" Valid: {', '.join(option.valid)}."
        params.append(inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=getattr(defaults, name),
            annotation=Annotated[CLI_TYPES[name], typer.Option(
                *flags, help=text, metavar=flags[0].lstrip("-").upper().replace("-", "_"))]))
    return params


def config_fields(kw: dict[str, Any]) -> dict[str, Any]:
    """ScanConfig fields from config_options' values: an empty list is no filter; --columns
    takes names separated by commas as well as repeated (--columns RSI,ADX --columns CCI)."""
    fields = {k: (v or None) if isinstance(v, list) else v for k, v in kw.items()}
    columns: list[str] = fields.get("columns") or []
    if columns:
        fields["columns"] = [c.strip() for v in columns for c in v.split(",") if c.strip()] \
            or None
    return fields


def _scan_options() -> list[inspect.Parameter]:
    """The scan command's options: the screen's (config_options), then the output options."""
    params = config_options()
    outputs = {
        "fmt": (str, "table", typer.Option("--format", "-f", help="table, csv, json, parquet "
                                           "or arrow (the last two need --out).")),
        "out": (Path | None, None, typer.Option(help="Write results here instead of stdout.")),
        "top": (int, 25, typer.Option(help="Rows shown by --format table.")),
        "show_rejections": (bool, False, typer.Option(help="List every rejected symbol.")),
        "data_dir": (str | None, None, DATA_DIR_OPTION),
    }
    for name, (kind, default, info) in outputs.items():
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=Annotated[kind, info]))
    return params


def _scan(**kw: Any) -> None:
    """Scan the universe: indicators, TechRating, Signal, alpha; filter and rank.

    Exit status: 0; 2 on an error; 3 when a --symbol is not in the universe (after the rest)."""
    from technic_v4 import formats
    from technic_v4.data.calendar import CalendarError
    from technic_v4.data.reader import StoreReader
    from technic_v4.data.store_fs import StoreError
    from technic_v4.errors import ConfigError, StaleDataError
    from technic_v4.scan import ScanConfig, run_scan

    global _EXIT_FAST
    _EXIT_FAST = True
    fmt, out, top = kw.pop("fmt"), kw.pop("out"), kw.pop("top")
    show_rejections, data_dir = kw.pop("show_rejections"), kw.pop("data_dir")
    if fmt not in formats.FORMATS:
        fail(f"unknown --format {fmt!r}; valid: {', '.join(formats.FORMATS)}")
    if fmt in ("parquet", "arrow") and out is None:
        fail(f"--format {fmt} needs --out FILE")
    if top < 0:
        fail(f"--top must be >= 0, got {top}")
    config = ScanConfig(**config_fields(kw))
    try:
        config.validate()
        root = _root(data_dir)
        reader = StoreReader(root)
        with _Progress(root) as progress:
            frame, status = run_scan(config, progress.report, loader=reader,
                                     budget=screen_budget())
    except (ConfigError, StaleDataError, StoreError, CalendarError) as exc:
        fail(str(exc))
    if fmt == "table":
        _print_table(frame, status, top)
    else:
        payload = formats.serialise(frame, formats.scan_meta(status), fmt)
        try:
            if out is None:
                sys.stdout.buffer.write(payload)
                sys.stdout.flush()
            else:
                out.write_bytes(payload)
        except OSError as exc:
            fail(f"cannot write {out or 'stdout'}: {exc.strerror or exc}")
    _print_summary(status, out, frame)
    _note_as_of(config, status, reader)
    if show_rejections and len(status.rejections):
        err.print(escape(status.rejections.to_string(index=False)), highlight=False)
    unknown = [e["symbol"] for e in status.error_details]
    if unknown:
        err.print(f"error: {len(unknown)} requested symbol{'s' * (len(unknown) > 1)} not in the "
                  f"universe: {escape(', '.join(unknown))} (exit {EXIT_UNKNOWN_SYMBOLS})",
                  highlight=False)
        raise typer.Exit(EXIT_UNKNOWN_SYMBOLS)


@functools.lru_cache(maxsize=1)
def _scan_function() -> Any:
    """`_scan` with its signature: the options built from ScanConfig (imported here)."""
    _scan.__signature__ = inspect.Signature(_scan_options())  # type: ignore[attr-defined]
    return _scan


ENGINE_COMMANDS = ("scan", "explain", "screen", "validate", "watch")


@functools.cache
def _engine_command(name: str) -> Any:
    """The click command `name` of ENGINE_COMMANDS, built (and the engine imported) now."""
    if name in ("screen", "watch"):  # groups built from scan's options
        if name == "screen":
            from technic_v4.cli_screens import screen_app as build
        else:
            from technic_v4.cli_watch import watch_app as build
        outer = typer.Typer(add_completion=False)  # completion is the root's option
        outer.add_typer(build(_scan_function()), name=name)
        outer.callback()(lambda: None)  # a group of one group: get_command keeps the level
        return typer.main.get_command(outer).commands[name]  # type: ignore[attr-defined]
    single = typer.Typer(add_completion=False)
    if name == "scan":
        single.command(name="scan")(_scan_function())
    elif name == "explain":
        from technic_v4.cli_explain import explain_command

        single.command(name="explain")(explain_command)
    else:
        from technic_v4.cli_validate import validate_command

        single.command(name="validate")(validate_command)
    return typer.main.get_command(single)


def __getattr__(name: str) -> Any:
    """`technic_v4.cli.scan`: the scan command's function, its signature built on first use."""
    if name == "scan":
        return _scan_function()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_WARMING: list[subprocess.Popen[bytes]] | None = None  # the processes compiling the kernels


def _start_warming(args: list[str], root: Path | None = None) -> None:
    """On a first run (a local data dir without a store: the demo market is about to be built)
    start compiling the scan's kernels now, in two processes that share the work
    (`warm_kernels`), before this one imports the engine, so the compile overlaps the imports
    and the demo build and uses both cores. A cheap guess from the arguments and the
    environment (the scan's own checks decide everything else): a wrong guess costs two
    processes' start-up, nothing more; a process still running when this one exits is
    stopped."""
    global _WARMING
    if _WARMING is not None or "--help" in args:
        return
    data_dir = None if root is None else str(root)
    for i, arg in enumerate(args if root is None else []):
        if arg == "--data-dir" and i + 1 < len(args):
            data_dir = args[i + 1]
        elif arg.startswith("--data-dir="):
            data_dir = arg.split("=", 1)[1]
    data_dir = data_dir or next((v for k, v in os.environ.items()
                                 if k.upper() == "TECHNIC_DATA_DIR" and v), None)
    if data_dir is not None and ("://" in data_dir or data_dir.startswith("file:")):
        return  # an object store is never filled with the demo market automatically
    if data_dir is None:
        import platformdirs

        data_dir = platformdirs.user_data_dir("technic")
    if (Path(data_dir).expanduser() / "store" / "manifest.json").exists() or (
            root is None and _probably_warm()):
        return
    try:
        _WARMING = [subprocess.Popen(
            [sys.executable, "-c", f"from technic_v4.cli import warm_kernels; "
             f"warm_kernels({part}, 2)"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for part in (0, 1)]
    except OSError:
        return
    atexit.register(_stop_warming)


def _probably_warm() -> bool:
    """Whether numba's cache holds the engine's layout kernel, newer than its source: a hint,
    read without importing numba, that the kernels need no compiling (`_Progress` checks
    properly, and starts the compile itself when the hint was wrong)."""
    import hashlib

    import technic_v4

    source = Path(os.path.abspath(technic_v4.__file__)).parent / "indicators" / "engine.py"
    sub = f"indicators_{hashlib.sha1(str(source.parent).encode()).hexdigest()}"
    user_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "numba"
    places = [source.parent / "__pycache__", user_cache / sub]
    if os.environ.get("NUMBA_CACHE_DIR"):
        places.insert(0, Path(os.environ["NUMBA_CACHE_DIR"]) / sub)
    try:
        built = source.stat().st_mtime
        return any(index.stat().st_mtime >= built for place in places
                   for index in place.glob("engine.bar_layout-*.nbi"))
    except OSError:
        return False


def _stop_warming() -> None:
    for proc in _WARMING or []:
        if proc.poll() is None:
            proc.terminate()
            proc.wait()


class _Progress:
    """The scan's progress on stderr: a spinner in a terminal, and one line when the numba
    kernels are about to be compiled (a cold cache: the first run on a machine).

    On the very first run (a cold cache and no store yet, so the demo market is about to be
    built) two other processes compile the kernels into numba's cache while this one
    generates the demo, and the scan waits for them before its indicator stage, then loads
    the kernels from the cache (README "First run"). Threads would not do: the compile and the
    demo build hold the GIL often enough that together they ran 4x slower than in turn."""

    def __init__(self, root: DataRoot) -> None:
        self.spinner: Any = None
        self.cold, self.where = cold_kernel_cache()
        if self.cold and isinstance(root, Path) and not (root / "store" / "manifest.json"
                                                         ).exists():
            _start_warming([], root)  # (already started, unless the early guess missed it)
        self.warming = _WARMING if self.cold else None

    def __enter__(self) -> _Progress:
        if err.is_terminal:
            self.spinner = err.status("scanning...")
            self.spinner.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.spinner is not None:
            self.spinner.__exit__(*exc)

    def report(self, stage: str, done: int, total: int) -> None:
        if stage == "indicators" and done == 0 and self.cold:
            err.print(f"compiling indicator kernels, first run only ({self.cold} kernels, "
                      f"about 10 s; cached in {self.where} for later runs)", highlight=False)
            self.cold = 0
            if self.spinner is not None:
                self.spinner.update("compiling indicator kernels (first run only)...")
            if self.warming:
                _prepare_numba()  # while the other processes compile
                for proc in self.warming:
                    try:
                        proc.wait(timeout=600)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                self.warming = None
            return
        if self.spinner is not None:
            self.spinner.update(f"scanning: {stage} {done}/{total}")


def _prepare_numba() -> None:
    """numba's one-time set-up of its typing and target registries (~0.4 s, otherwise paid by
    the first kernel loaded from the cache)."""
    try:
        from numba.core.registry import cpu_target

        cpu_target.typing_context.refresh()
        cpu_target.target_context.refresh()
    except Exception:  # noqa: BLE001  (an internal that moved: the first load pays, as usual)
        pass


def warm_kernels(part: int = 0, parts: int = 1) -> None:
    """Compile (or load from numba's cache) the kernels a scan calls, by running them on a tiny
    Panel of the scan's array types (float64, C order; one row listing late and one with a
    gap, so the engine's packing runs too): all of them (parts=1), or one of two shares, so
    two processes compile at once (`_start_warming`).

    Share 0 runs the indicator stage for a third of the scan's indicator kernels plus the
    engine's layout kernels and the quality gate; share 1 calls the other two thirds directly.
    Each top-level kernel belongs to exactly one share, and share 1 saves only its own
    kernels to numba's cache (every other dispatcher's cache is switched off in that process),
    so no cache file is ever written by both: a kernel loaded from the cache carries its
    callees' code, which share 1 compiles in memory only."""
    from dataclasses import replace

    import numpy as np
    import pandas as pd

    from technic_v4.data.panel import panel_from_arrays
    from technic_v4.data.quality import check_panel
    from technic_v4.indicators import compute_indicators
    from technic_v4.indicators.registry import resolve

    n, t = 6, 260
    rng = np.random.default_rng(0)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, (n, t)), axis=1))
    close[1, :40] = np.nan
    close[2, 100:103] = np.nan
    volume = np.where(np.isfinite(close), 1e6, np.nan)
    panel = panel_from_arrays([f"W{i}" for i in range(n)], pd.bdate_range("2020-01-01",
                                                                          periods=t),
                              open=close, high=close * 1.01, low=close * 0.99, close=close,
                              volume=volume)
    panel = replace(panel, meta={"missing_sessions": []})  # no calendar needed
    if parts == 1:
        compute_indicators(panel)
        check_panel(panel)
        return
    specs, _ = resolve(None)
    kernels = sorted({id(s.kernel): s.kernel for s in specs}.values(),
                     key=lambda k: getattr(k, "__name__", repr(k)))
    mine = {id(k) for i, k in enumerate(kernels) if (i % 3 != 0) == (part == 1)}
    if part == 0:
        compute_indicators(panel, [o for s in specs if id(s.kernel) in mine for o in s.outputs])
        check_panel(panel)
        return
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    for name, module in list(sys.modules.items()):
        if name.startswith("technic_v4.") and module is not None:
            for obj in list(vars(module).values()):
                if isinstance(obj, Dispatcher) and id(obj) not in mine:
                    obj._cache = NullCache()  # type: ignore[attr-defined]
    arrays = {f: np.ascontiguousarray(getattr(panel, f)) for f in
              ("open", "high", "low", "close", "volume")}
    for spec in specs:
        if id(spec.kernel) in mine and all(f in arrays for f in spec.inputs):
            spec.run(arrays, 1)


def scan_kernels() -> list[Any]:
    """The numba dispatchers every scan calls at top level: the kernels of the scan's
    indicator outputs (the registry), the engine's bar layout and the quality gate's."""
    from technic_v4.data import quality
    from technic_v4.indicators import engine
    from technic_v4.indicators.registry import resolve

    specs, _ = resolve(None)
    found: list[Any] = [spec.kernel for spec in specs]
    found += [getattr(engine, "bar_layout", None), quality._check_rows, quality._median_ratio]
    return list({id(k): k for k in found if k is not None}.values())


def cold_kernel_cache() -> tuple[int, str]:
    """(how many of the scan's kernels (`scan_kernels`) have no compiled code in numba's
    on-disk cache, where that cache is); (0, "") when all are warm or the cache cannot be
    inspected (numba's private layout: checked, never trusted). A kernel's cache is cold when
    its index file is missing, written by another numba version or built from other source
    (numba's own freshness rules), as on the first run on a machine or after an upgrade."""
    cold, where = 0, ""
    try:
        kernels = scan_kernels()
    except Exception:  # noqa: BLE001  (a refactored engine: say nothing rather than guess)
        return 0, ""
    for kernel in kernels:
        cache_file = getattr(getattr(kernel, "_cache", None), "_cache_file", None)
        if cache_file is None:
            continue
        try:
            warm = bool(cache_file._load_index())
        except Exception:  # noqa: BLE001  (an unreadable index: numba recompiles)
            warm = False
        if not warm:
            cold += 1
            where = where or str(getattr(cache_file, "_cache_path", ""))
    return cold, where


def _cell(value: object, col: str) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if col in {"ATR_pct", "mom_21", "mom_63", "Alpha5d", "Alpha10d"}:
            return f"{value:+.2%}" if col != "ATR_pct" else f"{value:.2%}"
        return f"{value:,.2f}"
    return str(value)


def _print_table(frame: pd.DataFrame, status: ScanStatus, top: int) -> None:
    from technic_v4.scan.columns import TEXT_COLUMNS as TEXT

    out = console(stderr=False)
    title = (f"technic scan as of {status.as_of} — top {min(top, len(frame))} of {len(frame)} "
             f"— source: {status.source}")
    table = Table(title=escape(title), header_style="bold")
    columns = table_columns(frame)
    for col in columns:
        table.add_column(col, justify="left" if col in TEXT else "right")
    for row in frame.head(top)[columns].itertuples(index=False):
        table.add_row(*(escape(_cell(v, c)) for v, c in zip(row, columns, strict=True)))
    out.print(table)


def table_columns(frame: pd.DataFrame) -> list[str]:
    """What `--format table` shows: TABLE_COLUMNS of the contract's result, then the columns
    the where / rank read and RankValue; a result of chosen --columns as it is."""
    from technic_v4.scan.columns import EXTRA_COLUMNS, RESULT_COLUMNS

    if not set(RESULT_COLUMNS) <= set(frame.columns):
        return list(frame.columns)
    contract = {*RESULT_COLUMNS, *EXTRA_COLUMNS}
    return [*TABLE_COLUMNS, *(c for c in frame.columns if c not in contract)]


def _alpha_line(state: dict) -> str:
    if not state.get("available"):
        return str(state.get("reason", "alpha unavailable"))
    models = state.get("models", {})
    return "models " + ", ".join(
        f"{m['id']}@{m['version']} (trained on {m['data_source']} {m['data_version']})"
        for m in models.values())


def _print_summary(status: ScanStatus, out: Path | None, frame: pd.DataFrame) -> None:
    reasons = ", ".join(f"{k} {v}" for k, v in status.rejected_by_reason.items()) or "none"
    total_ms = status.timings_ms.get("total", 0.0)
    thin = int(frame["quality_flags"].fillna("").str.contains("thin_last").sum()) if len(
        frame) and "quality_flags" in frame else 0
    thin_note = ""
    if thin:
        thin_note = (f"; thin_last on {thin}: their Volume_ratio is suspect"
                     + (" (most rows: the last session looks partial, fetched before the "
                        "close?)" if thin > len(frame) / 2 else ""))
    lines = [
        f"source: {status.source}  data_version: {status.data_version}  as_of: {status.as_of}  "
        f"window: {status.window_bars} sessions",
        f"attempted {status.attempted}, kept {status.kept}, rejected {status.rejected} "
        f"({reasons}), errors {status.errors}",
        f"quality: {status.quality_flagged} of {status.kept} rows carry a quality flag "
        f"(quality_flags column; --exclude-flagged drops them){thin_note}",
        f"alpha: {_alpha_line(status.alpha)}",
        f"scan time {total_ms:.1f} ms ("
        + ", ".join(f"{k} {v:.1f}" for k, v in status.timings_ms.items() if k != "total") + ")",
    ]
    if status.screen:
        lines.append(f"screen: {status.screen['name']} version {status.screen['version']}"
                     + (" (preset)" if status.screen.get("preset") else ""))
    if out:
        lines.append(f"wrote {out}")
    err.print(escape("\n".join(lines)), highlight=False)


def _note_as_of(config: ScanConfig, status: ScanStatus, reader: StoreReader) -> None:
    """A `note:` when the scan's session is not the --as-of date asked for, saying why."""
    import pandas as pd

    from technic_v4.data.calendar import CalendarError, is_session, why_not_a_session
    from technic_v4.scan.config import as_of_timestamp

    if config.as_of_date is None or not status.as_of:
        return
    wanted, got = as_of_timestamp(config.as_of_date), pd.Timestamp(status.as_of)
    if wanted == got:
        return
    snap = reader.snapshot()
    calendar = snap.manifest.calendar if snap.manifest is not None else DEFAULT_CALENDAR
    closures = snap.manifest.closures if snap.manifest is not None else []
    if wanted > snap.sessions[-1]:
        why = f"is after the store's last session {snap.last_session}"
    elif str(wanted.date()) in closures:
        why = "is a market-wide closure of the store (no symbol traded on it)"
    else:
        try:
            if bool(is_session(pd.DatetimeIndex([wanted]), calendar).iloc[0]):
                why = f"is a {calendar} session the store holds no bars for"
            else:
                why = why_not_a_session(wanted, calendar)
        except CalendarError:
            why = "is not a session of the store"
    err.print(f"note: --as-of {wanted.date()} {why}: scanned as of {got.date()}, the last "
              "session on or before it", highlight=False)


# ------------------------------------------------------------------------------------- data


@data_app.command("demo")
def data_demo(
    symbols: Annotated[int, typer.Option(
        help=f"Number of symbols ({DEMO_SYMBOLS[0]:,} to {DEMO_SYMBOLS[1]:,}).")] = 5000,
    calendar: Annotated[str, typer.Option(help=CALENDAR_HELP)] = DEFAULT_CALENDAR,
    data_dir: DataDir = None,
) -> None:
    """(Re)build the deterministic synthetic demo market in the data directory."""
    from technic_v4.data import store
    from technic_v4.data.calendar import CalendarError, canonical_calendar
    from technic_v4.data.demo import DemoSpec, build_demo_store
    from technic_v4.data.store_fs import shown

    lo, hi = DEMO_SYMBOLS
    if not lo <= symbols <= hi:
        fail(f"--symbols must be between {lo:,} and {hi:,}, got {symbols:,} (the demo market "
             f"needs {lo}+ symbols for its cross-sections; more than {hi:,} would need several "
             "GB of memory to build)")
    try:
        cal = canonical_calendar(calendar)
    except CalendarError as exc:
        fail(str(exc))
    root = _root(data_dir)
    try:
        with spinner(f"building the synthetic demo market ({symbols} symbols, {cal}) in "
                      f"{shown(root)}..."):
            manifest = build_demo_store(root, DemoSpec(n_symbols=symbols, calendar=cal))
    except (OSError, ValueError, store.StoreError) as exc:
        fail(str(exc))
    err.print(f"built {manifest.n_symbols} symbols x {manifest.n_sessions} {manifest.calendar} "
              f"sessions ({manifest.first_session}..{manifest.last_session}), source: "
              f"synthetic, data_version {manifest.data_version}", highlight=False)


@data_app.command("ingest")
def data_ingest(
    bars: Annotated[Path, typer.Argument(help="Long CSV/Parquet (symbol,date,open,high,low,"
                                         "close,volume) or a folder of SYMBOL.csv files.")],
    universe: Annotated[Path | None, typer.Option(help="symbol,name,sector,industry file.")] = None,
    report: Annotated[Path | None, typer.Option(help="Write rejected rows to this CSV.")] = None,
    prices: Annotated[str, typer.Option(help="Folders: adj_close (scale OHLC by Adj Close / "
                                        "Close) or raw (Close as traded; for files without "
                                        "Adj Close).")] = "adj_close",
    calendar: Annotated[str, typer.Option(help=CALENDAR_HELP)] = DEFAULT_CALENDAR,
    date_format: Annotated[str | None, typer.Option(help=DATE_FORMAT_HELP)] = None,
    extra_session_share: Annotated[float, typer.Option(help=EXTRA_SHARE_HELP)] = 0.5,
    data_dir: DataDir = None,
    watches: Watches = True,
) -> None:
    """Replace (or create) the store from your own daily bars; bad rows are reported.
    Exit 2 when nothing can be stored (every row rejected, unreadable or ambiguous dates)."""
    from technic_v4.data import store
    from technic_v4.data.ingest import ingest_bars
    from technic_v4.data.ingest_yahoo import ingest_csv_folder

    if prices not in ("adj_close", "raw"):
        fail(f"--prices {prices!r}: expected adj_close or raw")
    if not bars.exists():
        fail(f"no such file or folder: {bars}")
    if universe is not None and not universe.is_file():
        fail(f"no such universe file: {universe}")
    root = _root(data_dir)
    try:
        with spinner(f"ingesting {bars.name}..."):
            if bars.is_dir():
                result = ingest_csv_folder(bars, root, universe_path=universe, prices=prices,
                                           calendar=calendar, date_format=date_format,
                                           extra_session_share=extra_session_share)
            else:
                result = ingest_bars(bars, root, universe_path=universe, calendar=calendar,
                                     date_format=date_format,
                                     extra_session_share=extra_session_share)
    except (ValueError, OSError, store.StoreError) as exc:
        fail(str(exc))
    s = result.summary()
    err.print(f"read {result.rows_read} rows: kept {result.rows_kept}, rejected "
              f"{result.rows_rejected}; {result.symbols} symbols x {result.sessions} "
              f"{result.manifest.calendar} sessions ({result.first_session}.."
              f"{result.last_session}); data_version {result.manifest.data_version}",
              highlight=False)
    for line in _ingest_notes(s):
        err.print(escape(line), highlight=False)
    if len(result.universe_issues):
        err.print(escape(f"  universe issues: {len(result.universe_issues)} "
                         f"(e.g. {result.universe_issues.iloc[0].to_dict()})"), highlight=False)
    if "quality" in s:
        err.print("quality: " + ", ".join(
            f"{k} {v['count']} ({v['share']:.1%})" for k, v in s["quality"].items())
            + " (details: technic data check)", highlight=False)
    if report is not None:
        try:
            result.rejections.to_csv(report, index=False)
        except OSError as exc:
            fail(f"cannot write {report}: {exc.strerror or exc}")
        err.print(f"wrote rejected rows to {report}", highlight=False)
    elif result.rows_rejected:
        err.print(escape(result.rejections.head(20).to_string(index=False)), highlight=False)
    if watches:
        _after_store_change(root)


def _ingest_notes(s: dict[str, Any]) -> list[str]:
    """What an ingest did besides keeping rows: dates read, clamps, rejections by reason,
    sessions the data added to or took from the calendar."""
    formats = s.get("date_formats", {})
    lines = ["  distinct dates by format: " + ", ".join(f"{k} {v}" for k, v in formats.items())]
    clamped = s.get("clamped", {})
    if any(clamped.values()):
        lines.append(f"  clamped {clamped.get('high', 0)} high(s) and {clamped.get('low', 0)} "
                     "low(s) to the open/close body (float noise under 1e-9 relative)")
    lines += [f"  rejected {count}: {reason}"
              for reason, count in s.get("rejected_by_reason", {}).items()]
    for key, what in (("extra_sessions", "extra sessions (calendar holidays the market "
                       f"traded: {s.get('extra_session_share', 0.5):.0%}+ of symbols)"),
                      ("closures", "market-wide closures (calendar sessions no symbol "
                       "traded; off the axis, not gaps)")):
        days = s.get(key, [])
        if days:
            lines.append(f"  {len(days)} {what}: " + ", ".join(days[:10])
                         + (", ..." if len(days) > 10 else ""))
    return lines


def _after_store_change(root: DataRoot) -> None:
    """Every watch evaluated on the sessions just added, then one delivery pass
    (technic_v4/cli_watch.py)."""
    from technic_v4.cli_watch import after_store_change

    after_store_change(root)


@data_app.command("append")
def data_append(
    bars: Annotated[Path, typer.Argument(help="Long CSV/Parquet of new sessions.")],
    calendar: Annotated[str | None, typer.Option(
        help="Expected calendar of the store (default: the store's own; an append never "
        "changes it).")] = None,
    date_format: Annotated[str | None, typer.Option(help=DATE_FORMAT_HELP)] = None,
    data_dir: DataDir = None,
    watches: Watches = True,
) -> None:
    """Append sessions newer than the store's last, on its calendar; older ones never change."""
    from technic_v4.data import store
    from technic_v4.data.append import append_bars
    from technic_v4.data.ingest import read_bars_file

    if not bars.is_file():
        fail(f"no such file: {bars}")
    root = _root(data_dir)
    try:
        result = append_bars(read_bars_file(bars), root, calendar=calendar,
                             date_format=date_format)
    except (ValueError, OSError, store.StoreError) as exc:
        fail(str(exc))
    _print_append(result)
    if watches:
        _after_store_change(root)


def _print_append(result: Any) -> None:  # AppendReport
    shown_ = ", ".join(result.new_sessions[:5]) + ("..." if len(result.new_sessions) > 5 else "")
    err.print(f"appended {len(result.new_sessions)} {result.manifest.calendar} sessions "
              f"({shown_}): kept {result.rows_kept} rows, rejected {result.rows_rejected}, "
              f"{len(result.new_symbols)} new symbols; data_version {result.previous_version} "
              f"-> {result.manifest.data_version}", highlight=False)
    if result.empty_sessions:
        err.print(f"  no rows for sessions {result.empty_sessions}: left empty", highlight=False)
    if result.extra_sessions:
        err.print(f"  extra sessions (calendar holidays the market traded): "
                  f"{result.extra_sessions}", highlight=False)
    if result.closures:
        err.print(f"  market-wide closures (no symbol traded; off the axis): {result.closures}",
                  highlight=False)
    if result.rows_rejected:
        err.print(escape(result.rejections.head(20).to_string(index=False)), highlight=False)


@data_app.command("update")
def data_update(
    provider: Annotated[str, typer.Option(help="Data provider (polygon; US stocks, XNYS "
                                          "stores only).")] = "polygon",
    start: Annotated[str | None, typer.Option(help="First session when there is no store.")] = None,
    end: Annotated[str | None, typer.Option(help="Last session (default: last closed).")] = None,
    workers: Annotated[int, typer.Option(help="Concurrent requests.")] = 4,
    per_minute: Annotated[float | None, typer.Option(
        help="Request cap per minute (free Polygon tier: 5).")] = None,
    tickers: Annotated[bool, typer.Option(help="Refresh the ticker reference first.")] = False,
    data_dir: DataDir = None,
    watches: Watches = True,
) -> None:
    """Fetch new sessions from a provider (key from $POLYGON_API_KEY) and append them."""
    import pandas as pd

    from technic_v4.data import store
    from technic_v4.data.providers.polygon import PolygonClient, PolygonError
    from technic_v4.data.providers.update import update_store
    from technic_v4.data.store_fs import shown

    if provider != "polygon":
        fail(f"unknown provider {provider!r}; available: polygon")
    for flag, value in (("--start", start), ("--end", end)):
        if value is not None and pd.isna(pd.to_datetime(value, format="ISO8601",
                                                        errors="coerce")):
            fail(f"{flag} {value!r} is not a date: use YYYY-MM-DD, e.g. 2024-03-28")
    if workers < 1 or (per_minute is not None and not per_minute > 0):
        fail("--workers must be >= 1 and --per-minute > 0")
    root = _root(data_dir)
    if not isinstance(root, Path):
        fail(f"`technic data update` keeps its download cache in the data dir, which must be "
             f"local, not {shown(root)}: update a local store, or fetch bars elsewhere and "
             f"`technic data append FILE --data-dir URI`")
    try:
        with PolygonClient(per_minute=per_minute) as client:
            result = update_store(root, client, start=start, end=end, workers=workers,
                                  tickers=tickers)
    except (ValueError, OSError, store.StoreError, PolygonError) as exc:
        fail(str(exc))
    f = result.fetch
    err.print(f"fetched {len(f.fetched)}, already cached {len(f.cached)}, missing "
              f"{f.missing or 0}, failed {list(f.failed) or 0}; appended {len(result.appended)}"
              + (f"; waiting behind a gap: {result.waiting}" if result.waiting else ""),
              highlight=False)
    for day, why in f.failed.items():
        err.print(escape(f"  {day}: {why}"), highlight=False)
    if watches and result.appended:
        _after_store_change(root)
    if f.failed or f.missing:
        raise typer.Exit(1)


@data_app.command("check")
def data_check(
    out: Annotated[Path | None, typer.Option(help="Write the per-symbol table here (CSV).")] = None,
    events: Annotated[bool, typer.Option(help="List every dated finding.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Run the data-quality gate over the store and print the report; exit 1 if flagged."""
    from technic_v4.data import store
    from technic_v4.data.quality import FLAGS, check_store

    root = _root(data_dir)
    try:
        report = check_store(root)
        m = store.read_manifest(root)
    except (ValueError, store.StoreError) as exc:
        fail(str(exc))
    counts = report.counts()
    err.print(f"data quality of {store.store_location(root)} (data_version {m.data_version}, "
              f"{m.n_symbols} symbols, calendar {m.calendar}, adjusted: "
              f"{m.meta.get('adjusted', 'unknown')})\n"
              + ", ".join(f"{f} {counts[f]}" for f in FLAGS)
              + f"; flagged {counts['any']} of {m.n_symbols}", highlight=False)
    flagged = report.table[report.table["quality_flags"] != ""]
    if len(flagged):
        print(flagged.to_string(index=False))
    if events and len(report.events):
        print(report.events.to_string(index=False))
    if out is not None:
        try:
            report.table.to_csv(out, index=False)
        except OSError as exc:
            fail(f"cannot write {out}: {exc.strerror or exc}")
        err.print(f"wrote {out}", highlight=False)
    if counts["any"]:
        raise typer.Exit(1)


@data_app.command("info")
def data_info(data_dir: DataDir = None) -> None:
    """Describe the store (on stdout): source, calendar, shape, sessions, data version."""
    from technic_v4.data import store
    from technic_v4.data.store_fs import shown

    root = _root(data_dir)
    try:
        if not store.store_exists(root):
            fail(f"no price store in {shown(root)}; `technic data demo` builds the synthetic "
                 "one, `technic data ingest FILE` loads yours")
        m = store.read_manifest(root)
        uni = store.read_universe(root, m)
    except store.StoreError as exc:
        fail(str(exc))
    gaps = "not recorded" if m.missing_sessions is None else str(len(m.missing_sessions))
    extra = ", ".join(m.extra_sessions[:10]) + (", ..." if len(m.extra_sessions) > 10 else "")
    closed = ", ".join(m.closures[:10]) + (", ..." if len(m.closures) > 10 else "")
    typer.echo(f"store: {store.store_location(root)}\nsource: {m.source}\ncalendar: "
               f"{m.calendar}\ndata_version: {m.data_version}\nsymbols: {m.n_symbols}\n"
               f"sessions: {m.n_sessions} ({m.first_session}..{m.last_session}); calendar "
               f"sessions missing from the store: {gaps}\nextra sessions (holidays the "
               f"market traded): {len(m.extra_sessions)}{' (' + extra + ')' if extra else ''}"
               f"\nmarket-wide closures (sessions nothing traded): {len(m.closures)}"
               f"{' (' + closed + ')' if closed else ''}\nprices: "
               f"{m.meta.get('adjusted', 'as given')}\nsegments: {len(m.segment_list())} "
               f"(base + appends)\ncreated: {m.created}\nsectors:")
    typer.echo(uni["sector"].value_counts().to_string())


@data_app.command("calendars")
def data_calendars() -> None:
    """List the exchange calendar names `--calendar` accepts (exchange_calendars)."""
    from technic_v4.data.calendar import calendar_names

    typer.echo("\n".join(calendar_names()))


if __name__ == "__main__":
    app()
