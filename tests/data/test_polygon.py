"""The Polygon provider against a local stub server (127.0.0.1 only, never the internet):
each failure mode is survived, and no session is lost or stored twice, across reruns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from polygon_stub import KEY, PolygonStub  # tests/ is on sys.path (rootdir conftest)

from technic_v4.data.calendar import sessions_between
from technic_v4.data.ingest import ingest_frame
from technic_v4.data.providers.polygon import (
    PolygonClient,
    PolygonError,
    PolygonProvider,
    cache_dir,
    fetch_sessions,
)
from technic_v4.data.providers.update import update_store
from technic_v4.data.store import load_panel, read_manifest

FIXTURES = Path(__file__).parents[1] / "fixtures"
MODES = {"2013-02-04": ["429", "429"], "2013-02-05": ["500", "500"],
         "2013-02-06": ["truncated"], "2013-02-07": ["cut_json"], "2013-02-08": ["wrong_day"]}


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    df = pd.read_csv(FIXTURES / "stocks.csv.gz")
    df = df[df["Date"] >= "2012-12-01"]
    return pd.DataFrame({"symbol": df["Ticker"], "date": df["Date"], "open": df["Open"],
                         "high": df["High"], "low": df["Low"], "close": df["Close"],
                         "volume": df["Volume"].astype(float)}).reset_index(drop=True)


def _client(stub: PolygonStub, **kw) -> PolygonClient:
    return PolygonClient(KEY, base_url=stub.url, backoff=0.01, max_retries=3, timeout=5, **kw)


def _cached(data_dir: Path) -> pd.DataFrame:
    files = sorted(cache_dir(data_dir).glob("*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)


def test_each_failure_mode_is_retried_and_every_session_cached_once(bars, tmp_path) -> None:
    sessions = sessions_between("2013-02-01", "2013-02-15")
    with PolygonStub(bars) as stub, _client(stub) as client:
        for day, modes in MODES.items():
            stub.script[day] = list(modes)
        stub.script["2013-02-11"] = ["empty"]  # Polygon has nothing for it, this time
        report = fetch_sessions(client, sessions, cache_dir(tmp_path), workers=3)
        assert report.failed == {} and report.empty == ["2013-02-11"]
        for day, modes in MODES.items():
            assert stub.hits[day] == len(modes) + 1, day
        assert not list(cache_dir(tmp_path).glob(".*"))  # no temporary file left behind

        again = fetch_sessions(client, sessions, cache_dir(tmp_path), workers=3)
        assert again.fetched == ["2013-02-11"] and again.empty == []
        assert len(again.cached) == len(sessions) - 1
        assert stub.hits["2013-02-01"] == 1  # cached sessions are not fetched again

    got = _cached(tmp_path).sort_values(["date", "symbol"]).reset_index(drop=True)
    want = bars[bars["date"].between("2013-02-01", "2013-02-15")]
    want = want.sort_values(["date", "symbol"]).reset_index(drop=True)
    assert not got.duplicated(["symbol", "date"]).any()
    assert sorted(got["date"].unique()) == [str(s.date()) for s in sessions]
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_update_resumes_without_losing_or_duplicating_sessions(bars, tmp_path) -> None:
    history = bars[bars["date"] <= "2013-01-31"]
    ingest_frame(history, tmp_path, name="history")
    with PolygonStub(bars) as stub, _client(stub, per_minute=6000) as client:
        stub.always["2013-02-06"] = "500"          # down for the whole first run
        stub.script["2013-02-12"] = ["truncated", "429"]
        provider = PolygonProvider(client, tmp_path, workers=4)
        first = update_store(tmp_path, provider, end="2013-02-15")
        assert list(first.fetch.failed) == ["2013-02-06"]
        assert first.appended == ["2013-02-01", "2013-02-04", "2013-02-05"]
        assert first.waiting == ["2013-02-07", "2013-02-08", "2013-02-11", "2013-02-12",
                                 "2013-02-13", "2013-02-14", "2013-02-15"]
        assert read_manifest(tmp_path).last_session == "2013-02-05"
        hits = dict(stub.hits)

        del stub.always["2013-02-06"]              # the server recovers; rerun
        second = update_store(tmp_path, provider, end="2013-02-15")
        assert second.fetch.fetched == ["2013-02-06"] and second.fetch.failed == {}
        assert second.appended[0] == "2013-02-06" and second.appended[-1] == "2013-02-15"
        delta = {d: n - hits.get(d, 0) for d, n in stub.hits.items() if n != hits.get(d)}
        assert delta == {"2013-02-06": 1}  # only the failed day is asked for again

        third = update_store(tmp_path, provider, end="2013-02-15")  # nothing left to do
        assert third.appended == [] and third.fetch.fetched == []

    panel = load_panel(tmp_path)
    expected = sessions_between(history["date"].min(), "2013-02-15")
    assert list(panel.sessions) == list(expected)  # every session once, in order
    want = bars[bars["date"] <= "2013-02-15"].pivot(index="symbol", columns="date",
                                                     values="close")
    want = want.loc[list(panel.symbols), [str(s.date()) for s in panel.sessions]]
    np.testing.assert_array_equal(panel.close, want.to_numpy())


def test_bad_key_fails_at_once_and_tickers_follow_next_url(bars, tmp_path) -> None:
    tickers = [{"ticker": t, "name": f"{t} Inc", "type": "CS", "primary_exchange": "XNAS"}
               for t in ("AAPL", "FB", "GOOG", "IBM", "MSFT")]
    with PolygonStub(bars, tickers) as stub:
        with PolygonClient("wrong", base_url=stub.url, backoff=0.01) as bad:
            with pytest.raises(PolygonError, match="refused the API key"):
                bad.grouped_daily("2013-02-01")
            assert bad.requests == 1
        with _client(stub) as client:
            ref = client.tickers()
            assert list(ref["symbol"]) == [t["ticker"] for t in tickers]
            stub.always["2013-02-01"] = "500"
            with pytest.raises(PolygonError, match="gave up after 4 attempts"):
                client.grouped_daily("2013-02-01")
    with pytest.raises(PolygonError, match="TECHNIC_POLYGON_API_KEY"):
        PolygonClient(None, base_url="http://127.0.0.1:9")


def test_a_new_ticker_joins_with_its_reference_name(bars, tmp_path) -> None:
    old = bars[(bars["date"] <= "2013-01-31") & (bars["symbol"] != "AAPL")]
    ingest_frame(old, tmp_path, name="history")
    tickers = [{"ticker": "AAPL", "name": "Apple Inc.", "type": "CS"}]
    with PolygonStub(bars, tickers) as stub, _client(stub) as client:
        provider = PolygonProvider(client, tmp_path)
        result = update_store(tmp_path, provider, end="2013-02-05",
                              universe=provider.reference(refresh=True))
    assert result.store.new_symbols == ["AAPL"] and result.store.empty_sessions == []
    panel = load_panel(tmp_path)
    row = list(panel.symbols).index("AAPL")
    assert panel.universe.loc[row, "name"] == "Apple Inc."
    assert np.isnan(panel.close[row, :-3]).all() and np.isfinite(panel.close[row, -3:]).all()
