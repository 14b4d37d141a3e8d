"""Index memberships end to end: `technic data universe --out` -> ingest -> the store's
`indexes` column -> `--index` / ScanConfig.indexes and `Indexes in (...)` in `where`, and
`data info` naming where the memberships came from."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from technic_v4.cli import app
from technic_v4.data.append import append_bars
from technic_v4.data.calendar import sessions_between
from technic_v4.data.indexes import index_universe, membership_source, merge_universe
from technic_v4.data.ingest import ingest_bars
from technic_v4.data.reader import StoreReader
from technic_v4.data.store import read_manifest, read_universe, write_store
from technic_v4.errors import ConfigError
from technic_v4.scan import ScanConfig, run_scan

OWN = "ZZTOP"  # a symbol of the user's own file, in no index


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store of the Dow and the Nasdaq-100 (random walks) plus one symbol of the user's
    own universe file, built as a user would: data universe --add --out, then ingest."""
    tmp = tmp_path_factory.mktemp("indexes")
    (tmp / "own.csv").write_text(f"symbol,sector,name\n{OWN},Technology,Own Corp\n")
    res = CliRunner().invoke(app, ["data", "universe", "dow", "nasdaq100", "--add",
                                   str(tmp / "own.csv"), "--out", str(tmp / "uni.csv")])
    assert res.exit_code == 0, res.output
    symbols = pd.read_csv(tmp / "uni.csv", keep_default_na=False)["Symbol"].tolist()
    sessions = sessions_between("2023-01-03", "2024-03-28")
    rng = np.random.default_rng(7)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (len(symbols), len(sessions))), axis=1))
    bars = pd.DataFrame({
        "symbol": np.repeat(symbols, len(sessions)),
        "date": np.tile(sessions.strftime("%Y-%m-%d"), len(symbols)),
        "open": close.ravel(), "high": close.ravel() * 1.01, "low": close.ravel() * 0.99,
        "close": close.ravel(), "volume": 1e6})
    bars.to_csv(tmp / "bars.csv", index=False)
    ingest_bars(tmp / "bars.csv", tmp / "data", universe_path=tmp / "uni.csv")
    return tmp / "data"


def test_the_store_keeps_memberships_and_their_source(store):
    uni = read_universe(store).set_index("symbol")
    wanted = index_universe(["dow", "nasdaq100"]).set_index("Symbol")["Indexes"]
    assert uni.loc[wanted.index, "indexes"].tolist() == wanted.tolist()
    assert uni.loc[OWN, "indexes"] == "" and uni.loc[OWN, "sector"] == "Information Technology"
    assert read_manifest(store).meta["memberships"] == [
        f"pytickersymbols {membership_source()['version']} (lists undated)"]
    info = CliRunner().invoke(app, ["data", "info", "--data-dir", str(store)])
    assert info.exit_code == 0, info.output
    assert f"dow {len(index_universe(['dow']))}" in info.output
    assert "memberships from: pytickersymbols" in info.output


def test_a_scan_of_one_index_keeps_only_its_members(store):
    dow = set(index_universe(["dow"])["Symbol"])
    frame, status = run_scan(ScanConfig(indexes=["dow"], min_bars=50),
                             loader=StoreReader(store))
    assert set(frame["Symbol"]) == dow
    assert status.rejected_by_reason["filtered: index"] == status.attempted - len(dow)
    assert frame["Indexes"].str.split(",").map(lambda ids: "dow" in ids).all()


def test_indexes_in_where_is_membership_and_no_membership_is_empty(store):
    reader = StoreReader(store)
    dow = set(index_universe(["dow"])["Symbol"])
    frame, _ = run_scan(ScanConfig(where='Indexes in ("DOW")', min_bars=50), loader=reader)
    assert set(frame["Symbol"]) == dow
    rest, _ = run_scan(ScanConfig(where='Indexes not in ("dow", "nasdaq100")', min_bars=50),
                       loader=reader)
    assert rest["Symbol"].tolist() == [OWN] and rest["Indexes"].tolist() == [""]


def test_an_index_the_store_does_not_know_is_an_error_naming_its_memberships(store):
    for cfg in (ScanConfig(indexes=["ftse100"]), ScanConfig(where='Indexes in ("ftse100")')):
        with pytest.raises(ConfigError) as err:
            run_scan(cfg, loader=StoreReader(store))
        assert "ftse100" in err.value.message and "nasdaq100" in err.value.message


def test_equality_with_indexes_is_refused_with_the_membership_test_as_hint():
    with pytest.raises(ConfigError) as err:
        ScanConfig(where='Indexes == "dow"').validate()
    assert "Indexes in" in str(err.value.details)


