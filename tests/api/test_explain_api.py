"""GET /v1/symbols/{symbol}/explain in-process (TestClient over the warm InProcessBackend):
the library's answer as JSON, the response schema, the X-Technic-* headers, and the documented
errors (malformed symbol 422, unknown 404, as_of_date 422)."""

from __future__ import annotations

import warnings

import orjson
import pytest

from deployments.api.main import create_app
from deployments.api.schemas import ExplainResponse
from technic_v4.alpha.inference import ModelSet
from technic_v4.scan.explain import explain
from technic_v4.scanner_core import ScanConfig, run_scan

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def client(warm):
    with TestClient(create_app(warm, api_keys=())) as c:
        yield c


@pytest.fixture(scope="module")
def symbol(client) -> str:
    return client.get("/v1/universe?sector=Energy").json()["rows"][0]["symbol"]


def test_explain_is_the_library_answer(client, warm, symbol):
    r = client.get(f"/v1/symbols/{symbol.lower()}/explain")
    assert r.status_code == 200, r.text
    body = r.json()
    ExplainResponse.model_validate(body)
    expected = explain(warm.reader, ModelSet(warm.models_dir), symbol)
    assert body == orjson.loads(orjson.dumps(expected))  # NaN -> null, as JSONBody sends
    meta = body["meta"]
    assert r.headers["x-technic-data-version"] == meta["data_version"]
    assert r.headers["x-technic-as-of"] == meta["as_of"] == warm.data_info().as_of
    assert r.headers["x-technic-models"] == meta["models_version"]
    assert meta["scoring_version"] == "1.0" and meta["source"] == "synthetic"
    assert body["alpha"]["available"] and len(body["tech_rating"]["sub_scores"]) == 6


def test_as_of_date_matches_the_scan_as_of_that_date(client, warm, symbol):
    body = client.get(f"/v1/symbols/{symbol}/explain?as_of_date=2025-03-01").json()
    assert body["meta"]["as_of"] == "2025-02-28"  # a Saturday: the session before
    frame, status = run_scan(ScanConfig(as_of_date="2025-03-01", symbols=[symbol]),
                             loader=warm.reader, models_dir=warm.models_dir)
    row = frame.iloc[0]
    assert status.as_of == "2025-02-28"
    assert abs(body["tech_rating"]["value"] - row["TechRating"]) <= 1e-9
    assert body["tech_rating"]["signal"]["value"] == row["Signal"]
    for model in body["alpha"]["models"]:
        assert abs(model["forecast"] - row[model["column"]]) <= 1e-7


@pytest.mark.parametrize(("path", "status", "field"), [
    ("/v1/symbols/ZZZZZ/explain", 404, None),
    ("/v1/symbols/a$b/explain", 422, "symbol"),
    ("/v1/symbols/AAPL%00/explain", 422, "symbol"),
    ("/v1/symbols/{sym}/explain?as_of_date=1990-01-01", 422, "as_of_date"),
    ("/v1/symbols/{sym}/explain?as_of_date=yesterday", 422, "as_of_date"),
])
def test_documented_errors(client, symbol, path, status, field):
    r = client.get(path.format(sym=symbol))
    assert r.status_code == status, r.text
    if field is not None:
        entry = r.json()["detail"][0]
        assert entry["field"] == field
        assert entry["loc"][0] == ("path" if field == "symbol" else "query")
    else:
        assert "ZZZZZ" in r.json()["detail"]


def test_explain_is_documented_and_keyed(client, warm, symbol):
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/symbols/{symbol}/explain"]["get"]
    assert {"200", "404", "422"} <= set(op["responses"])
    assert [p["name"] for p in op["parameters"]][:2] == ["symbol", "as_of_date"]
    with TestClient(create_app(warm, api_keys=("k1",))) as keyed:
        assert keyed.get(f"/v1/symbols/{symbol}/explain").status_code == 401
        ok = keyed.get(f"/v1/symbols/{symbol}/explain", headers={"X-API-Key": "k1"})
        assert ok.status_code == 200
