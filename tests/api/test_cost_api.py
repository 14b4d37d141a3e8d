"""The expression cost budget over HTTP: every route an expression enters refuses the cost
bomb with a 422 naming its costliest part and the budget, before a price is read.

An in-process backend (create_app over InProcessBackend) on a 5,000-symbol demo store with
six months of bars (the check needs the universe, not the history); the validate case runs on
the session's warm 500-symbol, six-year store, where the sessions multiply a screen a scan
accepts past the budget.
"""

from __future__ import annotations

import warnings

import pytest

from deployments.api.main import create_app
from technic_v4.data.demo import DemoSpec, build_demo_store
from technic_v4.screens.cost import Budget
from technic_v4.service.inprocess import InProcessBackend

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

BOMB = "sma(sma(sma(sma(Close,1260),1260),1260),1260) > 0"
BUDGET = Budget()


@pytest.fixture(scope="module")
def wide(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("cost-wide")
    build_demo_store(root, DemoSpec(n_symbols=5_000, start="2026-04-01"))
    backend = InProcessBackend(root, warm=False)
    with TestClient(create_app(backend, api_keys=())) as client:
        yield backend, client


def _refused(response, field: str = "where") -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    (entry,) = response.json()["detail"]
    assert entry["loc"][-1] == field
    assert entry["costliest"] == "sma(Close, 1260)" and (entry["line"], entry["column"]) == (
        1, 13)
    assert entry["max_reads"] == BUDGET.max_reads and entry["symbols"] == 5_000
    assert "sma(Close, 1260)" in entry["msg"] and "budget 6.0 billion" in entry["msg"]
    return entry


@pytest.mark.parametrize("method,path,body", [
    ("post", "/v1/scan", {"where": BOMB}),
    ("post", "/v1/scan", {"where": "RSI < 30", "rank": BOMB.removesuffix(" > 0")}),
    ("post", "/v1/scan/stream", {"where": BOMB}),
    ("put", "/v1/screens/bomb", {"where": BOMB}),
    ("post", "/v1/watches", {"name": "bomb", "definition": {"where": BOMB}}),
    ("post", "/v1/validate", {"where": BOMB}),
])
def test_every_entry_refuses_the_bomb_before_reading_prices(wide, method, path, body):
    backend, client = wide
    field = "rank" if "rank" in body else "where"
    _refused(getattr(client, method)(path, json=body), field)
    assert not backend.reader._panels  # no window of prices was loaded


def test_nothing_refused_is_kept(wide):
    backend, client = wide
    client.put("/v1/screens/bomb", json={"where": BOMB})
    client.post("/v1/watches", json={"name": "bomb", "definition": {"where": BOMB}})
    assert client.get("/v1/screens/bomb").status_code == 404
    assert client.get("/v1/watches/bomb").status_code == 404


def test_a_saved_bomb_is_refused_when_run(wide):
    """A screen saved before the budget existed (straight into the store) is checked when a
    scan names it."""
    backend, client = wide
    backend.screens.save("old-bomb", {"where": BOMB})
    _refused(client.post("/v1/scan", json={"screen": "old-bomb"}))


def test_sessions_multiply_a_validation(warm):  # type: ignore[no-untyped-def]
    where = "sma(sma(Close, 150), 150) > 0"
    with TestClient(create_app(warm, api_keys=())) as client:
        refused = client.post("/v1/validate", json={"where": where})
        assert refused.status_code == 422, refused.text
        (entry,) = refused.json()["detail"]
        assert entry["sessions"] > 1_000 and entry["reads"] > BUDGET.max_reads
        assert "sessions" in entry["msg"]
        assert client.post("/v1/scan", json={"where": where, "limit": 1}).status_code == 200
