"""`technic live`: live one-minute bars as they arrive, from a replayed session or Alpaca.

    technic live --replay 2026-10-30 [--speed 60x|max] [--symbol AAPL ...]
    technic live --from-file SESSION.parquet [--speed 60x|max]
    technic live --alpaca [--feed iex|sip] --symbol AAPL,MSFT [--max-batches N]
    technic live --replay DATE --where EXPR [--rank EXPR] [--top N] [--format rich|jsonl]
    technic live --replay DATE --screen NAME

With --where or --screen, the bars feed a live screen (technic_v4/live/screens.py) seeded from
the stores: stdout shows its `entered` / `left` events at each bar close instead of the
batches (one JSON object a line with --format jsonl).

stdout: one line per batch (bar start in UTC, bars, `correction` when it replaces bars
already shown, the first symbols' closes). stderr: the source's status whenever its state,
reconnects or errors change, and in full at the end. Exit status 0 when the source ended or
--max-batches were shown; 2 on an error (a refused key, a bad frame or date), one line.

The printer is one consumer of `technic_v4.live.feed.run`; `CONSUMERS` holds factories of
more (the incremental state, screens, watches plug in there), each called once per run and
fed every batch after the printer.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from technic_v4.cli.options import DATA_DIR_OPTION, data_root, err, fail, settings

if TYPE_CHECKING:
    from technic_v4.live.bars import BarBatch
    from technic_v4.live.feed import BarSource, Consumer, FeedStatus
    from technic_v4.live.screens import LiveScreen

CONSUMERS: list[Callable[[], Consumer]] = []
SHOWN = 3  # symbols whose close a batch line shows


def live_command(
    replay: Annotated[str | None, typer.Option(
        help="Replay this session (YYYY-MM-DD) of the intraday store.")] = None,
    from_file: Annotated[Path | None, typer.Option(
        help="Replay a session frame stored as Parquet (ts, symbol, open..volume).")] = None,
    alpaca: Annotated[bool, typer.Option(
        "--alpaca", help="Stream from Alpaca (ALPACA_API_KEY_ID / ALPACA_API_SECRET_KEY).")
    ] = False,
    feed: Annotated[str, typer.Option(help="Alpaca's feed: iex (free) or sip.")] = "iex",
    symbol: Annotated[list[str] | None, typer.Option(
        "--symbol", help="Symbols (repeatable, or separated by commas); a replay plays all "
        "when none are given.")] = None,
    speed: Annotated[str, typer.Option(
        help="Replay speed: 1x is real time, 60x a session minute a second, max no waits.")
    ] = "60x",
    max_batches: Annotated[int | None, typer.Option(
        min=1, help="Stop after this many batches.")] = None,
    where: Annotated[str | None, typer.Option(
        help="A screen to keep live: events when symbols enter or leave it at a bar close.")
    ] = None,
    rank: Annotated[str | None, typer.Option(help="Rank the live screen's symbols.")] = None,
    top: Annotated[int | None, typer.Option(
        min=1, help="Keep the live screen's first N symbols by --rank.")] = None,
    screen: Annotated[str | None, typer.Option(
        help="A saved screen or preset to keep live (its where and rank).")] = None,
    format: Annotated[str, typer.Option(
        "--format", help="Live screen events as rich lines or jsonl.")] = "rich",
    data_dir: Annotated[str | None, DATA_DIR_OPTION] = None,
) -> None:
    """Print live minute bars as they arrive, with the source's status."""
    from technic_v4.live.alpaca import AlpacaError
    from technic_v4.live.feed import run

    chosen = [name for name, on in (("--replay", replay), ("--from-file", from_file),
                                    ("--alpaca", alpaca)) if on]
    if len(chosen) != 1:
        fail(f"choose one source: --replay DATE, --from-file FILE or --alpaca (got "
             f"{', '.join(chosen) or 'none'})")
    symbols = [s.strip() for item in symbol or [] for s in item.split(",") if s.strip()]
    try:
        source = _source(replay, from_file, alpaca, feed, symbols, speed, data_dir)
    except (AlpacaError, ValueError, OSError) as exc:
        fail(str(exc))
    if format not in ("rich", "jsonl"):
        fail(f"--format {format!r}: choose rich or jsonl")
    live = _screen(where, rank, top, screen, symbols, replay, data_dir, format)
    consumers: list[Consumer] = [_Printer() if live is None else _Events(live),
                                 *(make() for make in CONSUMERS)]
    try:
        status = asyncio.run(run(source, consumers, max_batches=max_batches))
    except AlpacaError as exc:
        _show(source.status, final=True)
        fail(str(exc))
    if live is not None and live.state is not None and status.state == "done":
        live.finish(status.source)
    _show(status, final=True)


