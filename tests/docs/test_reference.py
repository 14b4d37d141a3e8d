"""The generated reference pages (docs/gen_reference.py) name every setting, every HTTP
route and every CLI command, and the site's navigation lists every page."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import click
import typer.main
import yaml

from deployments.api.main import create_app
from technic_v4.cli import app as cli_app
from technic_v4.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "docs" / "gen_reference.py")
assert _spec and _spec.loader
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)


def test_the_configuration_page_lists_every_setting_with_its_meaning():
    page = gen.configuration_page()
    rows = dict(re.findall(r"^\| `([A-Z0-9_]+)` \| .* \| (.*) \|$", page, re.M))
    names = {gen.env_name(n) for n in Settings.model_fields}
    assert names == set(rows), sorted(names ^ set(rows))
    assert all(meaning.strip() for meaning in rows.values()), rows
    assert "`REDIS_URL`" in page and "`TECHNIC_DATA_DIR`" in page


def test_the_http_page_lists_every_route_of_the_app(warm):
    """Every operation of the app the service runs (a warm backend), not only of the stand-in
    the generator builds it with."""
    spec = create_app(warm, api_keys=()).openapi()
    page = gen.http_page()
    ops = {(m.upper(), p) for p, o in spec["paths"].items() for m in o}
    shown = set(re.findall(r"^### `(GET|POST|PUT|DELETE|PATCH) ([^`]+)`", page, re.M))
    assert ops == shown, sorted(ops ^ shown)
    assert any(p.startswith("/v1/") for _, p in ops)


def test_the_cli_page_lists_every_command():
    root = typer.main.get_command(cli_app)
    paths = []

    def walk(cmd: click.Command, ctx: click.Context) -> None:
        for name in getattr(cmd, "list_commands", lambda _: [])(ctx):
            sub = cmd.get_command(ctx, name)  # type: ignore[attr-defined]
            sub_ctx = click.Context(sub, info_name=name, parent=ctx)
            paths.append(sub_ctx.command_path)
            walk(sub, sub_ctx)

    walk(root, click.Context(root, info_name="technic"))
    page = gen.cli_page()
    shown = set(re.findall(r"^#+ `(technic[^`]*)`$", page, re.M))
    assert len(paths) >= 20 and set(paths) == shown, sorted(set(paths) ^ shown)


def test_the_navigation_lists_every_page():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def leaves(items: list) -> list[str]:
        out = []
        for item in items:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            out += leaves(value) if isinstance(value, list) else [value]
        return out

    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert set(leaves(config["nav"])) == pages | set(gen.PAGES)
