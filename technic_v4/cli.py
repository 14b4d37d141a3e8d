"""`technic`: scan from the terminal, and manage the price store.

    technic scan [filters] [--format table|csv|json|parquet] [--out FILE]
    technic data demo | ingest FILE|FOLDER [--universe FILE] | append FILE | update | check | info
    technic models train [--seed N] | show
    technic explain SYMBOL [--as-of DATE] [--format table|json]
    technic screen list | show NAME | save NAME [scan options] | delete NAME | run NAME | columns
    technic watch add | list | show | remove | test | status | redeliver | tail | run

Results go to stdout (or --out); progress, logs and the scan summary go to stderr, so
`technic scan --format csv > scan.csv` stays clean. `--data-dir` takes a path or an object-store
URI (`s3://bucket/prefix?region=...`): it is a string option, since a path type would collapse
the URI's `//`, and messages show a URI without its query and userinfo.
"""

from __future__ import annotations

import inspect
import logging
import math
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import pandas as pd
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from technic_v4 import formats
from technic_v4.cli_explain import explain_command
from technic_v4.cli_models import models_app
from technic_v4.cli_screens import screen_app
from technic_v4.cli_watch import Watches, after_store_change, watch_app
from technic_v4.data import store
from technic_v4.data.reader import StoreReader, default_data_dir, ensure_store
from technic_v4.data.store_fs import DataRoot, data_root, shown
from technic_v4.data.universe import alias_list
from technic_v4.errors import ConfigError, StaleDataError
from technic_v4.scan import ScanConfig, ScanStatus, run_scan
from technic_v4.scan.config import options

app = typer.Typer(help="technic: a full-universe stock technical scanner.", no_args_is_help=True)
data_app = typer.Typer(help="Manage the price store.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.command("explain")(explain_command)
err = Console(stderr=True)

DATA_DIR_OPTION = typer.Option(
    "--data-dir", help="Data directory or object-store URI such as s3://bucket/prefix "
    "(default: $TECHNIC_DATA_DIR or the per-user data folder).")
DataDir = Annotated[str | None, DATA_DIR_OPTION]
TABLE_COLUMNS = ["Symbol", "Sector", "Close", "TechRating", "Signal", "RSI", "MACD_hist",
                 "ATR_pct", "Volume_ratio", "mom_21", "mom_63", "Alpha5d", "Alpha10d"]


@app.callback()
def _setup(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=err, show_path=False)])


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


def _root(data_dir: str | None) -> DataRoot:
    """--data-dir checked (a bad URI is an error naming its scheme), else the default."""
    try:
        return data_root(data_dir) if data_dir else default_data_dir()
    except store.StoreError as exc:
        _fail(str(exc))


CLI_TYPES: dict[str, Any] = {  # how a ScanConfig field is typed on the command line
    "max_symbols": int | None, "lookback_days": int, "sectors": list[str] | None,
    "industries": list[str] | None, "symbols": list[str] | None,
    "min_tech_rating": float | None, "as_of_date": str | None, "min_price": float | None,
    "min_dollar_volume": float | None, "signals": list[str] | None, "min_bars": int,
    "max_stale_sessions": int, "sort_by": str, "ascending": bool, "exclude_flagged": bool,
    "exclude_flags": list[str] | None, "where": str | None, "rank": str | None,
    "screen": str | None,
}


def config_options(leave_out: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """One option per exposed ScanConfig field (its Option says the flag, help and valid
    values) but `leave_out`: what `technic scan` and `technic validate` take to describe a
    screen."""
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
        elif option.valid:
            text += f" Valid: {', '.join(option.valid)}."
        params.append(inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=getattr(defaults, name),
            annotation=Annotated[CLI_TYPES[name], typer.Option(
                *flags, help=text, metavar=flags[0].lstrip("-").upper().replace("-", "_"))]))
    return params


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


