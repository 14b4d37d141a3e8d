"""POST /v1/validate and its stream over the in-process app: the same report as the library,
the daily series as CSV, errors as for a scan."""

from __future__ import annotations

import io
import warnings

import orjson
import pandas as pd
import pytest
from serve_support import ndjson

from deployments.api.main import create_app
from technic_v4.scan import ScanConfig
from technic_v4.validate import ValidateOptions, validate

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

BODY = {"where": "pct_rank(mom_21) > 0.7", "rank": "mom_21", "horizons": [5, 21], "top_n": 10}


@pytest.fixture(scope="module")
def client(warm):  # type: ignore[no-untyped-def]
    with TestClient(create_app(warm, api_keys=())) as c:
        yield c


def test_report_equals_the_library(client, warm):
    r = client.post("/v1/validate", json=BODY)
    assert r.status_code == 200, r.text
    got = r.json()
    want = validate(ScanConfig(where=BODY["where"], rank=BODY["rank"]), warm.reader,
                    ValidateOptions(horizons=(5, 21), top=10))
    for h in ("5", "21"):
        assert got["report"]["horizons"][h]["passing_excess"] == \
            want.report["horizons"][h]["passing_excess"]
    assert got["daily"]["session"] == want.daily["session"].tolist()
    assert r.headers["x-technic-data-version"] == got["meta"]["data_version"]
    again = client.post("/v1/validate", json=BODY)
    assert again.headers["x-technic-cache"] == "hit"


def test_daily_series_as_csv(client):
    r = client.post("/v1/validate", json={**BODY, "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    frame = pd.read_csv(io.StringIO(r.text))
    assert {"session", "passing", "excess_5d", "rank_ic_21d", "portfolio_net"} <= set(frame)


def test_stream_progress_then_result(client):
    with client.stream("POST", "/v1/validate/stream", json=BODY) as r:
        assert r.status_code == 200
        events = ndjson("".join(r.iter_text()))
    stages = [e["stage"] for e in events if e["event"] == "progress"]
    assert stages[0] == "indicators" and "replay" in stages
    assert events[-1]["event"] == "result" and "5" in events[-1]["report"]["horizons"]


@pytest.mark.parametrize("body, field", [({"where": "RSII > 3"}, "where"),
                                         ({"horizons": [0]}, "horizons.0"),
                                         ({"where": "Alpha5d > 0"}, "where"),
                                         ({"sectors": ["Crypto"]}, "sectors")])
def test_bad_requests_are_422_on_both(client, body, field):
    for path in ("/v1/validate", "/v1/validate/stream"):
        r = client.post(path, json=body)
        if r.status_code == 200:  # the stream's checks that need the replay come as a line
            event = orjson.loads(r.text.strip().splitlines()[-1])
            assert event["event"] == "error" and event["status"] == 422, event
            continue
        assert r.status_code == 422, (path, r.text)
        assert r.json()["detail"][0]["field"].startswith(field.split(".")[0]), r.text


def test_saved_screen_by_name_and_its_new_version(client, warm):
    """A saved screen validates as its fields inline, the report names it, and saving a new
    version is never answered from the old version's cached report."""
    name = "validate-by-name"
    warm.screens.save(name, {"where": BODY["where"], "rank": BODY["rank"]})
    opts = {"horizons": [5], "top_n": 10}
    by_name = client.post("/v1/validate", json={"screen": name, **opts})
    inline = client.post("/v1/validate", json={"where": BODY["where"], "rank": BODY["rank"],
                                               **opts})
    assert by_name.status_code == 200, by_name.text
    assert by_name.json()["report"]["saved_screen"] == {"name": name, "version": 1,
                                                        "preset": False}
    assert by_name.json()["daily"] == inline.json()["daily"]
    warm.screens.save(name, {"where": "pct_rank(mom_21) < 0.3", "rank": BODY["rank"]})
    second = client.post("/v1/validate", json={"screen": name, **opts})
    assert second.headers["x-technic-cache"] == "miss"
    assert second.json()["report"]["saved_screen"]["version"] == 2
    assert second.json()["daily"]["passing"] != by_name.json()["daily"]["passing"]
    unknown = client.post("/v1/validate", json={"screen": "no-such-screen", **opts})
    assert unknown.status_code == 422 and "golden-cross" in unknown.text


def test_idle_server_drops_what_a_validation_cached(client, warm):
    """Once no heavy request runs, the whole history the replay read and the expression
    windows of a where-scan are dropped from the caches; a plain scan's rows stay."""
    import threading

    from technic_v4.service.backend import IDLE_WINDOW_BARS

    assert client.post("/v1/scan", json={"max_symbols": 5}).status_code == 200
    assert client.post("/v1/scan", json={"where": "sma(Close, 300) > 0",
                                         "max_symbols": 5}).status_code == 200
    r = client.post("/v1/validate", json={**BODY, "horizons": [1]},
                    headers={"cache-control": "no-cache"})
    assert r.status_code == 200, r.text
    for thread in threading.enumerate():  # the idle hook's thread (deployments/api/work.py)
        if thread.name == "technic-trim":
            thread.join(60)  # a hang guard, not a timing bound
    held = warm.reader.cached_sessions()  # the replay read 1,464 sessions (and scans' rows)
    assert all(n <= IDLE_WINDOW_BARS for n in held), held
    assert len(warm.evaluations) >= 1  # the plain scan's rows are kept ...
    assert warm.evaluations.release() == 0  # ... and nothing with expression windows
