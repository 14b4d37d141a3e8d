"""`technic data universe`: the index lists that ship (pytickersymbols), offline.

    technic data universe                      the lists: id, name, calendar, members
    technic data universe sp500 [dow ...]      their members (table; --format csv|json)
    technic data universe sp500 --add my.csv --out universe.csv

`--out` writes a universe file `technic data ingest --universe` reads (CSV, or Parquet by
the extension): Symbol, Name, Sector (GICS), Industry, Indexes, YahooSymbol, Calendar and
IndexesSource (where each row's memberships come from; ingest records it for `data info`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from technic_v4.cli.options import check_format, console, err, fail, write_result

FORMATS = ("table", "csv", "json")


def data_universe(
    lists: Annotated[list[str] | None, typer.Argument(
        help="Index lists (sp500 nasdaq100 dow ...); none: list the lists.")] = None,
    add: Annotated[Path | None, typer.Option(
        help="Your own universe file (symbol, sector[, name, industry, indexes]) merged in: "
        "its symbols added, its fields preferred, its index ids joined.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, csv or json.")] = "table",
    out: Annotated[Path | None, typer.Option(
        help="Write a universe file for `technic data ingest --universe` (.csv or "
        ".parquet) instead of printing.")] = None,
) -> None:
    """List index members with GICS sectors (offline, from the pytickersymbols package)."""
    import orjson

    from technic_v4.data.indexes import INDEXES, index_universe, merge_universe, universe_file
    from technic_v4.data.ingest import IngestError, _read_universe_file
    from technic_v4.errors import ConfigError

    check_format(fmt, FORMATS, None)
    if not lists:
        if add is not None or out is not None:
            fail("name at least one index list (`technic data universe` lists them)")
        _print_lists(fmt, INDEXES)
        return
    if out is not None and not out.name.lower().endswith((".csv", ".parquet")):
        fail(f"--out {out.name!r}: a universe file is .csv or .parquet")
    try:
        table = universe_file(index_universe(lists))
        if add is not None:
            table = merge_universe(table, _read_universe_file(add), add.name)
    except ConfigError as exc:
        fail(exc.message)
    except (IngestError, OSError, ValueError) as exc:
        fail(f"--add {add}: {exc}")
    calendars = sorted(set(table["Calendar"]))
    err.print(f"{len(table)} symbols in {', '.join(dict.fromkeys(lists))}"
              f"{' + ' + add.name if add else ''}: " + ", ".join(
                  f"{s} {n}" for s, n in table["Sector"].value_counts().items()),
              highlight=False)
    if len(calendars) > 1:
        err.print(f"note: the symbols trade on {len(calendars)} calendars ({', '.join(calendars)});"
                  " a store is on one: ingest each venue's bars into its own store",
                  highlight=False)
    if out is not None:
        try:
            if out.name.lower().endswith(".parquet"):
                table.to_parquet(out, index=False)
            else:
                table.to_csv(out, index=False)
        except OSError as exc:
            fail(f"cannot write {out}: {exc.strerror or exc}")
        err.print(f"wrote {out}; next: technic data ingest BARS --universe {out} --calendar "
                  f"{calendars[0]}", highlight=False)
    elif fmt == "csv":
        write_result(table.to_csv(index=False).encode(), None)
    elif fmt == "json":
        write_result(orjson.dumps(table.to_dict("records"), option=orjson.OPT_INDENT_2), None)
    else:
        shown = Table("Symbol", "Name", "Sector", "Industry", "Indexes", "Yahoo", "Calendar")
        for r in table.itertuples(index=False):
            shown.add_row(*(escape(str(v)) for v in (r.Symbol, r.Name, r.Sector, r.Industry,
                                                     r.Indexes, r.YahooSymbol, r.Calendar)))
        console().print(shown)


def _print_lists(fmt: str, indexes: dict) -> None:
    import orjson

    from technic_v4.data.indexes import describe_source, index_universe, membership_source

    rows = [{"id": i.id, "name": i.name, "calendar": i.calendar,
             "members": len(index_universe([i.id]))} for i in indexes.values()]
    if fmt == "json":
        write_result(orjson.dumps(rows, option=orjson.OPT_INDENT_2), None)
    elif fmt == "csv":
        lines = ["id,name,calendar,members",
                 *(f"{r['id']},\"{r['name']}\",{r['calendar']},{r['members']}" for r in rows)]
        write_result(("\n".join(lines) + "\n").encode(), None)
    else:
        table = Table("id", "name", "calendar", "members",
                      title=f"index lists from {describe_source(membership_source())}")
        for r in rows:
            table.add_row(r["id"], escape(r["name"]), r["calendar"], str(r["members"]))
        console().print(table)
