"""`technic explain SYMBOL`: why a symbol has its TechRating, Signal and alpha forecasts.

    technic explain SYMBOL [--as-of DATE] [--format table|json] [--data-dir DIR] [--models-dir DIR]

`table` prints the breakdown of `technic_v4.scan.explain` with rich tables: each sub-score,
its weight and the rules that fired with their inputs; the weighted sum, the risk factor,
TechRating and the Signal rule; each alpha model's per-feature contributions as bars. `json`
prints the same dict as GET /v1/symbols/{symbol}/explain (NaN as null). The breakdown goes to
stdout; an error is one `error:` line on stderr and exit status 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from technic_v4.cli.options import check_format, data_root, fail, settings, write_result

FORMATS = ("table", "json")
BAR_WIDTH = 24


def explain_command(
    symbol: Annotated[str, typer.Argument(help="Ticker, e.g. AAPL or BRK.B (any case).")],
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Explain as of this session (the last on or before it; YYYY-MM-DD). "
        "Default: the latest.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    data_dir: Annotated[str | None, typer.Option(
        "--data-dir", help="Data directory or object-store URI (default: $TECHNIC_DATA_DIR or "
        "the per-user data folder).")] = None,
    models_dir: Annotated[Path | None, typer.Option(
        "--models-dir", help="Models directory (default: $TECHNIC_MODELS_DIR or the repo's "
        "models/).")] = None,
) -> None:
    """Why this rating: sub-scores and their rules, risk factor, Signal, alpha contributions."""
    from technic_v4.alpha.inference import ModelSet
    from technic_v4.data import store
    from technic_v4.data.reader import StoreReader
    from technic_v4.errors import ConfigError, StaleDataError, UnknownSymbolError
    from technic_v4.scan.explain import explain

    check_format(fmt, FORMATS, None)
    root = data_root(data_dir)
    try:
        reader = StoreReader(root)
        data = explain(reader, ModelSet(models_dir or settings().models_root()), symbol,
                       as_of)
    except (ConfigError, UnknownSymbolError, StaleDataError, store.StoreError) as exc:
        fail(str(exc))
    if fmt == "json":
        write_result(orjson.dumps(data, option=orjson.OPT_INDENT_2
                                  | orjson.OPT_SERIALIZE_NUMPY) + b"\n", None)
        return
    print_explain(data)


def _num(x: Any, spec: str = ".4g") -> str:
    return "—" if x is None or x != x else format(x, spec)


def print_explain(data: dict[str, Any], out: Console | None = None) -> None:
    """The table format of `technic explain` (module docstring)."""
    if out is None:
        out = Console()
        if not out.is_terminal:  # piped or captured: don't squeeze the tables into 80 columns
            out = Console(width=150)
    meta, rating = data["meta"], data["tech_rating"]
    out.print(f"[bold]{escape(data['symbol'])}[/] {escape(data['name'])} · "
              f"{escape(data['sector'])} · {escape(data['industry'])}", highlight=False)
    out.print(f"as of {meta['as_of']} (last bar {data['last_bar'] or 'none'}, {data['bars']} "
              f"bars) · close {_num(data['close'], ',.2f')} · source: {escape(meta['source'])} · "
              f"data_version {meta['data_version']} · scoring {meta['scoring_version']}",
              highlight=False)
    scan = data["scan"]
    out.print("default scan: kept" if scan["kept"] else
              f"default scan: rejected ({escape(str(scan['reason']))}: "
              f"{escape(str(scan['detail']))})", highlight=False)
    if data["incomplete"]:
        out.print(f"too few bars for: {', '.join(data['incomplete'])} (their rules count 0)",
                  highlight=False)

    table = Table(title="TechRating sub-scores", header_style="bold", show_lines=True)
    for col, justify in (("sub-score", "left"), ("weight", "right"), ("score", "right"),
                         ("weighted", "right"), ("rules (points)", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for sub in rating["sub_scores"]:
        rules = "\n".join(escape(r["text"]) for r in sub["rules"])
        how = {"mean": "mean of", "product": "product of", "single": ""}[sub["combine"]]
        table.add_row(sub["name"], f"{sub['weight']:g}", f"{sub['score']:+.4f}",
                      f"{sub['weighted']:+.4f}", (f"[dim]{how}[/]\n" if how else "") + rules)
    out.print(table)
    risk, sig = rating["risk_factor"], rating["signal"]
    raw = rating["weighted_sum"] / rating["weight_total"]
    out.print(f"weighted sum {rating['weighted_sum']:+.4f} / total weight "
              f"{rating['weight_total']:g} = {raw:+.4f}\n"
              f"risk factor  {escape(risk['text'])}\n"
              f"[bold]TechRating[/]   100 * {raw:+.4f} * {risk['value']:.4f} = "
              f"[bold]{rating['value']:.2f}[/]\n"
              f"[bold]Signal[/]       {sig['value']}: {escape(sig['rule'])}", highlight=False)

    alpha = data["alpha"]
    if not alpha["available"] and not any(m["available"] for m in alpha["models"]):
        out.print(f"alpha: {escape(str(alpha['reason']))}", highlight=False)
        return
    for model in alpha["models"]:
        if not model["available"]:
            out.print(f"{model['column']}: unavailable: {escape(str(model['reason']))}",
                      highlight=False)
            continue
        out.print(f"[bold]{model['column']}[/] = {model['forecast']:+.6f} ({model['id']}@"
                  f"{model['version']}): bias {model['bias']:+.6f} + the contributions",
                  highlight=False)
        out.print(_contributions(model))
    out.print(f"[dim]{escape(alpha['alpha_score'])}[/]", highlight=False)


def _contributions(model: dict[str, Any]) -> Table:
    items = model["contributions"]
    scale = max((abs(c["contribution"]) for c in items), default=0.0) or 1.0
    table = Table(header_style="bold")
    for col, justify in (("feature", "left"), ("value", "right"), ("contribution", "right"),
                         ("", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for c in sorted(items, key=lambda c: -abs(c["contribution"])):
        n = round(BAR_WIDTH * abs(c["contribution"]) / scale)
        bar = (f"[green]{'█' * n}[/]" if c["contribution"] > 0 else f"[red]{'█' * n}[/]")
        table.add_row(c["feature"], _num(c["value"]), f"{c['contribution']:+.6f}", bar)
    table.add_row("sum + bias", "", f"{model['sum']:+.6f}", "")
    return table
