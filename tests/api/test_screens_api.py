"""Saved screens over HTTP (deployments/api/routers/screens.py) and scans by screen name.

An in-process backend on the session's warm demo store and tiny models, with a screen store of
its own (so nothing here touches another test's screens). A scan by name must give the rows the
library gives for the same fields inline; request fields override the screen's; a re-saved
screen is never answered from the cache of its previous version.
"""

from __future__ import annotations

import warnings

import orjson
import pandas as pd
import pytest
from serve_support import ndjson, parquet_frame, state_backend

from deployments.api.main import create_app
from technic_v4.data.reader import StoreReader
from technic_v4.scan import ScanConfig, run_scan
from technic_v4.screens.presets import PRESETS
from technic_v4.screens.saved import ScreenStore

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

FIELDS = {"where": "RSI > 55 and Close > SMA50", "rank": "mom_63 / ATR_pct", "limit": 8,
          "sectors": ["Technology", "Health Care"]}
LIBRARY = {"where": FIELDS["where"], "rank": FIELDS["rank"], "max_symbols": 8,
           "sectors": FIELDS["sectors"]}


@pytest.fixture(scope="module")
def backend(warm, tmp_path_factory):  # type: ignore[no-untyped-def]
    return state_backend(warm, tmp_path_factory.mktemp("screens-api"))


@pytest.fixture(scope="module")
def client(backend):
    with TestClient(create_app(backend, api_keys=())) as c:
        yield c


@pytest.fixture()
def library(backend, monkeypatch):
    """run_scan in this process on the same store, models and screens."""
    monkeypatch.setenv("TECHNIC_MODELS_DIR", str(backend.models_dir))
    reader = StoreReader(backend.reader.data_dir)
    return lambda cfg: run_scan(cfg, loader=reader, screens=backend.screens)


def test_list_has_presets_and_saved_screens(client):
    client.put("/v1/screens/listed-one", json={"where": "RSI < 40"})
    body = client.get("/v1/screens").json()
    by_name = {s["name"]: s for s in body["screens"]}
    assert body["count"] == len(body["screens"]) >= len(PRESETS) + 1
    for name, preset in PRESETS.items():
        s = by_name[name]
        assert s["preset"] and s["title"] == preset.title and s["created"] is None
        assert s["definition"] == dict(preset.definition)
    mine = by_name["listed-one"]
    assert not mine["preset"] and mine["definition"] == {"where": "RSI < 40"}
    assert mine["version"] == 1 and mine["created"]


def test_put_get_versions_delete(client):
    r = client.put("/v1/screens/api-rsi", json={"where": "RSI<30", "limit": 5})
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "api-rsi", "version": 1, "changed": True,
                        "definition": {"where": "RSI < 30", "max_symbols": 5}}
    same = client.put("/v1/screens/api-rsi", json={"max_symbols": 5, "where": "RSI < 30",
                                                   "lookback_days": 150})
    assert same.json()["version"] == 1 and same.json()["changed"] is False
    assert client.put("/v1/screens/api-rsi", json={"where": "RSI < 25"}).json()["version"] == 2
    got = client.get("/v1/screens/api-rsi").json()
    assert got["version"] == 2 and got["definition"] == {"where": "RSI < 25"}
    assert [v["version"] for v in got["versions"]] == [1, 2]
    old = client.get("/v1/screens/api-rsi", params={"version": 1}).json()
    assert old["definition"] == {"where": "RSI < 30", "max_symbols": 5}
    missing = client.get("/v1/screens/api-rsi", params={"version": 9})
    assert missing.status_code == 404 and missing.json()["detail"][0]["valid"] == ["1", "2"]
    preset = client.get("/v1/screens/golden-cross").json()
    assert preset["preset"] and preset["versions"] == [{"version": 1, "created": None}]

    gone = client.delete("/v1/screens/api-rsi")
    assert gone.status_code == 200 and gone.json() == {"name": "api-rsi", "deleted": True}
    r = client.get("/v1/screens/api-rsi")
    assert r.status_code == 404 and "golden-cross" in r.json()["detail"][0]["valid"]
    assert client.delete("/v1/screens/api-rsi").status_code == 404


def test_bad_where_is_422_with_line_and_column(client):
    r = client.put("/v1/screens/api-bad", json={"where": "RSI < 30 and\n  Clsoe > 1"})
    assert r.status_code == 422
    entry = r.json()["detail"][0]
    assert entry["field"] == "where" and (entry["line"], entry["column"]) == (2, 3)
    assert entry["suggestions"] == ["Close"] and "did you mean Close" in entry["msg"]
    assert client.get("/v1/screens/api-bad").status_code == 404  # nothing saved


