"""`technic data`: build, load, update, check and describe the price store.

    technic data demo | ingest FILE|FOLDER [--universe FILE] [--calendar MIC] | append FILE
                 | init | update | check | info | calendars | universe [LIST ...] [--out FILE]
                 | intraday demo|sessions|check (technic_v4/cli/intraday.py)
(`init` and `update`, which fetch from a provider, are in technic_v4/cli/fetch.py.)

`data info`, `data check`'s table and `data calendars` print to stdout, everything else to
stderr. Exit status 1 when `data check` flagged symbols or `data update` left sessions missing
or failed. `ingest`, `append` and `update` evaluate every watch on the sessions they add and
deliver once (`--no-watches` skips it; technic_v4/cli/watch.py). None of these commands
imports numba or XGBoost.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from technic_v4.cli.intraday import intraday_app
from technic_v4.cli.options import DEFAULT_CALENDAR, DataDir, data_root, err, fail, spinner
from technic_v4.cli.universe import data_universe

if TYPE_CHECKING:
    from technic_v4.data.store_fs import DataRoot

DEMO_SYMBOLS = (50, 20_000)  # `data demo --symbols` bounds (20,000 x 5 years: ~1.5 GB to build)
CALENDAR_HELP = ("Exchange calendar of the bars (exchange_calendars name: XNYS, XLON, XTKS, "
                 "XHKG, XPHS, ...; `technic data calendars` lists them).")
DATE_FORMAT_HELP = ("How the file writes dates: iso, mdy (M/D/YYYY[ H:MM[:SS]]), dmy "
                    "(D/M/YYYY, D.M.YYYY), yyyymmdd, epoch-s, epoch-ms, or a strftime pattern "
                    "like '%d-%b-%Y' (default: detected; ambiguous dates are an error).")
EXTRA_SHARE_HELP = ("Keep a day the calendar calls a holiday as a session when at least this "
                    "share of the symbols listed around it traded on it (at least 2 symbols).")
Watches = Annotated[bool, typer.Option(  # `technic data ingest|append|update`
    "--watches/--no-watches", help="Evaluate the watches on the sessions added, and deliver.")]

data_app = typer.Typer(help="Manage the price store.", no_args_is_help=True)
data_app.command("universe")(data_universe)
data_app.add_typer(intraday_app, name="intraday")


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
    root = data_root(data_dir)
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
    root = data_root(data_dir)
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
        _write_csv(result.rejections, report, "rejected rows")
    elif result.rows_rejected:
        err.print(escape(result.rejections.head(20).to_string(index=False)), highlight=False)
    if watches:
        _after_store_change(root)


def _write_csv(frame: Any, path: Path, what: str = "") -> None:
    """`frame` (a DataFrame) as CSV at `path`; a write that fails is the `error:` line."""
    try:
        frame.to_csv(path, index=False)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")
    err.print(f"wrote {what + ' to ' if what else ''}{path}", highlight=False)


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
    (technic_v4/cli/watch.py)."""
    from technic_v4.cli.watch import after_store_change

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
    root = data_root(data_dir)
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


@data_app.command("check")
def data_check(
    out: Annotated[Path | None, typer.Option(help="Write the per-symbol table here (CSV).")] = None,
    events: Annotated[bool, typer.Option(help="List every dated finding.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Run the data-quality gate over the store and print the report; exit 1 if flagged."""
    from technic_v4.data import store
    from technic_v4.data.quality import FLAGS, check_store

    root = data_root(data_dir)
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
        _write_csv(report.table, out)
    if counts["any"]:
        raise typer.Exit(1)


@data_app.command("info")
def data_info(data_dir: DataDir = None) -> None:
    """Describe the store (on stdout): source, calendar, shape, sessions, data version."""
    from technic_v4.data import store
    from technic_v4.data.store_fs import shown

    root = data_root(data_dir)
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
    _echo_memberships(m.meta, uni)
    if isinstance(root, Path):
        from technic_v4.data.providers.base import read_source, read_status

        source, status = read_source(root), read_status(root)
        if source:
            typer.echo(f"provider: {source['provider']} (data init, from {source['start']})")
        if status:
            state = "ok" if status.get("ok") else f"FAILED: {status.get('error')}"
            typer.echo(f"last update: {status.get('at')} {state}; appended "
                       f"{status.get('appended') or []}")


def _echo_memberships(meta: dict[str, Any], uni: Any) -> None:
    """The store's index memberships (members per list) and where they came from."""
    from technic_v4.data.indexes import META_KEY
    from technic_v4.data.panel import memberships

    counts: dict[str, int] = {}
    for m in memberships(uni):
        for i in m.split(",") if m else ():
            counts[i] = counts.get(i, 0) + 1
    if not counts:
        return
    typer.echo("indexes: " + ", ".join(f"{i} {n}" for i, n in counts.items())
               + f"\nmemberships from: {'; '.join(meta.get(META_KEY) or ['not recorded'])}")


@data_app.command("calendars")
def data_calendars() -> None:
    """List the exchange calendar names `--calendar` accepts (exchange_calendars)."""
    from technic_v4.data.calendar import calendar_names

    typer.echo("\n".join(calendar_names()))
