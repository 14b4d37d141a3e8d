"""The HTTP API without Ray: `create_app` over the in-process backend, through TestClient.

Same routes, validation, cache and serialisation as the Serve app; only where chunks run
differs. Covers every documented error case, the result cache, streaming and API keys.
"""

from __future__ import annotations

import asyncio
import warnings

import numpy as np
import orjson
import pandas as pd
import pytest
from serve_support import (
    assert_progress_ordered,
    demo_store,
    ndjson,
    parquet_frame,
    tiny_models,
)

from deployments.api.cache import CachedBody, ResultCache
from deployments.api.main import create_app
from technic_v4.alpha.inference import MODEL_FEATURES, ModelSet, predict_many
from technic_v4.data.reader import StoreReader
from technic_v4.data.universe import GICS_SECTORS
from technic_v4.scanner_core import ScanConfig, run_scan
from technic_v4.service.inprocess import InProcessBackend

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    return demo_store(root / "data"), tiny_models(root / "models")


@pytest.fixture(scope="module")
def backend(dirs):
    b = InProcessBackend(dirs[0], dirs[1], chunk_size=128, warm=False)
    b.warm()
    return b


@pytest.fixture(scope="module")
def client(backend):
    with TestClient(create_app(backend, api_keys=())) as c:
        yield c


@pytest.fixture()
def reference(dirs, monkeypatch):
    """run_scan in this process on the same store and models: what the API must return."""
    monkeypatch.setenv("TECHNIC_MODELS_DIR", str(dirs[1]))
    return lambda cfg: run_scan(cfg, loader=StoreReader(dirs[0]))


def test_not_ready_until_warm_then_ready(dirs):
    cold = InProcessBackend(dirs[0], dirs[1], chunk_size=128, warm=False)
    with TestClient(create_app(cold, api_keys=())) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["ready"] is False
        cold.warm()
        body = client.get("/readyz").json()
        assert body["ready"] and body["checks"]["models"]["available"]


@pytest.mark.parametrize("config", [ScanConfig(), ScanConfig(sectors=["Technology"],
                                                             max_symbols=7)])
def test_scan_equals_run_scan(client, reference, config):
    frame, status = reference(config)
    assert status.alpha["available"] and frame["Alpha5d"].notna().all()
    req = {"sectors": config.sectors, "limit": config.max_symbols, "format": "parquet"}
    r = client.post("/v1/scan", json={k: v for k, v in req.items() if v is not None})
    assert r.status_code == 200
    pd.testing.assert_frame_equal(parquet_frame(r.content), frame, check_exact=True)
    j = client.post("/v1/scan", json={k: v for k, v in req.items() if k != "format" and v})
    assert j.json()["rows"] == orjson.loads(_json_rows(frame))
    meta = j.json()["meta"]
    assert (meta["attempted"], meta["kept"], meta["rejected"]) == (
        status.attempted, status.kept, status.rejected)
    assert j.headers["x-technic-source"] == "synthetic" == meta["source"]
    assert j.headers["x-technic-data-version"] == status.data_version


def test_chosen_and_read_columns_equal_run_scan(client, reference):
    """`columns` over HTTP: Symbol, the chosen columns, then what the where / rank read and
    RankValue, as run_scan gives them; Sector == "Tech" is the sector filter Tech."""
    cfg = ScanConfig(columns=["EMA50", "beta_60", "RSI"], where='ADX > 15 and Sector == "Tech"',
                     rank="mom_63 / ATR_pct")
    frame, _ = reference(cfg)
    assert list(frame.columns) == ["Symbol", "EMA50", "beta_60", "RSI", "ADX", "Sector",
                                   "mom_63", "ATR_pct", "RankValue"]
    assert len(frame) and set(frame["Sector"]) == {"Information Technology"}
    r = client.post("/v1/scan", json={"columns": cfg.columns, "where": cfg.where,
                                      "rank": cfg.rank, "format": "parquet"})
    assert r.status_code == 200, r.text
    pd.testing.assert_frame_equal(parquet_frame(r.content), frame, check_exact=True)


