"""`technic scan`: the universe scanned, filtered and ranked, as a table or a file.

    technic scan [filters] [--where EXPR] [--rank EXPR] [--screen NAME]
                 [--format table|csv|json|parquet|arrow] [--out FILE] [--top N]

The options are built from ScanConfig (`config_options`: one per exposed field, its flag, help
and valid values), so `technic screen`, `technic watch add` and `technic validate` take the
same ones. The result goes to stdout (or --out), the summary and the progress to stderr.
Exit status 0; 2 on an error; 3 when a --symbol is not in the universe (after the rest).
A scan whose numba kernel cache is cold says "compiling indicator kernels, first run only"
before the indicator stage (`Progress`; technic_v4/indicators/warmup.py).
"""

from __future__ import annotations

import inspect
import math
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from technic_v4.cli import firstrun
from technic_v4.cli.options import (
    DATA_DIR_OPTION,
    DEFAULT_CALENDAR,
    EXIT_UNKNOWN_SYMBOLS,
    check_format,
    console,
    data_root,
    err,
    fail,
    screen_budget,
    settings,
    state,
    write_result,
)

if TYPE_CHECKING:
    import pandas as pd

    from technic_v4.data.reader import StoreReader
    from technic_v4.data.store_fs import DataRoot
    from technic_v4.scan import ScanConfig, ScanStatus

TABLE_COLUMNS = ["Symbol", "Sector", "Close", "TechRating", "Signal", "RSI", "MACD_hist",
                 "ATR_pct", "Volume_ratio", "mom_21", "mom_63", "Alpha5d", "Alpha10d"]


CLI_TYPES: dict[str, Any] = {  # how a ScanConfig field is typed on the command line
    "max_symbols": int | None, "lookback_days": int, "sectors": list[str] | None,
    "industries": list[str] | None, "indexes": list[str] | None, "symbols": list[str] | None,
    "min_tech_rating": float | None, "as_of_date": str | None, "min_price": float | None,
    "min_dollar_volume": float | None, "signals": list[str] | None, "min_bars": int,
    "max_stale_sessions": int, "sort_by": str, "ascending": bool, "exclude_flagged": bool,
    "exclude_flags": list[str] | None, "where": str | None, "rank": str | None,
    "screen": str | None, "columns": list[str] | None, "regime_benchmark": str | None,
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
        "at": (str | None, None, typer.Option(help="Evaluate the --where at this minute "
                                              "(\"2026-10-30 14:35\", exchange time) over "
                                              "the intraday bars; a --where on M5./H1./... "
                                              "bars defaults to the newest stored bar.")),
        "data_dir": (str | None, None, DATA_DIR_OPTION),
    }
    for name, (kind, default, info) in outputs.items():
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=Annotated[kind, info]))
    return params


def scan_command(**kw: Any) -> None:
    """Scan the universe: indicators, TechRating, Signal, alpha; filter and rank.

    Exit status: 0; 2 on an error; 3 when a --symbol is not in the universe (after the rest)."""
    from technic_v4 import formats
    from technic_v4.data.calendar import CalendarError
    from technic_v4.data.reader import StoreReader
    from technic_v4.data.store_fs import StoreError
    from technic_v4.errors import ConfigError, StaleDataError
    from technic_v4.scan import ScanConfig, run_scan

    state.exit_fast = True
    fmt, out, top = kw.pop("fmt"), kw.pop("out"), kw.pop("top")
    show_rejections, data_dir = kw.pop("show_rejections"), kw.pop("data_dir")
    check_format(fmt, formats.FORMATS, out, needs_out=("parquet", "arrow"))
    if top < 0:
        fail(f"--top must be >= 0, got {top}")
    at = kw.pop("at")
    config = ScanConfig(**config_fields(kw))
    from technic_v4.scan.intraday import is_intraday

    try:
        intraday = at is not None or is_intraday(config.where)
    except ConfigError as exc:
        fail(str(exc))
    if intraday:
        _intraday_scan(config, at, fmt, out, top, data_dir)
        return
    try:
        config.validate()
        root = data_root(data_dir)
        reader = StoreReader(root)
        with Progress(root) as progress:
            frame, status = run_scan(config, progress.report, loader=reader,
                                     budget=screen_budget(), settings=settings())
    except (ConfigError, StaleDataError, StoreError, CalendarError) as exc:
        fail(str(exc))
    if fmt == "table":
        _print_table(frame, status, top)
    else:
        write_result(formats.serialise(frame, formats.scan_meta(status), fmt), out)
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


