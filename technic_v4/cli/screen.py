"""`technic screen`: saved screens and presets from the terminal.

    technic screen list [--json]                 presets and saved screens, latest versions
    technic screen show NAME [--version N]       the definition as JSON, with every version
    technic screen save NAME [scan options]      e.g. --where "RSI < 30" --rank "mom_63" -s Energy
    technic screen delete NAME
    technic screen run NAME [scan options]       = technic scan --screen NAME [scan options]
    technic screen columns                       what `where` / `rank` may read and call

The commands are built from the `technic scan` command itself (`screen_app(scan)`, called by
technic_v4/cli/main.py): `save` takes its filter options (one per ScanConfig field), `run`
all of them, so the three never disagree. Screens live in `<data dir>/technic.sqlite` for a
local data dir (technic_v4/screens/saved.py; TECHNIC_STATE_DIR elsewhere). Errors: one
`error:` line on stderr, exit status 2.
"""

from __future__ import annotations

import inspect
import json
import textwrap
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from technic_v4.cli.options import data_root, err, fail, screen_budget, settings
from technic_v4.cli.scan import config_fields
from technic_v4.data.store_fs import StoreError
from technic_v4.errors import ConfigError
from technic_v4.scan.config import options
from technic_v4.scan.expressions import column_catalogue
from technic_v4.screens import help_text

Name = Annotated[str, typer.Argument(metavar="NAME", show_default=False,
                                     help="Screen name: a-z, 0-9, '-', '_' (up to 64).")]
DataDir = Annotated[str | None, typer.Option(
    "--data-dir", help="Data directory or object-store URI whose screens to use (default: "
    "$TECHNIC_DATA_DIR or the per-user data folder).")]


def columns_text(width: int = 96) -> str:
    """The columns an expression may read, compact: numbers with history, numbers at the
    last bar only, text, rank only; then the operators and functions."""
    cat = column_catalogue()
    groups = [
        ("Numbers (lags x[n], windows, weekly W.x)", [c for c in cat if c["history"]]),
        ("Numbers at the last bar only", [c for c in cat if c["kind"] == "number"
                                          and not c["history"] and c["where"]]),
        ("Text (==, !=, in)", [c for c in cat if c["kind"] == "text"]),
        ("In rank only", [c for c in cat if not c["where"]]),
    ]
    lines = []
    for title, cols in groups:
        lines.append(f"{title}:")
        lines += textwrap.wrap(" ".join(str(c["name"]) for c in cols), width,
                               initial_indent="  ", subsequent_indent="  ")
    return "\n".join(lines) + "\n" + help_text()



def _store(data_dir: str | None) -> Any:
    """The saved screens of the data dir (--data-dir checked, else the default)."""
    from technic_v4.screens.saved import ScreenStore

    root = data_root(data_dir)
    try:
        return ScreenStore.for_data_dir(root, settings().state_dir)
    except StoreError as exc:
        fail(str(exc))


def screen_app(scan: Callable[..., None]) -> typer.Typer:
    """The `technic screen` commands over the `technic scan` command `scan` (whose signature
    holds one option per ScanConfig field and the output options)."""
    app = typer.Typer(
        help="Saved screens and presets: named, versioned scan definitions (filters, --where, "
             "--rank, ...). `technic scan --screen NAME` runs one; options given with it "
             "override the screen's. What --where and --rank may use:",
        epilog="\b\n" + escape(columns_text()), no_args_is_help=True)  # \b: lines kept
    params = inspect.signature(scan).parameters
    fields = [p for name, p in params.items() if name in options() and name != "screen"]
    outputs = [p for name, p in params.items() if name not in options()]

    @app.command("list")
    def list_(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
              data_dir: DataDir = None) -> None:
        """Presets and saved screens (latest versions)."""
        try:
            screens = _store(data_dir).list()
        except (ConfigError, StoreError) as exc:
            fail(str(exc))
        if as_json:
            print(json.dumps([s.to_dict() for s in screens], indent=2))
            return
        table = Table(header_style="bold")
        for col in ("name", "version", "kind", "where", "rank / sort", "saved"):
            table.add_column(col)
        for s in screens:
            d = s.definition
            order = d.get("rank") or d.get("sort_by", "TechRating")
            order += " ↑" if d.get("ascending") else ""
            table.add_row(s.name, str(s.version), "preset" if s.preset else "saved",
                          escape(str(d.get("where", ""))), escape(order),
                          s.created or "", end_section=False)
        Console(width=max(Console().width, 140)).print(table)

    @app.command("show")
    def show(name: Name, version: Annotated[int | None, typer.Option(
            help="This version (default: the latest).")] = None,
            data_dir: DataDir = None) -> None:
        """A screen's definition, version and versions, as JSON."""
        store = _store(data_dir)
        try:
            screen = store.get(name, version)
            versions = store.versions(name)
        except (ConfigError, StoreError) as exc:
            fail(str(exc))
        print(json.dumps({**screen.to_dict(), "versions": [
            {"version": v.version, "created": v.created} for v in versions]}, indent=2))

    def save(name: str, data_dir: str | None = None, **kw: Any) -> None:
        """Save the options given as the screen's next version (identical: unchanged); the
        screen is scanned once first, so one that cannot be evaluated is not saved."""
        from technic_v4.data.reader import StoreReader
        from technic_v4.scan import ScanConfig, run_scan
        from technic_v4.screens.trial import evaluated_once

        config = ScanConfig(**config_fields(kw))
        try:
            config.validate()
            store = _store(data_dir)
            reader = StoreReader(data_root(data_dir))
            with evaluated_once("definition"):  # the cost is checked before any price is read
                run_scan(config, loader=reader, screens=store, budget=screen_budget(),
                         settings=settings())
            version, new = store.put(name, config)
        except (ConfigError, StoreError) as exc:
            fail(str(exc))
        err.print(f"saved {name} version {version}" if new else
                  f"{name} unchanged: version {version} is identical", highlight=False)

    data_param = params["data_dir"]
    save.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Name),
        *fields, data_param])
    app.command("save")(save)

    @app.command("delete")
    def delete(name: Name, data_dir: DataDir = None) -> None:
        """Delete a saved screen, every version of it (presets cannot be deleted)."""
        try:
            _store(data_dir).delete(name)
        except (ConfigError, StoreError) as exc:
            fail(str(exc))
        err.print(f"deleted {name}", highlight=False)

    def run(name: str, **kw: Any) -> None:
        """Run a screen: `technic scan --screen NAME`, taking every `technic scan` option."""
        scan(screen=name, **kw)

    run.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Name),
        *fields, *outputs])
    app.command("run")(run)

    @app.command("columns")
    def columns() -> None:
        """Every column --where / --rank may read, the operators and the functions."""
        print(columns_text())

    return app
