"""`technic validate`: would this screen have worked? The scan's options plus the replay's.

    technic validate --where "RSI < 30 and Close > SMA200" [--rank EXPR] [scan options]
                     [--start D --end D --every K --horizon 5 --horizon 21 --top N
                      --rebalance K --cost-bps 10] [--format table|json|csv|parquet --out F]

`table` (default) prints a summary per horizon and the portfolio to stdout; `json` the whole
report; `csv` / `parquet` the daily series (parquet needs --out). Progress and the assumptions
line go to stderr. Errors are one `error:` line, exit 2.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from technic_v4.cli.options import (
    DATA_DIR_OPTION,
    check_format,
    data_root,
    err,
    fail,
    screen_budget,
    settings,
    write_result,
)
from technic_v4.cli.scan import config_options
from technic_v4.data import store
from technic_v4.data.reader import StoreReader
from technic_v4.errors import ConfigError, StaleDataError
from technic_v4.scan import ScanConfig
from technic_v4.validate import DEFAULT_HORIZONS, ValidateOptions, ValidationReport, validate

FORMATS = ("table", "json", "csv", "parquet")


def _options() -> list[inspect.Parameter]:
    """The scan's screen options (but what a replay cannot take), then the replay's."""
    d = ValidateOptions()
    extra: dict[str, tuple[Any, Any, Any]] = {
        "start": (str | None, d.start, typer.Option(help="First session (YYYY-MM-DD).")),
        "end": (str | None, d.end, typer.Option(help="Last session (YYYY-MM-DD).")),
        "every": (int, d.every, typer.Option(help="Evaluate every k-th session.")),
        "horizon": (list[int] | None, None, typer.Option(
            help=f"Forward horizon in sessions (repeatable; default "
                 f"{', '.join(map(str, DEFAULT_HORIZONS))}).")),
        "top_n": (int, d.top, typer.Option("--top-n", help="Portfolio size (default: "
                                           "--max-symbols, else 20).")),
        "rebalance": (int, d.rebalance, typer.Option(help="Sessions between rebalances.")),
        "cost_bps": (float, d.cost_bps, typer.Option(help="Cost per side, basis points.")),
        "block_sessions": (int | None, None, typer.Option(
            min=0, help="Sessions per block of the replay: memory follows the block, not the "
                        "history (default: TECHNIC_VALIDATE_BLOCK_SESSIONS; 0: chosen from the "
                        "universe's size).")),
        "memory": (int | None, None, typer.Option(
            min=0, help="Memory a block may take, MB: the block size is chosen from it "
                        "(default: TECHNIC_VALIDATE_MEMORY_MB; 0: 3000). --block-sessions "
                        "wins when both are given.")),
        "ray": (str | None, None, typer.Option(
            help="Run the blocks as tasks on this Ray cluster (`auto`, or host:port); every "
                 "node must see --data-dir (a shared path, s3:// or gs://).")),
        "fmt": (str, "table", typer.Option("--format", "-f", help="table, json, csv or parquet "
                                           "(csv/parquet: the daily series).")),
        "out": (Path | None, None, typer.Option(help="Write here instead of stdout.")),
        "data_dir": (str | None, None, DATA_DIR_OPTION),
    }
    # what a replay cannot take (technic_v4/validate/replay.py check_validatable): not offered
    leave_out = ("as_of_date", "exclude_flagged", "exclude_flags", "columns")
    return config_options(leave_out) + [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                          annotation=Annotated[kind, info])
        for name, (kind, default, info) in extra.items()]


HELP_CONVENTIONS = """Conventions (the JSON report's `conventions` names them): entry at the
close of the session the screen ran, exit at the close of each symbol's h-th next bar; excess
over the day's equal-weighted universe; statistics on log returns with a Newey-West t (lags
ceil(2h / every) when h > every, else 0; an all-zero series has t 0). Portfolio: the top N,
held from one evaluated session's close to the next. Cumulative and annualised excess are both
net of --cost-bps and both over the calendar span of the replay (first to last evaluated
session): annualised = (1 + cumulative) ^ (365.25 / days) - 1; the gross figures are shown
beside, the mean per held step separately. Every output names the data source, and says
SYNTHETIC when the bars are the generated demo market."""


def validate_command(**kw: Any) -> None:
    """Replay a screen over history and measure what its picks did next."""
    fmt, out, data_dir = kw.pop("fmt"), kw.pop("out"), kw.pop("data_dir")
    block_sessions = kw.pop("block_sessions")
    address = kw.pop("ray")
    if block_sessions is None:
        block_sessions = settings().validate_block_sessions
    memory_mb = kw.pop("memory")
    if memory_mb is None:
        memory_mb = settings().validate_memory_mb
    check_format(fmt, FORMATS, out, needs_out=("parquet",))
    horizons = tuple(kw.pop("horizon") or DEFAULT_HORIZONS)
    opts = ValidateOptions(kw.pop("start"), kw.pop("end"), kw.pop("every"), horizons,
                           kw.pop("top_n"), kw.pop("rebalance"), kw.pop("cost_bps"))
    fields: dict[str, Any] = {k: (v or None) if isinstance(v, list) else v
                              for k, v in kw.items()}
    try:
        reader = StoreReader(data_root(data_dir))
        runner = _ray_runner(address, reader) if address else None
        with err.status("validating...") as spinner:
            def progress(stage: str, done: int, total: int) -> None:
                spinner.update(f"validating: {stage} {done}/{total}")
            result = validate(ScanConfig(**fields), reader, opts, progress,
                              screens=_screens(reader, fields), budget=screen_budget(),
                              block_sessions=block_sessions, memory_mb=memory_mb,
                              runner=runner)
    except (ConfigError, StaleDataError, store.StoreError) as exc:
        fail(str(exc))
    if fmt != "table":  # the table leads with it; here it goes beside the data, to stderr
        err.print(result.report["data"]["notice"], style=_notice_style(result.report),
                  highlight=False)
    _write(result, fmt, out)
    err.print(result.report["assumptions"]["survivorship"], highlight=False)


def _ray_runner(address: str, reader: StoreReader) -> Any:
    """The Ray runner (deployments/ray_validate.py) on the cluster at `address`, joined here;
    Ray is imported only when asked for."""
    import ray

    from deployments.ray_validate import RayRunner

    reader.manifest()  # a local data dir without a store gets the demo market first
    if not ray.is_initialized():
        try:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        except ConnectionError as exc:
            fail(f"no Ray cluster at {address!r}: {exc}")
    return RayRunner(str(reader.data_dir))


def _screens(reader: StoreReader, fields: dict[str, Any]) -> Any:
    """The saved screens a named screen is looked up in (the settings' state dir), or None
    when the command names none."""
    if not fields.get("screen"):
        return None
    from technic_v4.screens.saved import ScreenStore

    return ScreenStore.for_data_dir(reader.data_dir, settings().state_dir)


def _notice_style(report: dict[str, Any]) -> str:
    return "bold black on yellow" if report["data"]["synthetic"] else ""


def _write(result: ValidationReport, fmt: str, out: Path | None) -> None:
    if fmt == "table":
        _print(result.report)
        return
    if fmt == "json":
        payload = orjson.dumps(result.report, option=orjson.OPT_INDENT_2)
    else:
        payload = result.daily_bytes(fmt)
    write_result(payload, out)


def _cell(value: object, pct: bool = False) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:+.3%}" if pct else f"{value:.3f}"
    return str(value)


def _print(report: dict[str, Any]) -> None:
    out = Console()
    if not out.is_terminal:
        out = Console(width=160)
    data = report["data"]
    screen = "; ".join(f"{k} {v}" for k, v in report["screen"].items()) or "the default scan"
    if report.get("saved_screen"):
        screen = f"screen {report['saved_screen']['name']} v{report['saved_screen']['version']}"\
            f" ({screen})"
    out.print(data["notice"], style=_notice_style(report), highlight=False)
    out.print(f"validation of {screen} on "
              f"{data['sessions_evaluated']} sessions ({data['first_session']}.."
              f"{data['last_session']}), {data['symbols']} symbols, data {data['data_version']}",
              highlight=False)
    table = Table(header_style="bold")
    for col in ("horizon", "passing excess", "t", "hit rate", "rank IC", "IC t", "IC IR",
                "independent", "meaningful"):
        table.add_column(col, justify="right")
    for h, s in report["horizons"].items():
        ex, ic = s["passing_excess"], s["rank_ic"]
        table.add_row(f"{h}d", _cell(ex["mean"], True), _cell(ex["t_stat"]),
                      _cell(s["hit_rate"]), _cell(ic["mean"]), _cell(ic["t_stat"]),
                      _cell(ic["ic_ir"]), str(ex["independent"]),
                      "yes" if ex["meaningful"] else "no")
    out.print(table)
    _print_regimes(out, report)
    p = report["portfolio"]
    held = p["per_held_step"]
    out.print(f"top {p['top']} rebalanced every {p['rebalance_every']}, net of "
              f"{p['cost_bps_per_side']:g} bps per side, over {p['calendar_days']:g} calendar "
              f"days: cumulative excess {_cell(p['cumulative_excess'], True)}, annualised "
              f"{_cell(p['annualised_excess'], True)} (gross: "
              f"{_cell(p['cumulative_excess_gross'], True)}, "
              f"{_cell(p['annualised_excess_gross'], True)}); volatility "
              f"{_cell(p['annualised_volatility'], True)}, max drawdown "
              f"{_cell(p['max_drawdown'], True)}, turnover {_cell(p['turnover'])}; per held "
              f"step ({p['held_steps']} of {p['steps']}) {_cell(held['mean_excess'], True)}, "
              f"t {_cell(held['t_stat'])}", highlight=False)


def _print_regimes(out: Console, report: dict[str, Any]) -> None:
    """Each horizon's statistics within each market regime (the regime as of the session)."""
    info = report.get("regimes")
    if not info:
        return
    table = Table(header_style="bold", title=f"by market regime (benchmark "
                  f"{info['benchmark']}, regimes v{info['version']})")
    for col in ("regime", "sessions", "share", "horizon", "passing excess", "t", "hit rate",
                "rank IC", "IC t"):
        table.add_column(col, justify="right" if col != "regime" else "left")
    for name, counts in info["sessions"].items():
        for i, (h, s) in enumerate(report["horizons"].items()):
            cell = s["by_regime"].get(name)
            if cell is None:
                continue
            ex, ic = cell["passing_excess"], cell["rank_ic"]
            table.add_row(name if i == 0 else "", str(counts["sessions"]) if i == 0 else "",
                          _cell(counts["share"], True) if i == 0 else "", f"{h}d",
                          _cell(ex["mean"], True), _cell(ex["t_stat"]), _cell(cell["hit_rate"]),
                          _cell(ic["mean"]), _cell(ic["t_stat"]))
    out.print(table)


validate_command.__signature__ = inspect.Signature(_options())  # type: ignore[attr-defined]
validate_command.__doc__ = f"{validate_command.__doc__}\n\n{' '.join(HELP_CONVENTIONS.split())}"
