"""Validation over blocks of sessions equals one pass over the whole history; a cancel stops it
between blocks and between chunks of rows.

- Blocks of 1, 7 and 64 sessions (evaluated in pieces of 3 sessions) give the one-block
  replay's masks exactly and its ranks and report figures to 1e-12, for filters, lags,
  windows, weekly bars and cross-sectional functions, on a market with a symbol suspended for
  most of a year (its warm-up reaches back over the gap), one delisted inside the replay and
  one halted inside it (their forward returns reach past a block's end). The ranking
  statistics computed over pieces of sessions equal one piece.
- Each block reads only its own sessions, its warm-up and its forward bars from the reader,
  never the whole history; a memory budget chooses the block size.
- A token set while block k starts: no further block is built. A token set during the
  history build's second chunk of rows: no third chunk is computed.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from report_compare import assert_reports_close

from technic_v4 import cancel
from technic_v4.data.demo import DemoSpec, generate_demo_market
from technic_v4.data.reader import PanelSource
from technic_v4.scan import ScanConfig
from technic_v4.validate import ValidateOptions, replay, stats, validate
from technic_v4.validate import history as history_mod
from technic_v4.validate.history import History

replay_mod = importlib.import_module("technic_v4.validate.replay")  # not the function
SCREENS = [
    {"where": "RSI < 45 and Close > SMA50", "rank": "mom_63 / ATR_pct", "min_price": 5},
    {"where": "pct_rank(mom_21) > 0.7", "min_tech_rating": 0,
     "signals": ["Long", "Strong Long", "Avoid"]},
    {"where": "crosses_above(MACD, MACD_signal, within=5) or Close > highest(High, 20)[1]",
     "rank": "RSI", "ascending": True},
    {"where": "W.RSI > 50 and RSI < 60"},
    {"min_dollar_volume": 1e7, "sort_by": "mom_21"},
]
START = "2025-01-02"  # ~120 evaluated sessions: blocks of 1 stay quick


@pytest.fixture(scope="module")
def source() -> PanelSource:
    panel = generate_demo_market(DemoSpec(n_symbols=50, start="2022-01-03",
                                          end="2025-06-30")).to_panel()
    for name in ("open", "high", "low", "close", "volume"):  # a suspension of ~10 months
        getattr(panel, name)[3, 500:700] = np.nan
        getattr(panel, name)[5, -60:] = np.nan  # delisted inside the replay
        getattr(panel, name)[7, -50:-25] = np.nan  # halted inside it
    return PanelSource(panel)


class Recording(PanelSource):
    """A PanelSource that remembers the sessions each block read for its whole universe (the
    few symbols with gaps read their own earlier bars besides)."""

    def __init__(self, source: PanelSource):
        super().__init__(source.panel)
        self.spans: list[tuple[int, int]] = []

    def load(self, end, bars):  # type: ignore[no-untyped-def]
        raise AssertionError("a validation reads blocks, never the whole history")

    def load_block(self, first, last, rows):  # type: ignore[no-untyped-def]
        if len(rows) == self.panel.n_symbols:
            self.spans.append((first, last))
        return super().load_block(first, last, rows)


@pytest.mark.parametrize("kw", SCREENS, ids=[str(i) for i in range(len(SCREENS))])
def test_blocks_equal_one_pass(source, kw, monkeypatch):
    cfg = ScanConfig(**kw)
    whole = replay(cfg, source, start=START, block_sessions=10_000)
    assert whole.blocks == 1
    for size in (1, 7, 64):
        monkeypatch.setattr(replay_mod, "EVAL_SESSIONS", 3 if size == 64 else 128)
        rep = replay(cfg, source, start=START, block_sessions=size)
        if "W." not in str(kw):  # weekly recursions settle over years: one block
            assert rep.blocks == -(-int(whole.columns[-1] - whole.columns[0] + 1) // size)
        np.testing.assert_array_equal(rep.columns, whole.columns)
        np.testing.assert_array_equal(rep.valid, whole.valid)
        np.testing.assert_array_equal(rep.passing, whole.passing)
        np.testing.assert_allclose(rep.rank, whole.rank, rtol=1e-12, atol=0)
    assert whole.passing.any()


@pytest.mark.parametrize("every", [1, 2])
def test_block_reports_equal_one_pass(source, every):
    cfg = ScanConfig(**SCREENS[0])
    opts = ValidateOptions(start=START, horizons=(1, 5, 21), top=5, every=every, cost_bps=10)
    one = validate(cfg, source, opts, block_sessions=10_000)
    for size in (1, 7, 64):
        got = validate(cfg, source, opts, block_sessions=size)
        assert got.report["data"].pop("blocks") > 1
        one.report["data"].pop("blocks", None)
        for rep in (got.report, one.report):
            rep.pop("timings_ms", None)
        assert_reports_close(got.report, one.report)
        assert got.daily.equals(one.daily) or np.allclose(
            got.daily.select_dtypes("number"), one.daily.select_dtypes("number"),
            rtol=1e-12, atol=0, equal_nan=True)


def test_blocks_read_their_own_sessions(source):
    """Each block reads its warm-up, its sessions and its forward bars: far less than the
    history, and the sessions read for any one block do not grow with the history."""
    reader = Recording(source)
    opts = ValidateOptions(start=START, horizons=(1, 5), top=5)
    got = validate(ScanConfig(**SCREENS[0]), reader, opts, block_sessions=7)
    n_sessions = source.panel.n_sessions
    reader.spans.remove((0, n_sessions - 1))  # the regimes' pass: chunks of rows, once
    assert len(reader.spans) == got.report["data"]["blocks"] > 10
    firsts, lasts = (np.array(x) for x in zip(*reader.spans, strict=True))
    assert (firsts > 0).all() and (np.diff(firsts) >= 0).all() and firsts[-1] > firsts[0]
    assert (lasts[:-2] < n_sessions - 1).all() and (np.diff(lasts) >= 0).all()
    full = validate(ScanConfig(**SCREENS[0]), source, opts, memory_mb=1 << 20).report
    assert full["data"]["blocks"] == 1


def test_ranking_in_pieces_of_sessions_equals_one_piece():
    rng = np.random.default_rng(7)
    rank = np.where(rng.random((60, 50)) < 0.3, np.nan, rng.normal(size=(60, 50)).round(1))
    rank[:, 4] = np.nan  # a session with nothing ranked
    one = stats.Ranked.of(rank, False, sessions=1_000)
    for size in (1, 7):
        got = stats.Ranked.of(rank, False, sessions=size)
        for name in ("bucket", "start", "values", "centred", "squares"):
            np.testing.assert_array_equal(getattr(got, name), getattr(one, name), name)
    excess = np.where(rng.random((60, 50)) < 0.1, np.nan, rng.normal(size=(60, 50)))
    whole = stats.rank_ics(one, excess, sessions=1_000)
    assert np.isfinite(whole).sum() > 40
    for size in (1, 7):
        np.testing.assert_array_equal(stats.rank_ics(one, excess, sessions=size), whole)


def test_cancel_between_blocks_builds_no_further_block(source):
    token = cancel.CancelToken()
    started: list[int] = []

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "indicators" and done < total:
            started.append(done)
            if done == 2:
                token.cancel("test")

    with pytest.raises(cancel.Cancelled), cancel.active(token):
        replay(ScanConfig(**SCREENS[0]), source, start=START, block_sessions=7,
               progress=progress)
    assert started == [0, 1, 2]


def test_cancel_between_chunks_of_rows(source, monkeypatch):
    token = cancel.CancelToken()
    calls: list[int] = []
    real = history_mod.packed_series

    def counting(panel, names, width, extra=None):
        calls.append(panel.n_symbols)
        if len(calls) == 2:
            token.cancel("test")
        return real(panel, names, width, extra)

    monkeypatch.setattr(history_mod, "packed_series", counting)
    panel = source.panel
    with pytest.raises(cancel.Cancelled), cancel.active(token):
        History.build(panel, {"D": {"Close", "RSI"}, "W": set()}, ScanConfig().scoring,
                      chunk_cells=10 * panel.n_sessions)
    assert calls == [10, 10]  # 5 chunks of 10 rows; none after the cancel


def test_a_history_of_no_rows_has_every_series_empty(source: PanelSource) -> None:
    """A replay whose plan keeps no symbol (e.g. `symbols: ["0"]`) builds a History of zero
    rows: every asked series is there, empty, as for a universe of many rows."""
    panel = source.load(None, 300).select(np.arange(0))
    built = History.build(panel, {"D": {"Close", "RSI"}, "W": set()}, ScanConfig().scoring)
    axis = built.axes["D"]
    assert set(axis.packed) >= {"Close", "RSI"}
    assert all(v.shape[0] == 0 for v in axis.packed.values())