@pytest.mark.parametrize("method, path, body, status, field", [
    ("put", "/v1/screens/golden-cross", {"where": "RSI < 3"}, 409, "screen"),
    ("delete", "/v1/screens/squeeze", None, 409, "screen"),
    ("put", "/v1/screens/Bad", {"where": "RSI < 3"}, 422, "name"),
    ("get", "/v1/screens/a..b", None, 422, "name"),
    ("delete", "/v1/screens/-x", None, 422, "name"),
    ("get", "/v1/screens/" + "a" * 65, None, 422, "name"),
    ("put", "/v1/screens/api-x", {"wher": "RSI < 3"}, 422, "wher"),
    ("put", "/v1/screens/api-x", {"screen": "golden-cross"}, 422, "screen"),
    ("put", "/v1/screens/api-x", {"sectors": ["Crypto"]}, 422, "sectors"),
    ("put", "/v1/screens/api-x", {"rank": "Sector"}, 422, "rank"),
    ("get", "/v1/screens/never-saved", None, 404, "screen"),
])
def test_screen_route_errors(client, method, path, body, status, field):
    r = client.request(method.upper(), path, json=body)
    assert r.status_code == status, r.text
    assert r.json()["detail"][0]["field"] == field, r.json()


def test_scan_by_name_equals_inline_and_the_library(client, library):
    version = client.put("/v1/screens/api-scan", json=FIELDS).json()["version"]
    by_name = client.post("/v1/scan", json={"screen": "api-scan", "format": "parquet"})
    inline = client.post("/v1/scan", json={**FIELDS, "format": "parquet"})
    assert by_name.status_code == inline.status_code == 200
    frame, status = library(ScanConfig(**LIBRARY))
    assert len(frame) > 0
    pd.testing.assert_frame_equal(parquet_frame(by_name.content), frame, check_exact=True)
    pd.testing.assert_frame_equal(parquet_frame(inline.content), frame, check_exact=True)
    lib_by_name, lib_status = library(ScanConfig(screen="api-scan"))
    pd.testing.assert_frame_equal(lib_by_name, frame, check_exact=True)

    j = client.post("/v1/scan", json={"screen": "api-scan"})
    assert j.json()["meta"]["screen"] == {"name": "api-scan", "version": version,
                                          "preset": False}
    assert j.json()["meta"]["screen"] == lib_status.screen
    assert j.headers["x-technic-screen"] == f"api-scan:{version}"
    assert "x-technic-screen" not in client.post("/v1/scan", json=FIELDS).headers
    assert [r["Symbol"] for r in j.json()["rows"]] == frame["Symbol"].tolist()

    stream = ndjson(client.post("/v1/scan/stream", json={"screen": "api-scan"}).text)
    assert stream[-1]["event"] == "result" and stream[-1]["rows"] == j.json()["rows"]
    assert stream[-1]["meta"]["screen"]["name"] == "api-scan"


def test_request_fields_override_the_screen(client, library):
    client.put("/v1/screens/api-override", json=FIELDS)
    body = {"screen": "api-override", "limit": 3, "sort_by": "mom_21", "min_price": 5}
    r = client.post("/v1/scan", json={**body, "format": "parquet"})
    frame, _ = library(ScanConfig(where=FIELDS["where"], rank=FIELDS["rank"], max_symbols=3,
                                  sectors=FIELDS["sectors"], sort_by="mom_21", min_price=5))
    pd.testing.assert_frame_equal(parquet_frame(r.content), frame, check_exact=True)
    over = client.post("/v1/scan", json={"screen": "api-override", "where": "RSI < 45"}).json()
    assert over["meta"]["screen"]["name"] == "api-override"
    assert all(row["RSI"] < 45 for row in over["rows"])
    preset = client.post("/v1/scan", json={"screen": "golden-cross", "limit": 2}).json()
    assert preset["meta"]["screen"] == {"name": "golden-cross", "version": 1, "preset": True}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_over_http_equal_the_library(client, library, name):
    """The backend evaluates in chunks of 128 symbols, and screens a sector's rows out of a
    kept full-universe evaluation: every preset, history-reading ones included
    (crosses_above, highest(High, 252)[1], W.RSI), gives the rows of the library's one
    chunk."""
    for extra in ({}, {"sectors": ["Technology"]}):
        r = client.post("/v1/scan", json={"screen": name, **extra, "format": "parquet"})
        assert r.status_code == 200, r.text
        frame, status = library(ScanConfig(screen=name, **extra))
        got = parquet_frame(r.content)
        assert got["Symbol"].tolist() == frame["Symbol"].tolist()
        if len(frame):
            pd.testing.assert_frame_equal(got, frame, check_exact=True)