class Progress:
    """The scan's progress on stderr: a spinner in a terminal, and one line when the numba
    kernels are about to be compiled (a cold cache: the first run on a machine).

    On the very first run (a cold cache and no store yet, so the demo market is about to be
    built) two other processes compile the kernels into numba's cache while this one
    generates the demo, and the scan waits for them before its indicator stage, then loads
    the kernels from the cache (README "First run"). Threads would not do: the compile and the
    demo build hold the GIL often enough that together they ran 4x slower than in turn."""

    def __init__(self, root: DataRoot) -> None:
        self.spinner: Any = None
        from technic_v4.indicators.warmup import cold_kernel_cache

        self.cold, self.where = cold_kernel_cache()
        if self.cold and isinstance(root, Path) and not (root / "store" / "manifest.json"
                                                         ).exists():
            firstrun.start_warming([], root)  # (already started, unless the early guess missed)
        self.warming = firstrun.processes() if self.cold else None

    def __enter__(self) -> Progress:
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
                from technic_v4.indicators.warmup import prepare_numba

                prepare_numba()  # while the other processes compile
                for proc in self.warming:
                    try:
                        proc.wait(timeout=600)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                self.warming = None
            return
        if self.spinner is not None:
            self.spinner.update(f"scanning: {stage} {done}/{total}")


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


def regime_line(tags: dict[str, Any]) -> str:
    """`regime: trend_up/calm (breadth_50 0.62, vol pct 0.41, ...)`: the market's state at
    the scan's session (technic_v4/regimes.py), as the summary and `technic regimes` say it."""
    numbers = tags.get("numbers") or {}

    def shown(name: str, label: str) -> str:
        value = numbers.get(name)
        return f"{label} {'n/a' if value is None else format(value, '.3g')}"

    return (f"regime: {tags.get('regime')} ("
            + ", ".join([shown("market_slope_50", "slope_50"),
                         shown("market_vol_pct", "vol pct"), shown("breadth_50", "breadth_50")])
            + f"; benchmark {tags.get('benchmark')}, regimes v{tags.get('version')})")


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
    if status.regime_tags:
        lines.append(regime_line(status.regime_tags))
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

scan_command.__signature__ = inspect.Signature(_scan_options())  # type: ignore[attr-defined]


def _intraday_scan(config: Any, at: str | None, fmt: str, out: Path | None, top: int,
                   data_dir: str | None) -> None:
    """`technic scan --where EXPR [--at TIME]` over the intraday bars (scan/intraday.py):
    only --where and --symbol apply."""
    from dataclasses import fields

    from technic_v4 import formats
    from technic_v4.data.intraday import IntradayError
    from technic_v4.data.store_fs import StoreError
    from technic_v4.errors import ConfigError
    from technic_v4.scan import ScanConfig
    from technic_v4.scan.intraday import scan_intraday

    default = ScanConfig()
    extra = [f.name for f in fields(ScanConfig) if f.name not in ("where", "symbols")
             and getattr(config, f.name) != getattr(default, f.name)]
    if extra:
        fail(f"an intraday scan (--at, or M5./H1./... in --where) takes --where and --symbol "
             f"only; also given: {', '.join('--' + e.replace('_', '-') for e in extra)}")
    if not config.where:
        fail("an intraday scan needs --where")
    try:
        scan = scan_intraday(data_root(data_dir), config.where, at, config.symbols)
    except (ConfigError, IntradayError, StoreError, ValueError) as exc:
        fail(str(exc))
    meta = {"at": str(scan.at), "last_bars": scan.last_bars, "sessions": scan.sessions,
            "kept": len(scan.rows), "where": config.where}
    if fmt == "table":
        typer.echo(scan.rows.head(top).to_string(index=False) if len(scan.rows) else
                   "(no symbol matches)")
    else:
        write_result(formats.serialise(scan.rows, meta, fmt), out)
    bars = ", ".join(f"{tf} {t}" for tf, t in scan.last_bars.items())
    err.print(f"intraday scan at {scan.at} (last closed bars: {bars}): {len(scan.rows)} "
              f"symbol(s) match", highlight=False)
