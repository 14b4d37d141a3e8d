"""`technic screen ...` and `technic scan --screen NAME` (typer's CliRunner, in process): a
saved screen gives the same rows as its fields inline, options on top override it, errors are
one `error:` line with exit status 2, and the help lists what expressions may use."""

from __future__ import annotations

import io
import json

import click
import pandas as pd
import pytest
import typer
from serve_support import demo_store, tiny_models
from typer.testing import CliRunner

from technic_v4.cli import app

RUNNER = CliRunner()
FIELDS = ["--where", "RSI > 55 and Close > SMA50", "--rank", "mom_63 / ATR_pct",
          "--max-symbols", "6", "-s", "tech", "-s", "Health Care"]


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("screen-cli")
    return demo_store(root / "data"), tiny_models(root / "models")


@pytest.fixture()
def technic(dirs, monkeypatch):
    monkeypatch.setenv("TECHNIC_MODELS_DIR", str(dirs[1]))
    monkeypatch.delenv("TECHNIC_STATE_DIR", raising=False)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str, code: int = 0):  # type: ignore[no-untyped-def]
        result = RUNNER.invoke(app, [*args, "--data-dir", str(dirs[0])])
        assert result.exit_code == code, (args, result.stdout, result.stderr, result.exception)
        return result
    return run


def _csv(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text))


def test_save_list_show_run_delete(technic):
    saved = technic("screen", "save", "cli-test", *FIELDS)
    assert "saved cli-test version 1" in saved.stderr
    assert "unchanged: version 1" in technic("screen", "save", "cli-test", *FIELDS).stderr
    listed = json.loads(technic("screen", "list", "--json").stdout)
    kinds = {s["name"]: s["preset"] for s in listed}
    assert kinds["cli-test"] is False and kinds["golden-cross"] is True
    assert "golden-cross" in technic("screen", "list").stdout
    shown = json.loads(technic("screen", "show", "cli-test").stdout)
    assert shown["definition"] == {
        "where": "RSI > 55 and Close > SMA50", "rank": "mom_63 / ATR_pct", "max_symbols": 6,
        "sectors": ["Health Care", "Information Technology"]}
    assert [v["version"] for v in shown["versions"]] == [1]

    by_run = technic("screen", "run", "cli-test", "--format", "csv")
    by_scan = technic("scan", "--screen", "cli-test", "--format", "csv")
    inline = technic("scan", *FIELDS, "--format", "csv")
    assert by_run.stdout == by_scan.stdout == inline.stdout
    assert len(_csv(inline.stdout)) > 0
    assert "screen: cli-test version 1" in by_run.stderr

    body = json.loads(technic("screen", "run", "cli-test", "--format", "json").stdout)
    assert body["meta"]["screen"] == {"name": "cli-test", "version": 1, "preset": False}

    two = technic("screen", "run", "cli-test", "--max-symbols", "2", "--format", "csv")
    inline2 = technic("scan", *FIELDS[:-6], "--max-symbols", "2", "-s", "tech", "-s",
                      "Health Care", "--format", "csv")
    assert two.stdout == inline2.stdout and len(_csv(two.stdout)) == 2

    assert "version 2" in technic("screen", "save", "cli-test", "--where", "RSI < 45").stderr
    assert json.loads(technic("screen", "show", "cli-test", "--version", "1").stdout)[
        "definition"]["max_symbols"] == 6
    assert "deleted cli-test" in technic("screen", "delete", "cli-test").stderr
    gone = technic("screen", "run", "cli-test", code=2)
    assert gone.stderr.startswith("error: unknown screen 'cli-test'")


@pytest.mark.parametrize("args, message", [
    (("screen", "save", "Bad", "--where", "RSI < 3"), "screen name 'Bad' is not valid"),
    (("screen", "save", "x", "--where", "RSI <"), "where: unexpected end of the screen at 1:6"),
    (("screen", "save", "golden-cross", "--where", "RSI < 3"), "is a preset (read-only)"),
    (("screen", "delete", "squeeze"), "cannot be deleted"),
    (("screen", "delete", "never-saved"), "unknown screen 'never-saved'"),
    (("screen", "show", "never-saved"), "unknown screen 'never-saved'"),
    (("screen", "show", "golden-cross", "--version", "3"), "has only version 1"),
    (("screen", "run", "never-saved"), "valid: oversold-uptrend, breakout-52w"),
    (("scan", "--screen", "never-saved"), "unknown screen 'never-saved'"),
])
def test_errors_are_one_line_exit_2(technic, args, message):
    result = technic(*args, code=2)
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: "), result.stderr
    if args[:2] in (("screen", "run"), ("scan", "--screen")):  # `technic scan`'s own error
        lines = [" ".join(lines)]  # line, which rich wraps at the terminal width
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_columns_and_help_list_what_expressions_use(technic):
    columns = RUNNER.invoke(app, ["screen", "columns"]).stdout
    for text in (columns, RUNNER.invoke(app, ["screen", "--help"]).stdout):
        for word in ("RSI", "SMA200", "rel_volume_50", "W.name", "x[n]", "crosses_above",
                     "pct_rank", "Alpha5d", "AlphaScore", "Sector", "Operators:",
                     "Functions:", "Numbers at the last bar only:"):
            assert word in text, word
    weekly = columns.split("Numbers at the last bar only:")
    assert "RSI" in weekly[0] and "RS_rating" in weekly[1] and "RS_rating" not in weekly[0]


def test_save_and_run_take_the_scan_options():
    """`screen save` offers exactly scan's field options (same flags), `screen run` all of
    scan's options; neither offers --screen."""
    root = typer.main.get_command(app)
    ctx = click.Context(root)
    scan, group = root.get_command(ctx, "scan"), root.get_command(ctx, "screen")  # built lazily
    save, run = group.commands["save"], group.commands["run"]

    def flags(cmd) -> dict[str, tuple[str, ...]]:  # type: ignore[no-untyped-def]
        return {p.name: tuple(p.opts) for p in cmd.params if p.param_type_name == "option"}

    outputs = {"fmt", "out", "top", "show_rejections", "at"}  # at: when, not what, to scan
    scan_flags = flags(scan)
    assert "screen" in scan_flags
    assert flags(save) == {k: v for k, v in scan_flags.items() if k not in outputs | {"screen"}}
    assert flags(run) == {k: v for k, v in scan_flags.items() if k != "screen"}
