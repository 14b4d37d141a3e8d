"""`technic data intraday`: the one-minute bars beside the daily store.

    technic data intraday demo [--sessions N] | sessions | check [--sessions N] [--rtol X]

`demo` writes minute bars for the demo market's newest sessions (consistent with its daily
bars); `sessions` lists the stored sessions on stdout; `check` compares each stored session's
daily resample with the daily store and lists every disagreement (exit 1 when any); `check`
imports numba (the resampling kernel), the other two do not.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from technic_v4.cli.options import DataDir, data_root, err, fail, spinner

intraday_app = typer.Typer(help="Manage the one-minute intraday bars.", no_args_is_help=True)


@intraday_app.command("demo")
def intraday_demo(
    sessions: Annotated[int, typer.Option(
        help="How many of the demo market's newest sessions get minute bars (1 to 60).")] = 3,
    data_dir: DataDir = None,
) -> None:
    """Build minute bars for the demo market's newest sessions (their daily resample equals
    the daily bars)."""
    from technic_v4.data.demo_intraday import build_demo_intraday
    from technic_v4.data.intraday import IntradayError, intraday_location
    from technic_v4.data.store_fs import StoreError

    root = data_root(data_dir)
    began = time.perf_counter()
    try:
        with spinner(f"building demo minute bars for {sessions} session(s)..."):
            days = build_demo_intraday(root, sessions)
    except (IntradayError, StoreError, OSError) as exc:
        fail(str(exc))
    err.print(f"wrote minute bars for {len(days)} session(s) ({days[0]}..{days[-1]}) to "
              f"{intraday_location(root)} in {time.perf_counter() - began:.1f} s, source: "
              "synthetic", highlight=False)


@intraday_app.command("sessions")
def intraday_sessions(data_dir: DataDir = None) -> None:
    """List the stored sessions (stdout): session, bars, symbols' calendar."""
    from technic_v4.data.intraday import IntradayError, session_meta, stored_sessions
    from technic_v4.data.store_fs import StoreError

    root = data_root(data_dir)
    try:
        for day in stored_sessions(root):
            meta = session_meta(root, day)
            typer.echo(f"{day.date()}  {meta['rows']:>10,} bars  {meta.get('calendar', '')}")
    except (IntradayError, StoreError) as exc:
        fail(str(exc))


@intraday_app.command("check")
def intraday_check(
    sessions: Annotated[int, typer.Option(help="How many of the newest stored sessions.")] = 5,
    rtol: Annotated[float, typer.Option(help="Relative tolerance of a field's match.")] = 0.0,
    data_dir: DataDir = None,
) -> None:
    """Compare the daily resample of the minute bars with the daily store; exit 1 on any
    disagreement (each listed on stdout)."""
    from technic_v4.data.intraday import IntradayError, load_intraday
    from technic_v4.data.resample import check_daily
    from technic_v4.data.store import load_panel
    from technic_v4.data.store_fs import StoreError

    root = data_root(data_dir)
    try:
        minutes = load_intraday(root, sessions=sessions)
        daily = load_panel(root, end=minutes.sessions[-1], bars=sessions + 5)
    except (IntradayError, StoreError) as exc:
        fail(str(exc))
    report = check_daily(minutes, daily, rtol)
    err.print(f"intraday vs daily over {len(minutes.sessions)} session(s) "
              f"({minutes.sessions[0].date()}..{minutes.sessions[-1].date()}): compared "
              f"{report.compared} bars, flagged {report.flagged} (fields differing "
              f"{len(report.mismatches)}, one side only {len(report.one_sided)})",
              highlight=False)
    for table in (report.mismatches, report.one_sided):
        if len(table):
            typer.echo(table.to_string(index=False))
    if report.flagged:
        raise typer.Exit(1)
