"""The Yahoo provider: the real yfinance client against a local server speaking Yahoo's chart
API (tests/yahoo_stub.py, 127.0.0.1 only, never the internet). Each failure mode is retried
or reported by name, a rerun fetches only what is missing, and init / update build and grow
a store the rest of technic reads without knowing the provider."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from yahoo_stub import YahooStub, generated_bars  # tests/ is on sys.path (rootdir conftest)

from technic_v4.data.calendar import sessions_between
from technic_v4.data.providers.base import ProviderError
from technic_v4.data.providers.update import init_store, last_closed_session, update_store
from technic_v4.data.providers.yahoo import YahooProvider, yahoo_symbol
from technic_v4.data.store import load_panel, read_manifest

SYMS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]


def _provider(stub: YahooStub, tmp_path, **kw) -> YahooProvider:
    opts = {"per_minute": None, "workers": 3, "backoff": 0.01, "max_retries": 2,
            "timeout": 1.0} | kw
    return YahooProvider(tmp_path / "cache", base_url=stub.url, **opts)


def test_failures_are_retried_or_named_and_a_rerun_fetches_only_what_is_missing(tmp_path):
    bars = generated_bars(SYMS, "2024-01-02", "2024-03-28")
    sessions = sessions_between("2024-02-01", "2024-02-29")
    with YahooStub(bars, slow_s=2.5) as stub:
        stub.script.update({"AAA": ["429", "429", "429"], "BBB": ["500"],
                            "CCC": ["malformed"], "DDD": ["slow"], "EEE": ["partial"]})
        stub.always["FFF"] = "500"  # down for the whole first run
        provider = _provider(stub, tmp_path)
        got = provider.fetch(sessions, [*SYMS, "GONE"])
        assert got.empty == ["GONE"]  # Yahoo's 404 "symbol may be delisted", by name
        assert list(got.failed) == ["FFF"] and "gave up after 3 attempts" in got.failed["FFF"]
        assert got.complete_through is None  # a failure holds the sessions back
        for sym in ("AAA", "BBB", "CCC", "DDD"):
            rows = got.bars[got.bars["symbol"] == sym].set_index("date")
            want = bars[sym].loc[sessions]
            assert list(rows.index) == [str(d.date()) for d in sessions], sym
            np.testing.assert_allclose(rows[["open", "high", "low", "close", "adj_close",
                                             "volume"]].to_numpy(), want.to_numpy(), rtol=1e-9)
        assert (got.bars["symbol"] == "EEE").sum() == len(sessions) // 2  # a short answer
        assert stub.hits("AAA") >= 3 and stub.hits("BBB") >= 2  # retried until it worked

        before = {s: stub.hits(s) for s in [*SYMS, "GONE"]}
        del stub.always["FFF"]
        again = provider.fetch(sessions, [*SYMS, "GONE"])
        asked = {s: stub.hits(s) - before[s] for s in before if stub.hits(s) != before[s]}
        assert asked == {"FFF": 1}  # everything else came from the cache
        assert again.failed == {} and again.complete_through == sessions[-1]
        assert again.fetched == ["FFF"] and again.empty == ["GONE"]


def test_venue_suffixes_map_store_symbols_to_yahoo_tickers():
    assert yahoo_symbol("BRK.B", "XNYS") == "BRK-B"
    assert yahoo_symbol("SAP", "XETR") == "SAP.DE"
    assert yahoo_symbol("VOD", "LSE") == "VOD.L"
    assert yahoo_symbol("7203", "XTKS") == "7203.T"
    with pytest.raises(ProviderError, match="no Yahoo venue suffix"):
        yahoo_symbol("X", "XBUE")


def _universe(n: int) -> pd.DataFrame:
    sectors = ["Information Technology", "Health Care", "Financials", "Energy", "Utilities"]
    syms = [f"S{i:02d}" for i in range(n)]
    return pd.DataFrame({"Symbol": syms, "Name": [f"{s} Inc" for s in syms],
                         "Sector": [sectors[i % 5] for i in range(n)], "Industry": "Stuff",
                         "Indexes": ["dow,sp500" if i < 3 else "sp500" for i in range(n)],
                         "IndexesSource": "test list", "YahooSymbol": syms, "Calendar": "XNYS"})


def test_init_builds_a_store_with_sectors_then_update_appends_the_new_session(tmp_path):
    from technic_v4.data.reader import StoreReader
    from technic_v4.scanner_core import ScanConfig, run_scan

    uni = _universe(30)
    bars = generated_bars(list(uni["Symbol"]), "2023-06-01", "2024-03-27")
    data = tmp_path / "store"
    with YahooStub(bars) as stub:
        provider = _provider(stub, data)
        result = init_store(data, provider, uni, start="2023-06-01", end="2024-03-27")
        assert result.fetch.failed == {} and len(result.fetch.fetched) == 30
        m = read_manifest(data)
        assert (m.n_symbols, m.first_session, m.last_session) == (30, "2023-06-01",
                                                                   "2024-03-27")
        frame, status = run_scan(ScanConfig(sectors=["Technology", "Healthcare"]),
                                 loader=StoreReader(data))
        assert set(frame["Sector"]) == {"Information Technology", "Health Care"}
        assert len(frame) == status.kept == 12  # 30 symbols, 5 sectors in turn
        dow, _ = run_scan(ScanConfig(indexes=["dow"]), loader=StoreReader(data))
        assert sorted(dow["Symbol"]) == ["S00", "S01", "S02"]  # the memberships were stored

        stub.add_session("2024-03-28")
        n = len(stub.requests)
        # 2024-03-28 closes at 16:00 New York (20:00 UTC); 20:10 is before close + 30 min
        early = update_store(data, provider, now=pd.Timestamp("2024-03-28 20:10", tz="UTC"))
        assert early.wanted == [] and len(stub.requests) == n
        late = update_store(data, provider, now=pd.Timestamp("2024-03-28 20:31", tz="UTC"))
        assert late.wanted == late.appended == ["2024-03-28"]
        assert read_manifest(data).last_session == "2024-03-28"
        assert read_manifest(data).data_version != m.data_version
    panel = load_panel(data)
    row = list(panel.symbols).index("S03")
    want = bars["S03"]
    # adjusted store: close scaled to adj_close / close on every session
    np.testing.assert_allclose(panel.close[row, -1], want["adj_close"].iloc[-1], rtol=1e-9)


def test_the_last_closed_session_follows_the_calendar_and_early_closes():
    # 2024-11-29 (day after Thanksgiving) closes early at 13:00 New York (18:00 UTC)
    assert last_closed_session("XNYS", pd.Timestamp("2024-11-29 18:31", tz="UTC")) == \
        pd.Timestamp("2024-11-29")
    assert last_closed_session("XNYS", pd.Timestamp("2024-11-29 18:29", tz="UTC")) == \
        pd.Timestamp("2024-11-27")
    # a Saturday: Friday's session
    assert last_closed_session("XNYS", pd.Timestamp("2024-11-30 12:00", tz="UTC")) == \
        pd.Timestamp("2024-11-29")


@pytest.mark.network
def test_live_yahoo_answers_a_known_symbol_and_names_an_unknown_one(tmp_path):
    """Against Yahoo itself (only with --network; never run here: no internet)."""
    provider = YahooProvider(tmp_path, per_minute=30, workers=2)
    sessions = sessions_between("2024-03-01", "2024-03-28")
    got = provider.fetch(sessions, ["AAPL", "BRK.B", "NOSUCHTICKERX"])
    assert got.empty == ["NOSUCHTICKERX"] and got.failed == {}
    assert set(got.bars["symbol"]) == {"AAPL", "BRK.B"}
    assert sorted(got.bars["date"].unique()) == [str(d.date()) for d in sessions]
