"""Any exchange: a store records its exchange calendar, and ingest, append, the quality gate, a
scan and its as-of resolution all use it. Bars generated on London (XLON) and Tokyo (XTKS)
sessions, which differ from New York's: London trades on the 4th of July and Thanksgiving,
New York on the August bank holiday and Boxing Day."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from technic_v4.data import store
from technic_v4.data.append import AppendError, append_bars
from technic_v4.data.calendar import (
    CalendarError,
    calendar_names,
    canonical_calendar,
    sessions_between,
)
from technic_v4.data.demo import DemoSpec, build_demo_store
from technic_v4.data.ingest import ingest_bars, ingest_frame
from technic_v4.data.providers.update import update_store
from technic_v4.data.quality import check_panel, check_store
from technic_v4.data.reader import StoreReader
from technic_v4.scanner_core import ScanConfig, run_scan

LONDON_ONLY = ["2024-07-04", "2024-11-28"]   # XLON sessions, XNYS holidays
NEW_YORK_ONLY = ["2024-08-26", "2024-12-26"]  # XNYS sessions, XLON bank holidays


def _bars(calendar: str, start: str, end: str, n: int = 30, seed: int = 7) -> pd.DataFrame:
    """A long bars table with one bar per symbol on every `calendar` session."""
    sessions = sessions_between(start, end, calendar)
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.015, (n, len(sessions))), axis=1))
    opn = close * np.exp(rng.normal(0, 0.004, close.shape))
    high = np.maximum(opn, close) * 1.01
    low = np.minimum(opn, close) * 0.99
    volume = rng.integers(200_000, 2_000_000, close.shape).astype(float)
    symbols = [f"{1000 + i}.L" for i in range(n)]  # digits and an exchange suffix
    return pd.DataFrame({
        "symbol": np.repeat(symbols, len(sessions)),
        "date": np.tile(sessions.strftime("%Y-%m-%d"), n),
        "open": opn.ravel(), "high": high.ravel(), "low": low.ravel(), "close": close.ravel(),
        "volume": volume.ravel()})


@pytest.fixture(scope="module")
def london(tmp_path_factory):
    """A store ingested from bars on every XLON session of 2024 (and the file it came from)."""
    root = tmp_path_factory.mktemp("xlon")
    path = root / "bars.csv"
    _bars("XLON", "2024-01-02", "2024-12-31").to_csv(path, index=False)
    report = ingest_bars(path, root / "data", calendar="xlon")
    return root / "data", path, report


def test_a_london_store_ingests_every_london_session(london) -> None:
    data, _, report = london
    assert report.rows_rejected == 0, report.rejections.head()
    manifest = store.read_manifest(data)
    assert manifest.calendar == "XLON" and manifest.missing_sessions == []
    sessions = store.read_sessions(data)
    assert sessions.equals(sessions_between("2024-01-02", "2024-12-31", "XLON"))
    assert set(LONDON_ONLY) <= set(sessions.strftime("%Y-%m-%d"))
    assert not set(NEW_YORK_ONLY) & set(sessions.strftime("%Y-%m-%d"))
    # the quality gate counts gaps on London's calendar: none (New York's would see 8)
    assert check_store(data).counts()["gaps"] == 0
    assert load_meta(data)["calendar"] == "XLON"


def load_meta(data) -> dict:
    return store.load_panel(data, bars=5).meta


def test_the_same_file_on_new_york_s_calendar_rejects_london_only_days(london, tmp_path) -> None:
    _, path, _ = london
    report = ingest_bars(path, tmp_path / "ny")
    reasons = set(report.rejections["reason"])
    assert ("not a session: 2024-07-04 is an XNYS holiday or closure (30 of 30 symbols traded "
            "on it; the rows trade on 6 of the 9 XNYS holidays they span: is --calendar the "
            "exchange they trade on?)") in reasons
    london_only = sessions_between("2024-01-02", "2024-12-31", "XLON").difference(
        sessions_between("2024-01-02", "2024-12-31", "XNYS"))
    assert set(LONDON_ONLY) <= set(london_only.strftime("%Y-%m-%d"))
    assert report.rows_rejected == 30 * len(london_only)  # every one, and nothing else


def test_scan_and_as_of_on_london_sessions(london) -> None:
    data, _, _ = london
    reader = StoreReader(data, auto_demo=False)
    frame, status = run_scan(ScanConfig(lookback_days=120, min_bars=50), loader=reader)
    assert status.as_of == "2024-12-31" and status.kept == 30 and len(frame) == 30
    assert frame["Symbol"].str.endswith(".L").all() and frame["TechRating"].notna().all()
    assert status.rejected_by_reason == {}
    # a London session New York does not trade is a session here
    _, status = run_scan(ScanConfig(as_of_date="2024-07-04", min_bars=50), loader=reader)
    assert status.as_of == "2024-07-04"
    # London's August bank holiday (a New York session) resolves to the Friday before
    _, status = run_scan(ScanConfig(as_of_date="2024-08-26", min_bars=50), loader=reader)
    assert status.as_of == "2024-08-23"
    assert status.kept == 30


def test_append_uses_the_store_s_calendar(london, tmp_path) -> None:
    data, _, _ = london
    target = tmp_path / "data"
    ingest_frame(_bars("XLON", "2024-01-02", "2024-12-20"), target, name="base",
                 calendar="XLON")
    new = _bars("XLON", "2024-01-02", "2024-12-31")
    new = new[new["date"] > "2024-12-20"]
    boxing = new[new["date"] == "2024-12-24"].assign(date="2024-12-26")  # a bank holiday
    result = append_bars(pd.concat([new, boxing], ignore_index=True), target)
    assert result.new_sessions == ["2024-12-23", "2024-12-24", "2024-12-27", "2024-12-30",
                                   "2024-12-31"]
    assert set(result.rejections["reason"]) == {  # a copy of the 24th: a fill, not a print
        "not a session: 2024-12-26 is an XLON holiday or closure (0 of 30 symbols traded on "
        "it)"}
    assert store.read_manifest(target).calendar == "XLON"
    with pytest.raises(AppendError, match="on the XLON calendar, not XNYS"):
        append_bars(new, target, calendar="XNYS")


def test_a_tokyo_demo_market_and_a_gap_on_its_calendar(tmp_path) -> None:
    spec = DemoSpec(n_symbols=60, start="2024-01-04", end="2024-12-27", calendar="JPX")
    manifest = build_demo_store(tmp_path / "demo", spec)
    assert manifest.calendar == "XTKS"  # the alias, recorded as its MIC
    sessions = store.read_sessions(tmp_path / "demo")
    assert sessions.equals(sessions_between(spec.start, spec.end, "XTKS"))
    frame, status = run_scan(ScanConfig(), loader=StoreReader(tmp_path / "demo"))
    assert status.as_of == "2024-12-27" and len(frame) > 40

    # a whole Tokyo session absent from a store is a gap for every symbol trading across it
    panel = store.load_panel(tmp_path / "demo")
    keep = np.ones(panel.n_sessions, dtype=bool)
    keep[100] = False
    store.write_store(tmp_path / "holed", sessions=panel.sessions[keep],
                      universe=panel.universe, source="t", calendar="XTKS",
                      **{f: getattr(panel, f)[:, keep] for f in
                         ("open", "high", "low", "close", "volume")})
    holed = store.read_manifest(tmp_path / "holed")
    assert holed.missing_sessions == [str(panel.sessions[100].date())]
    gaps = check_panel(store.load_panel(tmp_path / "holed")).table["gaps"].to_numpy()
    spans = np.isfinite(panel.close[:, :100]).any(1) & np.isfinite(panel.close[:, 101:]).any(1)
    assert (gaps[spans] >= 1).all()


def test_stores_without_a_calendar_are_new_york_and_unknown_names_are_errors(tmp_path) -> None:
    data = tmp_path / "old"
    ingest_frame(_bars("XNYS", "2024-01-02", "2024-06-28", n=25), data, name="old")
    path = store.store_path(data) / "manifest.json"
    raw = json.loads(path.read_text())
    del raw["calendar"], raw["missing_sessions"]  # a store written before the field existed
    path.write_text(json.dumps(raw))
    m = store.read_manifest(data)
    assert m.calendar == "XNYS" and m.missing_sessions is None
    assert check_store(data, write=False).counts()["gaps"] == 0  # asks XNYS itself
    _, status = run_scan(ScanConfig(as_of_date="2024-05-27"), loader=StoreReader(data))
    assert status.as_of == "2024-05-24"  # Memorial Day

    with pytest.raises(CalendarError, match="technic data calendars"):
        canonical_calendar("XXXX")
    with pytest.raises(CalendarError):
        ingest_frame(_bars("XNYS", "2024-01-02", "2024-02-28", n=3), tmp_path / "x",
                     name="x", calendar="Mars")
    assert {"XNYS", "XLON", "XTKS", "XPHS", "XHKG"} <= set(calendar_names())


def test_polygon_update_refuses_a_store_off_new_york(london) -> None:
    data, _, _ = london
    from technic_v4.data.providers.base import ProviderError
    from technic_v4.data.providers.polygon import PolygonClient, PolygonProvider

    with PolygonClient("key", base_url="http://127.0.0.1:9") as client:  # never asked
        with pytest.raises(ProviderError, match="polygon fetches XNYS sessions.*XLON"):
            update_store(data, PolygonProvider(client, data))


def test_a_weekly_bar_closes_on_the_store_s_own_sessions() -> None:
    """Whether a week's bar is complete is asked of the store's sessions: Seoul closed on
    Friday 2023-09-29 (Chuseok), New York did not; Manila's 2017-12-08 holiday, once the
    data outvoted it, is a session that week."""
    from technic_v4.scan.evaluate import last_week_closed

    thursday = pd.Timestamp("2023-09-28")
    assert last_week_closed(thursday, {"calendar": "XKRX"})
    assert not last_week_closed(thursday, {"calendar": "XNYS"})
    assert not last_week_closed(thursday)  # a Panel without meta: New York's
    manila = pd.Timestamp("2017-12-07")
    assert last_week_closed(manila, {"calendar": "XPHS"})
    assert not last_week_closed(manila, {"calendar": "XPHS", "extra_sessions": ["2017-12-08"]})