def _screen(where: str | None, rank: str | None, top: int | None, name: str | None,
            symbols: list[str], replay: str | None, data_dir: str | None, fmt: str
            ) -> LiveScreen | None:
    """The live screen the options ask for, started on the replayed session; None without
    --where / --screen."""
    if where is None and name is None:
        if rank is not None or top is not None:
            fail("--rank and --top rank a live screen: give --where or --screen")
        return None
    from technic_v4.errors import ConfigError
    from technic_v4.live.screens import LIVE_WATCH, LiveScreen

    version = None
    root = data_root(data_dir)
    if name is not None:
        from technic_v4.cli.screen import _store
        from technic_v4.errors import UnknownScreenError

        try:
            saved = _store(data_dir).get(name)
        except UnknownScreenError as exc:
            fail(f"{exc}; valid: {', '.join(exc.valid or [])}")
        where = where or saved.definition.get("where")
        rank = rank or saved.definition.get("rank")
        version = saved.version
        if where is None:
            fail(f"screen {name!r} has no where expression to keep live")
    assert where is not None
    try:
        live = LiveScreen(root, where, rank, top, screen_version=version,
                          symbols=symbols or None, on_event=_emit(fmt),
                          watch=name or LIVE_WATCH)
        if replay is not None:
            live.start(replay)
    except (ConfigError, ValueError, OSError) as exc:
        fail(str(exc))
    return live


def _emit(fmt: str) -> Callable[[dict[str, Any]], None]:
    """Writes one event: a JSON line, or a rich line (time, kind, symbol, values)."""
    import json

    def jsonl(event: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def rich(event: dict[str, Any]) -> None:
        from rich.console import Console

        color = "green" if event["kind"] == "entered" else "red"
        values = "  ".join(f"{k} {v:.4g}" if v is not None else f"{k} -"
                           for k, v in event["row"].items())
        Console(soft_wrap=True).print(
            f"{event['bar_time'][11:16]}Z {event['timeframe']:<3} [{color}]{event['kind']:<7}"
            f"[/{color}] [bold]{event['symbol']:<6}[/bold] {values}", highlight=False)

    return jsonl if fmt == "jsonl" else rich


class _Events:
    """Feeds the live screen each batch (its events print as they happen); the status on
    stderr when it changes."""

    def __init__(self, live: LiveScreen) -> None:
        self.live = live
        self.seen: tuple[Any, ...] = ()

    def __call__(self, batch: BarBatch, status: FeedStatus) -> None:
        self.live(batch, status)
        now = (status.state, status.reconnects, status.errors)
        if now != self.seen:
            self.seen = now
            _show(status)


def _source(replay: str | None, from_file: Path | None, alpaca: bool, feed: str,
            symbols: list[str], speed: str, data_dir: str | None) -> BarSource:
    if alpaca:
        from technic_v4.live.alpaca import DEFAULT_DATA_URL, DEFAULT_STREAM_URL, AlpacaFeed

        conf = settings()
        if not symbols:
            raise ValueError("--alpaca needs the symbols to stream: --symbol AAPL,MSFT")
        return AlpacaFeed(symbols, key_id=conf.alpaca_api_key_id,
                          secret_key=conf.alpaca_api_secret_key, feed=feed,
                          stream_url=conf.alpaca_stream_url or DEFAULT_STREAM_URL,
                          data_url=conf.alpaca_data_url or DEFAULT_DATA_URL,
                          batch_delay_s=conf.live_batch_delay_s)
    import pandas as pd

    from technic_v4.data.universe import validate_symbol
    from technic_v4.live.replay import ReplaySource, load_session, parse_speed

    rate = parse_speed(speed)
    if from_file is not None:
        frame = pd.read_parquet(from_file)
        name = f"replay:{from_file.name}"
    else:
        assert replay is not None
        if pd.isna(pd.to_datetime(replay, format="%Y-%m-%d", errors="coerce")):
            raise ValueError(f"--replay {replay!r} is not a date: use YYYY-MM-DD")
        frame = load_session(data_root(data_dir), replay)
        name = f"replay:{replay}"
    if symbols:
        wanted = {validate_symbol(s) for s in symbols}
        frame = frame[frame["symbol"].astype(str).str.upper().isin(wanted)]
        if frame.empty:
            raise ValueError(f"none of {', '.join(sorted(wanted))} has a bar in {name}")
    return ReplaySource(frame, speed=rate, name=name)


class _Printer:
    """A line per batch on stdout; the status on stderr when it changes (module docstring)."""

    def __init__(self) -> None:
        self.seen: tuple[Any, ...] = ()

    def __call__(self, batch: BarBatch, status: FeedStatus) -> None:
        head = ", ".join(f"{s} {c:g}" for s, c in zip(batch.symbols[:SHOWN].tolist(),
                                                       batch.close[:SHOWN].tolist(),
                                                       strict=True))
        more = f", +{len(batch) - SHOWN}" if len(batch) > SHOWN else ""
        fix = "  correction" if batch.correction else ""
        sys.stdout.write(f"{batch.start:%Y-%m-%d %H:%M}Z  {len(batch):>5} bars{fix}  "
                         f"{head}{more}\n")
        sys.stdout.flush()
        now = (status.state, status.reconnects, status.errors)
        if now != self.seen:
            self.seen = now
            _show(status)


def _show(status: FeedStatus, final: bool = False) -> None:
    s = status
    line = (f"{s.source}: {s.state}, {s.bars} bars in {s.batches} batches, last "
            f"{'-' if s.last_bar is None else f'{s.last_bar:%H:%M}Z'}; duplicates "
            f"{s.duplicates}, corrections {s.corrections}, reconnects {s.reconnects}, "
            f"backfilled {s.backfilled}, malformed {s.malformed}, errors {s.errors}")
    if s.last_error and (final or s.errors):
        line += f" (last: {s.last_error})"
    err.print(line, highlight=False, soft_wrap=True, markup=False)