def test_unknown_screen_in_a_scan_is_422_with_the_valid_names(client):
    for path in ("/v1/scan", "/v1/scan/stream"):
        r = client.post(path, json={"screen": "no-such-screen"})
        assert r.status_code == 422, r.text
        entry = r.json()["detail"][0]
        assert entry["field"] == "screen" and "golden-cross" in entry["valid"]
    bad = client.post("/v1/scan", json={"screen": "Not A Name"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "screen"


def test_a_new_version_is_never_answered_from_the_old_cache(client):
    client.put("/v1/screens/api-cache", json={"where": "RSI > 50", "limit": 4})
    first = client.post("/v1/scan", json={"screen": "api-cache"})
    again = client.post("/v1/scan", json={"screen": "api-cache"})
    assert [first.headers["x-technic-cache"], again.headers["x-technic-cache"]] == [
        "miss", "hit"]
    client.put("/v1/screens/api-cache", json={"where": "RSI > 50", "limit": 2})
    after = client.post("/v1/scan", json={"screen": "api-cache"})
    assert after.headers["x-technic-cache"] == "miss"
    assert after.headers["x-technic-screen"] == "api-cache:2"
    assert len(after.json()["rows"]) == 2 and len(first.json()["rows"]) == 4


def test_columns_operators_functions(client):
    body = client.get("/v1/screen/columns").json()
    cols = {c["name"]: c for c in body["columns"]}
    assert cols["RSI"] == {"name": "RSI", "kind": "number", "history": True, "weekly": True,
                           "where": True}
    assert cols["SMA200"]["weekly"] and cols["rel_volume_50"]["history"]
    assert not cols["Alpha5d"]["weekly"] and not cols["RS_rating"]["history"]
    assert cols["Sector"]["kind"] == "text" and not cols["Sector"]["weekly"]
    assert cols["AlphaScore"]["where"] is False
    funcs = {f["name"]: f for f in body["functions"]}
    assert {"crosses_above", "highest", "pct_rank", "sector_rank", "ema"} <= set(funcs)
    assert funcs["crosses_above"]["signature"] == "crosses_above(a, b, within=1)"
    assert all(f["doc"] and "\n" not in f["doc"] for f in body["functions"])
    assert any(o["syntax"] == "W.name" for o in body["operators"])


def test_screen_routes_need_the_key_when_keys_are_set(backend):
    with TestClient(create_app(backend, api_keys=("k1",))) as c:
        for method, path in [("GET", "/v1/screens"), ("GET", "/v1/screens/golden-cross"),
                             ("PUT", "/v1/screens/api-key"), ("DELETE", "/v1/screens/x"),
                             ("GET", "/v1/screen/columns")]:
            r = c.request(method, path, json={"where": "RSI < 3"})
            assert r.status_code == 401, (method, path)
        key = {"X-API-Key": "k1"}
        assert c.put("/v1/screens/api-key", json={"where": "RSI < 3"},
                     headers=key).status_code == 200
        assert c.get("/v1/screens/api-key", headers=key).status_code == 200
        assert c.delete("/v1/screens/api-key", headers=key).status_code == 200


def test_an_unusable_database_is_503_saying_so(client, backend, monkeypatch, tmp_path):
    broken = tmp_path / "not-a-database"
    broken.mkdir()  # a directory where the file should be
    monkeypatch.setattr(backend, "screens", ScreenStore(broken))
    for r in (client.get("/v1/screens"), client.put("/v1/screens/x", json={}),
              client.post("/v1/scan", json={"screen": "x"})):
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert r.json()["detail"].startswith("saved screens unavailable: cannot ")
    # a preset needs no database: it still runs
    assert client.post("/v1/scan", json={"screen": "squeeze", "limit": 1}).status_code == 200


def test_openapi_documents_the_screen_routes(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert {"/v1/screens", "/v1/screens/{name}", "/v1/screen/columns"} <= set(paths)
    assert {"get", "put", "delete"} <= set(paths["/v1/screens/{name}"])
    assert {"404", "409", "422"} <= set(paths["/v1/screens/{name}"]["delete"]["responses"])
    scan = spec["components"]["schemas"]["ScanRequest"]["properties"]
    assert "screen" in scan
    definition = spec["components"]["schemas"]["ScreenDefinition"]["properties"]
    assert "where" in definition and "screen" not in definition
    assert orjson.dumps(spec)  # serialisable