def test_the_headline_sector_filter_finds_the_index_members_of_those_sectors(store):
    uni = index_universe(["dow", "nasdaq100"])
    wanted = set(uni.loc[uni["Sector"].isin(["Information Technology", "Health Care"]),
                         "Symbol"]) | {OWN}
    frame, _ = run_scan(ScanConfig(sectors=["Technology", "Healthcare"], min_bars=50),
                        loader=StoreReader(store))
    assert set(frame["Symbol"]) == wanted


def test_data_universe_prints_json_and_refuses_an_unknown_list():
    res = CliRunner().invoke(app, ["data", "universe", "dow", "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout[res.stdout.index("["):])
    assert [r["Symbol"] for r in rows] == index_universe(["dow"])["Symbol"].tolist()
    bad = CliRunner().invoke(app, ["data", "universe", "dow", "sp501"])
    assert bad.exit_code == 2 and "sp501" in bad.output and "nasdaq100" in bad.output


def test_an_own_file_with_a_bad_sector_or_index_id_is_refused_naming_the_row():
    table = index_universe(["dow"])
    for row, word in ({"symbol": "ZZ", "sector": "Crypto"}, "Crypto"), (
            {"symbol": "ZZ", "sector": "Energy", "indexes": "my list!"}, "list!"):
        with pytest.raises(ConfigError) as err:
            merge_universe(table, pd.DataFrame([row]).fillna(""), "own.csv")
        assert "own.csv" in err.value.message and word in err.value.message


def test_an_append_keeps_the_memberships(tmp_path):
    sessions = sessions_between("2024-01-02", "2024-03-28")
    close = np.full((2, len(sessions)), 10.0)
    universe = pd.DataFrame({"symbol": ["AAPL", "ZZ"], "name": ["Apple", "ZZ"],
                             "sector": ["Information Technology", "Energy"],
                             "industry": ["Hardware", "Oil"], "indexes": ["sp500,dow", ""]})
    write_store(tmp_path, sessions=sessions[:-1], universe=universe, open=close[:, :-1],
                high=close[:, :-1], low=close[:, :-1], close=close[:, :-1],
                volume=close[:, :-1] * 1e5, source="test")
    day = str(sessions[-1].date())
    append_bars(pd.DataFrame({"symbol": ["AAPL", "ZZ", "NEW"], "date": day, "open": 10.0,
                              "high": 10.0, "low": 10.0, "close": 10.0, "volume": 1e6}),
                tmp_path)
    uni = read_universe(tmp_path)
    assert uni["indexes"].tolist() == ["sp500,dow", "", ""]


def test_http_takes_indexes_and_lists_memberships(store):
    from fastapi.testclient import TestClient

    from deployments.api.main import create_app
    from technic_v4.service.inprocess import InProcessBackend

    dow = index_universe(["dow"])
    backend = InProcessBackend(store, None, warm=False)
    backend.warm()
    with TestClient(create_app(backend, api_keys=())) as c:
        scan = c.post("/v1/scan", json={"indexes": ["dow"], "min_bars": 50})
        assert scan.status_code == 200, scan.text
        assert {r["Symbol"] for r in scan.json()["rows"]} == set(dow["Symbol"])
        bad = c.post("/v1/scan", json={"indexes": ["ftse100"]})
        assert bad.status_code == 422 and "ftse100" in bad.text
        rows = {r["symbol"]: r["indexes"] for r in c.get("/v1/universe").json()["rows"]}
    assert rows[OWN] == []
    for sym, ids in zip(dow["Symbol"], dow["Indexes"], strict=True):
        assert rows[sym] == ids.split(",")


def test_a_replay_reads_indexes_at_every_session_like_a_scan(store):
    from technic_v4.validate import replay

    reader = StoreReader(store)
    cfg = ScanConfig(where='Indexes in ("dow") and RSI > 0', min_bars=50)
    rep = replay(cfg, reader, start="2024-02-01")
    dow = np.isin(rep.panel.symbols, index_universe(["dow"])["Symbol"])
    assert rep.passing.any(axis=1)[dow].all() and not rep.passing[~dow].any()


def test_technic_scan_index_on_the_command_line(store):
    res = CliRunner().invoke(app, ["scan", "--index", "dow", "--index", "sp100", "--format",
                                   "json", "--data-dir", str(store), "--min-bars", "50"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout[res.stdout.index("{"):])
    wanted = index_universe(["dow", "sp100"])
    inside = set(wanted["Symbol"]) & set(index_universe(["dow", "nasdaq100"])["Symbol"])
    assert {r["Symbol"] for r in body["rows"]} == inside