def scan(**kw: Any) -> None:
    """Scan the universe: indicators, TechRating, Signal, alpha; filter and rank."""
    fmt, out, top = kw.pop("fmt"), kw.pop("out"), kw.pop("top")
    show_rejections, data_dir = kw.pop("show_rejections"), kw.pop("data_dir")
    if fmt not in formats.FORMATS:
        _fail(f"unknown --format {fmt!r}; valid: {', '.join(formats.FORMATS)}")
    if fmt in ("parquet", "arrow") and out is None:
        _fail(f"--format {fmt} needs --out FILE")
    fields: dict[str, Any] = {k: (v or None) if isinstance(v, list) else v for k, v in kw.items()}
    config = ScanConfig(**fields)
    try:
        config.validate()
        reader = StoreReader(_root(data_dir))
        with err.status("scanning...") as spinner:
            def progress(stage: str, done: int, total: int) -> None:
                spinner.update(f"scanning: {stage} {done}/{total}")
            frame, status = run_scan(config, progress, loader=reader)
    except (ConfigError, StaleDataError, store.StoreError) as exc:
        _fail(str(exc))
    if fmt == "table":
        _print_table(frame, status, top)
    else:
        payload = formats.serialise(frame, formats.scan_meta(status), fmt)
        if out is None:
            sys.stdout.buffer.write(payload)
            sys.stdout.flush()
        else:
            out.write_bytes(payload)
    _print_summary(status, out)
    if show_rejections and len(status.rejections):
        err.print(status.rejections.to_string(index=False), highlight=False)


scan.__signature__ = inspect.Signature(_scan_options())  # type: ignore[attr-defined]
app.command()(scan)
app.add_typer(screen_app(scan), name="screen")  # built from scan's options (cli_screens.py)
app.add_typer(watch_app(scan), name="watch")  # `add` takes scan's screen options too


def _cell(value: object, col: str) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if col in {"ATR_pct", "mom_21", "mom_63", "Alpha5d", "Alpha10d"}:
            return f"{value:+.2%}" if col != "ATR_pct" else f"{value:.2%}"
        return f"{value:,.2f}"
    return str(value)


def _print_table(frame: pd.DataFrame, status: ScanStatus, top: int) -> None:
    out = Console()
    if not out.is_terminal:  # piped or captured: don't squeeze the table into 80 columns
        out = Console(width=170)
    title = (f"technic scan as of {status.as_of} — top {min(top, len(frame))} of {len(frame)} "
             f"— source: {status.source}")
    table = Table(title=title, header_style="bold")
    for col in TABLE_COLUMNS:
        table.add_column(col, justify="left" if col in {"Symbol", "Sector", "Signal"} else "right")
    for row in frame.head(top)[TABLE_COLUMNS].itertuples(index=False):
        table.add_row(*(_cell(v, c) for v, c in zip(row, TABLE_COLUMNS, strict=True)))
    out.print(table)


def _alpha_line(state: dict) -> str:
    if not state.get("available"):
        return str(state.get("reason", "alpha unavailable"))
    models = state.get("models", {})
    return "models " + ", ".join(
        f"{m['id']}@{m['version']} (trained on {m['data_source']} {m['data_version']})"
        for m in models.values())


def _print_summary(status: ScanStatus, out: Path | None) -> None:
    reasons = ", ".join(f"{k} {v}" for k, v in status.rejected_by_reason.items()) or "none"
    total_ms = status.timings_ms.get("total", 0.0)
    err.print(
        f"source: {status.source}  data_version: {status.data_version}  as_of: {status.as_of}  "
        f"window: {status.window_bars} sessions\n"
        f"attempted {status.attempted}, kept {status.kept}, rejected {status.rejected} "
        f"({reasons}), errors {status.errors}\n"
        f"alpha: {_alpha_line(status.alpha)}\n"
        f"scan time {total_ms:.1f} ms ("
        + ", ".join(f"{k} {v:.1f}" for k, v in status.timings_ms.items() if k != "total") + ")"
        + (f"\nwrote {out}" if out else ""), highlight=False)
    if status.screen:
        err.print(f"screen: {status.screen['name']} version {status.screen['version']}"
                  + (" (preset)" if status.screen.get("preset") else ""), highlight=False)
    for e in status.error_details:
        err.print(f"error: {e['symbol']}: {e['error']}", highlight=False)


