"""`technic data init` and `technic data update`: a store of real bars from a provider.

    technic data init --universe sp500 --provider yahoo --years 5
    technic data update            # every session since the last one that has closed

Keys and base URLs come from Settings (TECHNIC_POLYGON_API_KEY, TECHNIC_YAHOO_URL, ...), read
here once and passed down (technic_v4/data/providers/schedule.py). Progress (symbols done,
rate, ETA) goes to stderr. Exit 1 when symbols or sessions failed (named), 2 on an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from technic_v4.cli.data import Watches, _after_store_change, _print_append, data_app
from technic_v4.cli.options import DataDir, data_root, err, fail, settings

if TYPE_CHECKING:
    import pandas as pd

PROVIDER_HELP = ("yahoo (free, personal use under Yahoo's terms; any exchange with a venue "
                 "suffix) or polygon (key in TECHNIC_POLYGON_API_KEY; US stocks).")
Workers = Annotated[int | None, typer.Option(help="Concurrent requests (default 4).")]
PerMinute = Annotated[float | None, typer.Option(
    help="Request cap per minute (default: yahoo 60, polygon none; free Polygon tier: 5).")]


def _local(root: Any) -> Path:
    from technic_v4.data.store_fs import shown

    if not isinstance(root, Path):
        fail(f"provider downloads are cached in the data dir, which must be local, not "
             f"{shown(root)}: fetch into a local store, or `technic data append FILE`")
    return root


def _universe(names: list[str], files: list[Path], symbols: list[str]) -> pd.DataFrame:
    """The union of index lists, universe files and --symbols (first mention wins)."""
    import pandas as pd

    from technic_v4.data.universe import valid_symbols

    parts = []
    if names:
        from technic_v4.data.indexes import index_universe, universe_file

        try:  # with IndexesSource: the store records where its memberships came from
            parts.append(universe_file(index_universe(names)))
        except ValueError as exc:
            fail(str(exc))
    for path in files:
        if not path.is_file():
            fail(f"no such universe file: {path}")
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "symbol" not in {c.lower() for c in frame.columns}:
            fail(f"universe file {path} has no symbol column (columns: {list(frame.columns)})")
        parts.append(frame)
    wanted = [s.strip().upper() for v in symbols for s in v.split(",") if s.strip()]
    if wanted:
        parts.append(pd.DataFrame({"symbol": wanted}))
    if not parts:
        fail("say which symbols: --universe NAME (e.g. sp500), --universe-file FILE or "
             "--symbols A,B,C")
    frames = [p.rename(columns={c: c.lower() for c in p.columns}) for p in parts]
    uni = pd.concat(frames, ignore_index=True).fillna("").astype(str)
    uni["symbol"] = uni["symbol"].str.strip().str.upper()
    bad = uni["symbol"][~valid_symbols(pd.Index(uni["symbol"]))]
    if len(bad):
        fail(f"not symbols: {', '.join(map(repr, bad[:10]))}")
    return uni.drop_duplicates("symbol").reset_index(drop=True)


class _Bar:
    """A rich progress bar (symbols done, rate, ETA) on stderr; a line per 10% elsewhere."""

    def __init__(self, what: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.what, self.shown = what, -1
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=err, disable=not err.is_terminal)
        self.task = self.progress.add_task(what, total=None, rate="")

    def __enter__(self) -> _Bar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def __call__(self, done: int, total: int) -> None:
        speed = self.progress.tasks[0].speed
        self.progress.update(self.task, completed=done, total=total,
                             rate=f"{speed:.1f}/s" if speed else "")
        tenth = done * 10 // max(total, 1)
        if not err.is_terminal and tenth != self.shown:
            self.shown = tenth
            err.print(f"{self.what}: {done}/{total}", highlight=False)


def _report(fetch: Any, unit: str) -> None:
    err.print(f"fetched {len(fetch.fetched)} {unit}, {len(fetch.cached)} already cached, "
              f"{len(fetch.empty)} without data, {len(fetch.failed)} failed "
              f"({fetch.requests} requests)", highlight=False)
    if fetch.empty:
        err.print(escape(f"  no data (delisted, renamed or unknown): {', '.join(fetch.empty)}"),
                  highlight=False)
    for key, why in list(fetch.failed.items())[:20]:
        err.print(escape(f"  failed {key}: {why}"), highlight=False)


@data_app.command("init")
def data_init(
    universe: Annotated[list[str] | None, typer.Option(
        help="Index list(s) to fetch (technic data universe lists them): sp500, nasdaq100, "
        "dow, ... Repeatable.")] = None,
    universe_file: Annotated[list[Path] | None, typer.Option(
        help="CSV with symbol[,name,sector,industry,yahoosymbol]. Repeatable.")] = None,
    symbols: Annotated[list[str] | None, typer.Option(help="Symbols, comma-separated.")] = None,
    provider: Annotated[str, typer.Option(help=PROVIDER_HELP)] = "yahoo",
    years: Annotated[float, typer.Option(help="Years of history.")] = 5.0,
    start: Annotated[str | None, typer.Option(help="First day (instead of --years).")] = None,
    end: Annotated[str | None, typer.Option(help="Last session (default: last closed).")] = None,
    calendar: Annotated[str | None, typer.Option(
        help="Exchange calendar (default: the index's, else XNYS).")] = None,
    workers: Workers = None,
    per_minute: PerMinute = None,
    data_dir: DataDir = None,
) -> None:
    """Build a store of real daily bars with sectors (rerun after a stop: resumes)."""
    import pandas as pd

    from technic_v4.data import store
    from technic_v4.data.providers.base import ProviderError
    from technic_v4.data.providers.schedule import build_provider
    from technic_v4.data.providers.update import init_store

    if not 0 < years <= 50:
        fail(f"--years {years}: expected a number of years in (0, 50]")
    uni = _universe(universe or [], universe_file or [], symbols or [])
    cals = sorted(set(uni["calendar"]) - {""}) if "calendar" in uni else []
    if calendar is None and len(cals) > 1:
        fail(f"the lists are on several exchange calendars ({', '.join(cals)}): a store has one; "
             "init one list at a time, or give --calendar")
    cal = calendar or (cals[0] if cals else "XNYS")
    first = pd.Timestamp(start) if start else pd.Timestamp.now().normalize() - pd.DateOffset(
        days=round(365.25 * years))
    root = _local(data_root(data_dir))
    try:
        tickers = {} if "yahoosymbol" not in uni else {
            s: y for s, y in zip(uni["symbol"], uni["yahoosymbol"], strict=True) if y}
        prov = build_provider(provider, root, settings(), calendar=cal,
                              per_minute=per_minute, workers=workers, yahoo_symbols=tickers)
        err.print(f"fetching {len(uni)} symbols from {provider} ({cal}, from {first.date()}) "
                  f"into {root}", highlight=False)
        with _Bar("symbols") as bar:
            result = init_store(root, prov, uni, start=first, end=end, progress=bar)
    except (ValueError, OSError, store.StoreError, ProviderError) as exc:
        fail(str(exc))
    _report(result.fetch, "symbols")
    if result.store is None:
        fail(f"no bars for any of the {len(uni)} symbols; nothing was stored")
    m = store.read_manifest(root)
    err.print(f"stored {m.n_symbols} symbols x {m.n_sessions} {m.calendar} sessions "
              f"({m.first_session}..{m.last_session}); data_version {m.data_version}",
              highlight=False)
    typer.echo("try: technic scan --sector Technology --sector Healthcare"
               + (f" --data-dir {data_dir}" if data_dir else ""))
    if result.fetch.failed:
        err.print("rerun the same command to fetch the failed symbols (the rest is cached)",
                  highlight=False)
        raise typer.Exit(1)


@data_app.command("update")
def data_update(
    provider: Annotated[str | None, typer.Option(
        help="Provider (default: the one `data init` used, else polygon). " + PROVIDER_HELP)
    ] = None,
    start: Annotated[str | None, typer.Option(help="First session when there is no store.")] = None,
    end: Annotated[str | None, typer.Option(help="Last session (default: last closed).")] = None,
    workers: Workers = None,
    per_minute: PerMinute = None,
    tickers: Annotated[bool, typer.Option(help="Polygon: refresh the ticker reference first "
                                          "(names for new symbols).")] = False,
    data_dir: DataDir = None,
    watches: Watches = True,
) -> None:
    """Fetch every session since the store's last that has closed, and append it."""
    import pandas as pd

    from technic_v4.data import store
    from technic_v4.data.providers.base import ProviderError, read_source
    from technic_v4.data.providers.schedule import build_provider, run_update

    for flag, value in (("--start", start), ("--end", end)):
        if value is not None and pd.isna(pd.to_datetime(value, format="ISO8601",
                                                        errors="coerce")):
            fail(f"{flag} {value!r} is not a date: use YYYY-MM-DD, e.g. 2024-03-28")
    if (workers is not None and workers < 1) or (per_minute is not None and
                                                 not per_minute > 0):
        fail("--workers must be >= 1 and --per-minute > 0")
    root = _local(data_root(data_dir))
    env = settings()
    source = read_source(root) or {}
    name = provider or source.get("provider", "polygon")
    try:
        prov = build_provider(name, root, env, calendar=source.get("calendar", "XNYS"),
                              per_minute=per_minute, workers=workers)
        if tickers and hasattr(prov, "reference"):
            prov.reference(refresh=True)
        with _Bar("sessions" if name == "polygon" else "symbols") as bar:
            result = run_update(root, env, provider=prov, start=start, end=end,
                                progress=bar)
    except (ValueError, OSError, store.StoreError, ProviderError) as exc:
        fail(str(exc))
    if not result.wanted:
        err.print("up to date: no session has closed since the store's last", highlight=False)
        return
    _report(result.fetch, "sessions" if name == "polygon" else "symbols")
    if result.store is not None and hasattr(result.store, "new_sessions"):
        _print_append(result.store)
    err.print(f"appended {len(result.appended)} of {len(result.wanted)} sessions"
              + (f"; waiting behind a gap: {result.waiting}" if result.waiting else ""),
              highlight=False)
    if watches and result.appended:
        _after_store_change(root)
    if not result.ok:
        raise typer.Exit(1)
