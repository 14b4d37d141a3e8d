"""`technic regimes`: the market regime of every session in the store (technic_v4/regimes.py).

    technic regimes [--benchmark SYMBOL] [--start D --end D] [--format table|json|csv --out F]

`table` (default) prints each regime's sessions and share and the latest runs; `json` the
whole timeline (GET /v1/regimes answers the same); `csv` one row per session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from technic_v4.cli.options import DATA_DIR_OPTION, check_format, data_root, fail, write_result
from technic_v4.data import store
from technic_v4.data.reader import StoreReader
from technic_v4.data.universe import validate_symbol
from technic_v4.errors import ConfigError, StaleDataError

FORMATS = ("table", "json", "csv")
SPANS_SHOWN = 12


def regimes_command(
    benchmark: Annotated[str | None, typer.Option(
        help="A store symbol as the benchmark (default: the equal-weighted universe).")] = None,
    start: Annotated[str | None, typer.Option(help="First session (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option(help="Last session (YYYY-MM-DD).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    data_dir: Annotated[str | None, DATA_DIR_OPTION] = None,
) -> None:
    """The market regime of every session: trend x volatility, and the numbers behind it."""
    from technic_v4.regimes import regime_timeline

    check_format(fmt, FORMATS, out)
    try:
        for name, value in (("start", start), ("end", end)):
            if value is not None and pd.isna(pd.to_datetime(value, errors="coerce")):
                raise ConfigError(name, f"{name} {value!r} is not a date: use YYYY-MM-DD")
        reader = StoreReader(data_root(data_dir))
        if benchmark is not None:
            benchmark = validate_symbol(benchmark)
            if benchmark not in reader.snapshot().index:
                raise ConfigError("benchmark", f"benchmark {benchmark!r} is not a symbol in "
                                  "the store; omit it for the equal-weighted universe")
        timeline = regime_timeline(reader, benchmark, start, end)
    except (ConfigError, StaleDataError, store.StoreError) as exc:
        fail(str(exc))
    if fmt == "json":
        write_result(orjson.dumps(timeline, option=orjson.OPT_INDENT_2), out)
    elif fmt == "csv":
        write_result(pd.DataFrame(timeline["columns"]).to_csv(index=False).encode(), out)
    else:
        _print(timeline)


def _print(timeline: dict[str, Any]) -> None:
    out = Console()
    if not out.is_terminal:
        out = Console(width=120)
    out.print(f"market regimes {timeline['first_session']}..{timeline['last_session']}, "
              f"benchmark {timeline['benchmark']}, data {timeline['data_version']}, rule "
              f"v{timeline['version']} (docs/guides/regimes.md)", highlight=False)
    table = Table(header_style="bold")
    for col in ("regime", "sessions", "share"):
        table.add_column(col, justify="right" if col != "regime" else "left")
    for name, cell in timeline["shares"].items():
        share = cell["share"]
        table.add_row(name, str(cell["sessions"]), "—" if share is None else f"{share:.1%}")
    out.print(table)
    spans = Table(header_style="bold", title=f"the last {SPANS_SHOWN} runs")
    for col in ("regime", "start", "end", "sessions"):
        spans.add_column(col)
    for span in timeline["spans"][-SPANS_SHOWN:]:
        spans.add_row(*(str(span[k]) for k in ("regime", "start", "end", "sessions")))
    out.print(spans)