@data_app.command("demo")
def data_demo(
    symbols: Annotated[int, typer.Option(help="Number of symbols.")] = 5000,
    data_dir: DataDir = None,
) -> None:
    """(Re)build the deterministic synthetic demo market in the data directory."""
    from technic_v4.data.demo import DemoSpec, build_demo_store

    root = _root(data_dir)
    try:
        with err.status(f"building the synthetic demo market ({symbols} symbols) in "
                        f"{shown(root)}..."):
            manifest = build_demo_store(root, DemoSpec(n_symbols=symbols))
    except (OSError, store.StoreError) as exc:
        _fail(str(exc))
    err.print(f"built {manifest.n_symbols} symbols x {manifest.n_sessions} sessions "
              f"({manifest.first_session}..{manifest.last_session}), source: synthetic, "
              f"data_version {manifest.data_version}", highlight=False)


@data_app.command("ingest")
def data_ingest(
    bars: Annotated[Path, typer.Argument(help="Long CSV/Parquet (symbol,date,open,high,low,"
                                         "close,volume) or a folder of SYMBOL.csv files.")],
    universe: Annotated[Path | None, typer.Option(help="symbol,name,sector,industry file.")] = None,
    report: Annotated[Path | None, typer.Option(help="Write rejected rows to this CSV.")] = None,
    prices: Annotated[str, typer.Option(help="Folders: adj_close (scale OHLC by Adj Close / "
                                        "Close) or raw.")] = "adj_close",
    data_dir: DataDir = None,
    watches: Watches = True,
) -> None:
    """Replace (or create) the store from your own daily bars; bad rows are reported."""
    from technic_v4.data.ingest import ingest_bars
    from technic_v4.data.ingest_yahoo import ingest_csv_folder

    root = _root(data_dir)
    try:
        if bars.is_dir():
            result = ingest_csv_folder(bars, root, universe_path=universe, prices=prices)
        else:
            result = ingest_bars(bars, root, universe_path=universe)
    except (ValueError, OSError, store.StoreError) as exc:
        _fail(str(exc))
    s = result.summary()
    err.print(f"read {result.rows_read} rows: kept {result.rows_kept}, rejected "
              f"{result.rows_rejected}; {result.symbols} symbols x {result.sessions} sessions "
              f"({result.first_session}..{result.last_session}); data_version "
              f"{result.manifest.data_version}", highlight=False)
    for reason, count in s.get("rejected_by_reason", {}).items():
        err.print(f"  rejected {count}: {reason}", highlight=False)
    if len(result.universe_issues):
        err.print(f"  universe issues: {len(result.universe_issues)} "
                  f"(e.g. {result.universe_issues.iloc[0].to_dict()})", highlight=False)
    if result.quality is not None:
        q = result.quality.counts()
        err.print("quality: " + ", ".join(f"{k} {v}" for k, v in q.items())
                  + " (details: technic data check)", highlight=False)
    if report is not None:
        result.rejections.to_csv(report, index=False)
        err.print(f"wrote rejected rows to {report}", highlight=False)
    elif result.rows_rejected:
        err.print(result.rejections.head(20).to_string(index=False), highlight=False)
    if watches:
        after_store_change(root)


@data_app.command("append")
def data_append(
    bars: Annotated[Path, typer.Argument(help="Long CSV/Parquet of new sessions.")],
    data_dir: DataDir = None,
    watches: Watches = True,
) -> None:
    """Append sessions newer than the store's last; older sessions never change."""
    from technic_v4.data.append import append_bars
    from technic_v4.data.ingest import read_bars_file

    root = _root(data_dir)
    try:
        result = append_bars(read_bars_file(bars), root)
    except (ValueError, OSError, store.StoreError) as exc:
        _fail(str(exc))
    _print_append(result)
    if watches:
        after_store_change(root)


def _print_append(result) -> None:  # AppendReport
    shown = ", ".join(result.new_sessions[:5]) + ("..." if len(result.new_sessions) > 5 else "")
    err.print(f"appended {len(result.new_sessions)} sessions ({shown})"
              f": kept {result.rows_kept} rows, rejected {result.rows_rejected}, "
              f"{len(result.new_symbols)} new symbols; data_version {result.previous_version} -> "
              f"{result.manifest.data_version}", highlight=False)
    if result.empty_sessions:
        err.print(f"  no rows for sessions {result.empty_sessions}: left empty", highlight=False)
    if result.rows_rejected:
        err.print(result.rejections.head(20).to_string(index=False), highlight=False)