def test_rank_value_is_each_requests_own(client, reference):
    """JSON rows are joined from pre-rendered pieces per evaluation: a ranked request after an
    unranked one on the same evaluation, then another rank expression, each shows its own
    RankValue (and chosen columns are rendered as they are)."""
    client.post("/v1/scan", json={"limit": 5})
    for rank in ("mom_63 / ATR_pct", "mom_21 / ATR_pct"):
        frame, _ = reference(ScanConfig(rank=rank, max_symbols=5))
        rows = client.post("/v1/scan", json={"limit": 5, "rank": rank}).json()["rows"]
        assert [r["RankValue"] for r in rows] == frame["RankValue"].tolist()
    rows = client.post("/v1/scan", json={"limit": 5, "columns": ["RSI"]}).json()["rows"]
    assert [list(r) for r in rows] == [["Symbol", "RSI"]] * 5


def _json_rows(frame):
    from technic_v4.formats import to_json

    return orjson.dumps(orjson.loads(to_json(frame, {}))["rows"])


def test_formats_by_accept_header(client):
    csv = client.post("/v1/scan", json={"limit": 3}, headers={"Accept": "text/csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("Symbol,Sector,Industry,Close")
    assert len(csv.text.splitlines()) == 4
    pq = client.post("/v1/scan", json={"limit": 3},
                     headers={"Accept": "application/vnd.apache.parquet"})
    assert len(parquet_frame(pq.content)) == 3


def test_stream_progress_then_same_result(client):
    r = client.post("/v1/scan/stream", json={"sectors": ["Energy", "Utilities"]})
    assert r.headers["content-type"].startswith("application/x-ndjson")
    events = ndjson(r.text)
    assert_progress_ordered(events[:-1])
    assert events[-1]["event"] == "result"
    plain = client.post("/v1/scan", json={"sectors": ["Energy", "Utilities"]}).json()
    assert events[-1]["rows"] == plain["rows"]


def test_cache_hits_misses_and_no_cache(client):
    before = client.get("/v1/stats").json()["cache"]
    body = {"sectors": ["Materials"], "min_tech_rating": 5}
    first = client.post("/v1/scan", json=body)
    again = client.post("/v1/scan", json={"min_tech_rating": 5.0, "sectors": ["basic materials"]})
    fresh = client.post("/v1/scan", json=body, headers={"Cache-Control": "no-cache"})
    assert [first.headers["x-technic-cache"], again.headers["x-technic-cache"],
            fresh.headers["x-technic-cache"]] == ["miss", "hit", "miss"]
    assert first.content == again.content
    after = client.get("/v1/stats").json()["cache"]
    assert after["hits"] == before["hits"] + 1 and after["misses"] == before["misses"] + 2


def test_result_cache_bounds_and_shares_inflight():
    cache = ResultCache(max_entries=2, max_bytes=10)
    for i in range(3):
        cache.put((i,), CachedBody(b"abc", "x"))
    assert cache.get((0,)) is None and cache.get((2,)) is not None and cache.evictions == 1
    cache.put((9,), CachedBody(b"0123456789", "x"))  # 10 bytes: evicts down to the bound
    assert cache.bytes <= 10
    calls = []

    async def compute():
        calls.append(1)
        await asyncio.sleep(0.01)
        return CachedBody(b"r", "x")

    async def burst():
        return await asyncio.gather(*(cache.get_or_compute(("k",), compute) for _ in range(5)))

    out = asyncio.run(burst())
    assert len(calls) == 1 and sorted(h for _, h in out) == ["miss"] + ["shared"] * 4


BAD_SCANS = [
    ({"sectors": ["Technologyy"]}, "sectors", "Information Technology"),
    ({"sort_by": "Price"}, "sort_by", "TechRating"),
    ({"signals": ["Buy"]}, "signals", "Strong Long"),
    ({"format": "xml"}, "format", "parquet"),
    ({"industries": ["Widgets"]}, "industries", "Biotechnology"),
    ({"as_of_date": "1990-01-02"}, "as_of_date", None),
    ({"as_of_date": "not a date"}, "as_of_date", None),
    ({"symbols": ["../etc"]}, "symbols", None),
    ({"symbols": []}, "symbols", None),
    ({"limit": 0}, "limit", None),
    ({"lookback_days": 100000}, "lookback_days", None),
    ({"min_price": -1}, "min_price", None),
    ({"colour": "red"}, "colour", None),
    ({"exclude_flags": ["splitt"]}, "exclude_flags", "split"),
    ({"columns": ["RSI", "NOPE"]}, "columns", "EMA50"),
    ({"where": 'Sector == "Techno"'}, "where", None),
    ({"where": 'Industry == "Widgets"'}, "where", "Biotechnology"),
]


@pytest.mark.parametrize("body,field,valid", BAD_SCANS)
def test_bad_scan_is_422_naming_field_and_valid_values(client, body, field, valid):
    for path in ("/v1/scan", "/v1/scan/stream"):
        r = client.post(path, json=body)
        assert r.status_code == 422, (path, r.text)
        entry = r.json()["detail"][0]
        assert entry["field"].split(".")[0] == field, entry
        if valid is not None:
            assert valid in entry["valid"], entry
        assert r.headers["x-technic-data-version"]


def test_other_errors(client):
    assert client.post("/v1/scan", content=b"{not json",
                       headers={"content-type": "application/json"}).status_code == 422
    r = client.post("/v1/scan", json={}, headers={"Accept": "text/html"})
    assert r.status_code == 406 and "csv" in r.json()["detail"][0]["valid"]
    assert client.post("/v1/scan/stream", json={"format": "csv"}).status_code == 422
    assert client.get("/v1/symbols/ZZZZZ").status_code == 404
    bad = client.get("/v1/symbols/a$b")
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "symbol"
    sym = client.get("/v1/universe").json()["rows"][0]["symbol"]
    for days in (0, 1261, "x"):
        assert client.get(f"/v1/symbols/{sym}?days={days}").status_code == 422
    r = client.get("/v1/universe?sector=Nowhere")
    assert r.status_code == 422 and "Energy" in r.json()["detail"][0]["valid"]
    assert client.get("/v1/universe?industry=Widgets").status_code == 422


def test_unknown_symbols_in_a_scan_are_reported_not_fatal(client):
    sym = client.get("/v1/universe").json()["rows"][0]["symbol"]
    meta = client.post("/v1/scan", json={"symbols": [sym.lower(), "ZZZZZ"]}).json()["meta"]
    assert meta["attempted"] == 2 and meta["errors"] == 1
    assert meta["error_details"][0]["symbol"] == "ZZZZZ"


def test_universe_sectors_symbol_models(client, dirs):
    uni = client.get("/v1/universe").json()
    assert uni["count"] == 500 and uni["meta"]["source"] == "synthetic"
    tech = client.get("/v1/universe?sector=technology").json()
    assert {r["sector"] for r in tech["rows"]} == {"Information Technology"}
    sectors = client.get("/v1/sectors").json()["sectors"]
    assert [s["name"] for s in sectors] == list(GICS_SECTORS)
    assert sum(s["symbols"] for s in sectors) == 500
    sym = uni["rows"][0]["symbol"]
    h = client.get(f"/v1/symbols/{sym.lower()}?days=30").json()
    panel = StoreReader(dirs[0]).load(None, 30)
    row = list(panel.symbols).index(sym)
    assert h["symbol"] == sym and len(h["sessions"]) == 30
    assert h["sessions"][-1] == str(panel.sessions[-1].date())
    np.testing.assert_array_equal(np.array(h["bars"]["close"], dtype=float), panel.close[row])
    assert {"RSI", "MACD", "BB_width", "ATR_pct"} <= set(h["indicators"])
    models = client.get("/v1/models").json()
    assert models["available"] and {m["id"] for m in models["metadata"]} == {
        "alpha_5d", "alpha_10d"}
    assert models["loaded"]["alpha_5d"]["test_rank_ic"] == 0.01


def test_api_keys(backend):
    with TestClient(create_app(backend, api_keys=("k1", "k2"))) as c:
        assert c.post("/v1/scan", json={"limit": 1}).status_code == 401
        assert c.get("/v1/universe", headers={"X-API-Key": "k3"}).status_code == 401
        assert c.get("/v1/universe", headers={"X-API-Key": "k2"}).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        assert c.get("/openapi.json").status_code == 200


def test_openapi_documents_the_api(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/scan", "/v1/scan/stream", "/v1/universe", "/v1/sectors",
            "/v1/symbols/{symbol}", "/v1/models", "/healthz", "/readyz"} <= set(spec["paths"])
    scan = spec["paths"]["/v1/scan"]["post"]
    assert {"text/csv", "application/json"} <= set(scan["responses"]["200"]["content"])
    assert "422" in scan["responses"]


def test_batch_prediction_equals_one_call_per_request(dirs):
    rng = np.random.default_rng(1)
    models = ModelSet(dirs[1])
    items = [{k: rng.normal(size=n) for k in MODEL_FEATURES} for n in (3, 0, 5)]
    together = predict_many(models, items)
    for item, out in zip(items, together, strict=True):
        alone = predict_many(models, [item])[0]
        np.testing.assert_array_equal(out.values[5], alone.values[5])
        np.testing.assert_array_equal(out.values[10], alone.values[10])


def test_any_source_text_travels_in_headers(tmp_path):
    """A store whose source holds non-Latin-1 text (an ingested file's name): every answer is
    still 200, the header percent-encodes it and the JSON meta keeps it raw."""
    from urllib.parse import unquote

    from serve_support import custom_store

    source = "ingest:أسعار\u200f 100%.csv"
    data = custom_store(tmp_path / "data", lambda uni, close: uni, source=source)
    backend = InProcessBackend(data, tiny_models(tmp_path / "models"), warm=False)
    backend.warm()
    with TestClient(create_app(backend, api_keys=())) as c:
        r = c.post("/v1/scan", json={"limit": 3})
        assert r.status_code == 200 and r.json()["meta"]["source"] == source
        assert r.headers["x-technic-source"].isascii()
        assert unquote(r.headers["x-technic-source"]) == source
        for path in ("/v1/sectors", "/healthz", "/v1/symbols/ZZZZZZ"):
            got = c.get(path)
            assert got.status_code in (200, 404)
            assert unquote(got.headers["x-technic-source"]) == source


def test_readyz_shows_the_last_data_update_and_a_failure(dirs):
    """A failed `data update` (providers/update.json) is visible in /readyz, never silent;
    the store still scans, so readiness itself does not change."""
    from technic_v4.data.providers.base import STATUS, write_status

    cold = InProcessBackend(dirs[0], dirs[1], chunk_size=128, warm=False)
    try:
        with TestClient(create_app(cold, api_keys=())) as client:
            assert "update" not in client.get("/readyz").json()["checks"]
            write_status(dirs[0], {"at": "2026-12-07 21:31:00+00:00", "ok": False,
                                   "provider": "yahoo", "error": "1 failed (AAA)"})
            update = client.get("/readyz").json()["checks"]["update"]
            assert update["ok"] is False and update["error"] == "1 failed (AAA)"
            assert "technic_data_update_ok 0.0" in client.get("/metrics").text
    finally:
        (dirs[0] / STATUS).unlink(missing_ok=True)
