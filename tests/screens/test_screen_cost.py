"""The cost model (technic_v4/screens/cost.py) and the budget it is held to.

The budget refuses the cost bomb and nested 1,260-bar windows over a 5,000-symbol universe,
naming the costliest part and the budget, before a price is read; it lets every preset and
every expression in the README and the docs pages through a scan with at least 10x room,
and their validations over 5,000 symbols x 1,265 sessions too. Wrapping an expression never
makes it cheaper.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from screen_reference import SCHEMA as REF_SCHEMA
from screen_reference import number_expr, render
from typer.testing import CliRunner

from technic_v4.cli import app
from technic_v4.data.demo import DemoSpec, build_demo_store
from technic_v4.data.reader import StoreReader
from technic_v4.errors import ConfigError
from technic_v4.scan import ScanConfig, run_scan
from technic_v4.scan.expressions import compile_expressions
from technic_v4.screens import ScreenError, compile_screen
from technic_v4.screens.cost import Budget
from technic_v4.screens.presets import PRESETS
from technic_v4.settings import Settings
from technic_v4.validate.replay import _at_once

BOMB = "sma(sma(sma(sma(Close,1260),1260),1260),1260) > 0"
NESTED = ["sma(sma(Close, 1260), 1260) > 0",
          "sma(sma(Close, 1260), 1260) > sma(sma(High, 1260), 1260)",
          "sma(highest(Close, 1260), 1260) > sma(Close, 20)"]
UNIVERSE, SESSIONS = 5_000, 1_265  # the demo market: 5,000 symbols, five years
ROOT = Path(__file__).parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BUDGET = Budget()  # the documented defaults (test_settings_default_to_the_budget)


def readme_expressions() -> list[tuple[str, str]]:
    """(field, text) of every where / rank written in the README and the docs pages: CLI
    options, JSON bodies, the preset table."""
    text = "\n".join(path.read_text() for path in DOCS)
    found = re.findall(r"--(where|rank) (?:\"([^\"]+)\"|'([^']+)')", text)
    out = [(f, a or b) for f, a, b in found]
    out += re.findall(r"\"(where|rank)\": \"((?:[^\"\\]|\\.)+)\"", text)
    out += [("where", w) for w in re.findall(r"^\| `[a-z0-9-]+` \| `([^`]+)` \|", text, re.M)]
    return [(f, t.replace('\\"', '"')) for f, t in out]


def scan_cost(field: str, text: str) -> tuple[float, float]:
    """Reads and MB of `text` over the universe (intraday prefixes allowed: the docs show
    intraday screens too, which the same budget bounds)."""
    screen = compile_expressions(text if field == "where" else None,
                                 text if field == "rank" else None, intraday=True)
    cost = (screen.where or screen.rank).cost  # type: ignore[union-attr]
    reads, size = cost.total(UNIVERSE)
    return reads, size / 2**20


def test_settings_default_to_the_budget():
    fields = Settings.model_fields
    assert (fields["screen_max_reads"].default, fields["screen_max_memory_mb"].default) == (
        BUDGET.max_reads, BUDGET.max_memory_mb)


def test_readme_has_expressions_to_check():
    found = readme_expressions()
    assert len(found) >= 15, found
    assert ("where", "Close > highest(High, 252)[1] and rel_volume_50 > 1.5") in found


@pytest.mark.parametrize("field,text", readme_expressions() + [
    (field, str(p.definition[field])) for p in PRESETS.values()
    for field in ("where", "rank") if field in p.definition])
def test_presets_and_readme_expressions_pass_with_room(field, text):
    reads, mb = scan_cost(field, text)
    assert reads * 10 <= BUDGET.max_reads and mb * 10 <= BUDGET.max_memory_mb, (reads, mb)
    exprs = compile_expressions(text if field == "where" else None,
                                text if field == "rank" else None, intraday=True)
    exprs.check_cost(BUDGET, UNIVERSE, SESSIONS, _at_once(exprs))  # their validation too


@pytest.mark.parametrize("text", [BOMB, *NESTED])
def test_nested_long_windows_are_refused(text):
    with pytest.raises(ConfigError) as caught:
        compile_expressions(text, None).check_cost(BUDGET, UNIVERSE)
    assert caught.value.field == "where"
    assert caught.value.details["reads"] > BUDGET.max_reads or (
        caught.value.details["memory_mb"] > BUDGET.max_memory_mb)


def test_the_bomb_names_its_costliest_part_and_the_budget():
    with pytest.raises(ConfigError) as caught:
        compile_expressions(None, "sma(sma(sma(sma(Close,1260),1260),1260),1260)").check_cost(
            BUDGET, UNIVERSE)
    err = caught.value
    assert err.field == "rank"
    assert (err.details["line"], err.details["column"]) == (1, 13)  # the innermost sma
    assert err.details["costliest"] == "sma(Close, 1260)"
    assert "3,778 bars" in str(err) and "5,000 symbols" in str(err)
    assert f"budget {BUDGET.max_reads / 1e9:.1f} billion" in str(err)


def test_sessions_multiply_the_cost():
    cheap = compile_expressions("RSI < 30 and Close > SMA200", None)
    cheap.check_cost(BUDGET, UNIVERSE, SESSIONS, at_once=True)  # a whole validation passes
    window = compile_expressions("Close > highest(High, 252)[1]", None)
    window.check_cost(BUDGET, UNIVERSE, 1)
    with pytest.raises(ConfigError, match="2,000 sessions"):
        window.check_cost(BUDGET, UNIVERSE * 4, 2_000)


def test_memory_alone_can_refuse():
    wide = " and ".join(f"{c} > ema({c}, 1260)" for c in ("Close", "High", "Low", "Open"))
    exprs = compile_expressions(wide, None)
    assert exprs.where is not None
    assert exprs.where.cost.total(UNIVERSE)[0] < BUDGET.max_reads
    with pytest.raises(ConfigError, match="too much memory") as caught:
        exprs.check_cost(BUDGET, UNIVERSE)
    assert caught.value.details["max_memory_mb"] == BUDGET.max_memory_mb


def test_a_bigger_budget_lets_it_through():
    compile_expressions(NESTED[0], None).check_cost(Budget(1e11, 1e5), UNIVERSE)


WRAPS = [lambda t, n: f"sma({t}, {n})", lambda t, n: f"ema({t}, {n})",
         lambda t, n: f"highest({t}, {n})", lambda t, n: f"change({t}, {n})",
         lambda t, n: f"({t})[{n}]", lambda t, n: f"({t}) + a", lambda t, n: f"abs({t})",
         lambda t, n: f"pct_rank({t})"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(number_expr(3, "D"), st.sampled_from(WRAPS), st.integers(1, 1260))
def test_wrapping_never_lowers_the_cost(expr, wrap, n):
    inner = compile_screen(render(expr), REF_SCHEMA, "number").cost
    try:
        outer = compile_screen(wrap(render(expr), n), REF_SCHEMA, "number").cost
    except ScreenError as exc:  # past MAX_LOOKBACK: refused before any cost question
        assume("history" not in exc.message)
        raise
    assert outer.work >= inner.work and outer.bytes >= inner.bytes


@pytest.fixture(scope="module")
def wide_store(tmp_path_factory) -> Path:
    """5,000 symbols (the demo universe) over six months: the cost check needs the universe,
    not the history."""
    root = tmp_path_factory.mktemp("wide")
    build_demo_store(root, DemoSpec(n_symbols=UNIVERSE, start="2026-04-01"))
    return root


def test_run_scan_refuses_before_reading_a_price(wide_store):
    reader = StoreReader(wide_store)
    with pytest.raises(ConfigError, match="too costly") as caught:
        run_scan(ScanConfig(where=BOMB), loader=reader)
    assert caught.value.details["symbols"] == UNIVERSE
    assert not reader._panels  # no window of prices was loaded
    # fewer symbols: within the budget
    symbols = reader.snapshot().universe["symbol"].iloc[:40].tolist()
    frame, status = run_scan(ScanConfig(where=NESTED[0], symbols=symbols), loader=reader)
    assert status.attempted == 40


@pytest.mark.parametrize("args", [
    ["scan", "--where", BOMB],
    ["scan", "--rank", "sma(sma(sma(sma(Close,1260),1260),1260),1260)"],
    ["validate", "--where", BOMB],
    ["screen", "save", "bomb", "--where", BOMB],
])
def test_cli_refuses_with_one_error_line(wide_store, monkeypatch, args):
    for name in ("TECHNIC_SCREEN_MAX_READS", "TECHNIC_SCREEN_MAX_MEMORY_MB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TECHNIC_STATE_DIR", str(wide_store))
    result = CliRunner().invoke(app, [*args, "--data-dir", str(wide_store)])
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    field = "rank" if "--rank" in args else "where"
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}: too costly")
    assert "sma(Close, 1260)" in lines[0] and "budget 6.0 billion" in lines[0]


def test_cli_budget_from_the_environment(wide_store, monkeypatch):
    monkeypatch.setenv("TECHNIC_SCREEN_MAX_READS", "1e12")
    monkeypatch.setenv("TECHNIC_SCREEN_MAX_MEMORY_MB", "100000")
    monkeypatch.setenv("TECHNIC_STATE_DIR", str(wide_store))
    result = CliRunner().invoke(app, ["screen", "save", "big", "--where", NESTED[0],
                                      "--data-dir", str(wide_store)])
    assert result.exit_code == 0, result.stderr
    monkeypatch.setenv("TECHNIC_SCREEN_MAX_READS", "-1")
    result = CliRunner().invoke(app, ["scan", "--where", NESTED[0], "--data-dir",
                                      str(wide_store)])
    assert result.exit_code == 2 and "screen_max_reads" in result.stderr