@data_app.command("update")
def data_update(
    provider: Annotated[str, typer.Option(help="Data provider (polygon).")] = "polygon",
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
    from technic_v4.data.providers.polygon import PolygonClient, PolygonError
    from technic_v4.data.providers.update import update_store

    if provider != "polygon":
        _fail(f"unknown provider {provider!r}; available: polygon")
    root = _root(data_dir)
    if not isinstance(root, Path):
        _fail(f"`technic data update` keeps its download cache in the data dir, which must be "
              f"local, not {shown(root)}: update a local store, or fetch bars elsewhere and "
              f"`technic data append FILE --data-dir URI`")
    try:
        with PolygonClient(per_minute=per_minute) as client:
            result = update_store(root, client, start=start, end=end, workers=workers,
                                  tickers=tickers)
    except (ValueError, OSError, store.StoreError, PolygonError) as exc:
        _fail(str(exc))
    f = result.fetch
    err.print(f"fetched {len(f.fetched)}, already cached {len(f.cached)}, missing "
              f"{f.missing or 0}, failed {list(f.failed) or 0}; appended {len(result.appended)}"
              + (f"; waiting behind a gap: {result.waiting}" if result.waiting else ""),
              highlight=False)
    for day, why in f.failed.items():
        err.print(f"  {day}: {why}", highlight=False)
    if watches and result.appended:
        after_store_change(root)
    if f.failed or f.missing:
        raise typer.Exit(1)


@data_app.command("check")
def data_check(
    out: Annotated[Path | None, typer.Option(help="Write the per-symbol table here (CSV).")] = None,
    events: Annotated[bool, typer.Option(help="List every dated finding.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Run the data-quality gate over the store and print the report; exit 1 if flagged."""
    from technic_v4.data.quality import FLAGS, check_store

    root = _root(data_dir)
    try:
        report = check_store(root)
    except (ValueError, store.StoreError) as exc:
        _fail(str(exc))
    counts = report.counts()
    m = store.read_manifest(root)
    err.print(f"data quality of {store.store_location(root)} (data_version {m.data_version}, "
              f"{m.n_symbols} symbols, adjusted: {m.meta.get('adjusted', 'unknown')})\n"
              + ", ".join(f"{f} {counts[f]}" for f in FLAGS)
              + f"; flagged {counts['any']} of {m.n_symbols}", highlight=False)
    flagged = report.table[report.table["quality_flags"] != ""]
    if len(flagged):
        print(flagged.to_string(index=False))
    if events and len(report.events):
        print(report.events.to_string(index=False))
    if out is not None:
        report.table.to_csv(out, index=False)
        err.print(f"wrote {out}", highlight=False)
    if counts["any"]:
        raise typer.Exit(1)


@data_app.command("info")
def data_info(data_dir: DataDir = None) -> None:
    """Describe the store: source, shape, sessions, data version."""
    root = _root(data_dir)
    try:
        if not store.store_exists(root):
            _fail(f"no price store in {shown(root)}; `technic data demo` builds the synthetic "
                  "one, `technic data ingest FILE` loads yours")
        m = ensure_store(root)
        uni = store.read_universe(root)
    except store.StoreError as exc:
        _fail(str(exc))
    err.print(f"store: {store.store_location(root)}\nsource: {m.source}\ndata_version: "
              f"{m.data_version}\nsymbols: {m.n_symbols}\nsessions: {m.n_sessions} "
              f"({m.first_session}..{m.last_session})\nsegments: "
              f"{len(m.segment_list())} (base + appends)\ncreated: {m.created}", highlight=False)
    err.print(uni["sector"].value_counts().to_string(), highlight=False)


def _register_validate() -> None:
    from technic_v4.cli_validate import validate_command

    app.command("validate")(validate_command)


_register_validate()


if __name__ == "__main__":
    app()
