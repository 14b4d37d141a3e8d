"""Hostile input: schemathesis over our own OpenAPI, and the limits of deployments/api/limits.py.

The fuzz run drives the in-process app (no Ray, no sockets) with cases generated from the
schema, valid and invalid, for every operation: nothing may answer 5xx, and every answer
must be a status code, content type and body the schema documents. Bounded to
`FUZZ_EXAMPLES` cases per operation (~30 s in all).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from serve_support import custom_store

from deployments.api.main import create_app
from technic_v4.screens.saved import DB_NAME, ScreenStore
from technic_v4.service.inprocess import InProcessBackend

pytestmark = pytest.mark.slow  # schemathesis over every operation

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

FUZZ_EXAMPLES = 25
VALIDATE_EXAMPLES = 6
HANG_GUARD_S = 600  # a case that takes this long hangs; speed is bench/'s business
NOT_FUZZED = "/v1/validate|/v1/events|/v1/watches"


@pytest.fixture(scope="module")
def backend(warm, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The session's warm store and models (conftest.py), with a screen database of its own
    for the screens the fuzzer saves."""
    screens = ScreenStore(tmp_path_factory.mktemp("fuzz-screens") / DB_NAME)
    fuzzed = InProcessBackend(warm.reader.data_dir, warm.models_dir, chunk_size=128,
                              warm=False, screens=screens)
    fuzzed.warm()
    return fuzzed


@pytest.fixture(scope="module")
def app(backend):
    return create_app(backend, api_keys=())


@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def small_schema(warm, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The app over a 60-symbol, three-year store: a valid validation case replays every
    session, which on the warm store takes seconds per case."""
    root = tmp_path_factory.mktemp("fuzz-small")
    small = InProcessBackend(custom_store(root / "data", lambda u, c: u), warm.models_dir,
                             chunk_size=128, warm=False, screens=ScreenStore(root / DB_NAME))
    small.warm()
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(small, api_keys=()))


schema = schemathesis.pytest.from_fixture("api_schema")
validation_schema = schemathesis.pytest.from_fixture("small_schema")


# Not fuzzed here: /v1/events (a stream that waits for events until the client leaves) and
# /v1/watches (creating one resolves its targets' hosts in DNS and /test sends to them: no
# requests to the outside from tests); tests/watch/test_watch_api.py covers both.
@schema.exclude(path_regex=NOT_FUZZED).parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_fuzz_every_operation(case):
    # Schema-valid is not always acceptable: sectors, industries and as_of_date are checked
    # against the data (a 422 naming the valid values), so that one check is left out.
    _check(case)


@validation_schema.include(path_regex="/v1/validate").parametrize()
@settings(max_examples=VALIDATE_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_fuzz_validation(case):
    """The validation routes too, on a small store, fewer cases."""
    _check(case)


def _check(case) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(excluded_checks=[positive_data_acceptance], timeout=HANG_GUARD_S)


def test_fuzz_reaches_every_operation(app):
    """The exclusions above leave the 14 operations the fuzz run is meant for: scan,
    stream, universe, sectors, symbols, models, stats, healthz, readyz and the five screen
    routes (list, get, put, delete, columns)."""
    methods = {"get", "put", "post", "delete", "patch"}
    fuzzed = sorted((method, path) for path, item in app.openapi()["paths"].items()
                    for method in item if method in methods
                    and not re.match(NOT_FUZZED, path))
    assert len(fuzzed) >= 14, fuzzed
    assert {path for _, path in fuzzed} >= {"/v1/scan", "/v1/scan/stream", "/healthz"}


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


def test_body_over_64k_is_413_before_parsing(client):
    big = b'{"symbols": [' + b'"AAPL",' * 12_000 + b'"MSFT"]}'
    r = client.post("/v1/scan", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "65536 bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: counted while it streams
        yield b'{"symbols": ['
        for _ in range(12_000):
            yield b'"AAPL",'
        yield b'"MSFT"]}'

    r = client.post("/v1/scan/stream", content=chunks(),
                    headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.headers["x-technic-data-version"]


@pytest.mark.parametrize("body,field", [
    ({"symbols": [f"A{i}" for i in range(5_001)]}, "symbols"),
    ({"industries": ["x"] * 201}, "industries"),
    ({"sectors": ["Energy"] * 100}, "sectors"),
    ({"industries": ["x" * 101]}, "industries"),
    ({"limit": 100_001}, "limit"),
    ({"lookback_days": 1261}, "lookback_days"),
    ({"symbols": ["AAPL\x00"]}, "symbols"),
    ({"symbols": ["..%2F..%2Fetc"]}, "symbols"),
    ({"symbols": ["../../etc/passwd"]}, "symbols"),
    ({"symbols": ["AAPL/../MSFT"]}, "symbols"),
])
def test_list_lengths_bounds_and_symbol_patterns(client, body, field):
    r = client.post("/v1/scan", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["field"].split(".")[0] in (field, "max_symbols")


@pytest.mark.parametrize("path", [
    "/v1/symbols/..%2F..%2Fetc%2Fpasswd", "/v1/symbols/%2e%2e", "/v1/symbols/AAPL%00",
    "/v1/symbols/%00", "/v1/symbols/..", "/v1/symbols/A..B", "/v1/symbols/AAPL%2F..",
    "/v1/symbols/AAPL%5C..%5Cx", "/v1/symbols/%252e%252e%252f", "/v1/symbols/../../etc/passwd",
    "/web/../../pyproject.toml", "/web/..%2F..%2Fpyproject.toml", "/web/%00",
])
def test_path_traversal_never_reaches_the_store(client, backend, monkeypatch, path):
    looked_up = []
    monkeypatch.setattr(backend, "symbol", lambda *a: looked_up.append(a))
    r = client.get(path)
    assert r.status_code in (404, 422), (path, r.status_code)
    assert looked_up == [] and b"[build-system]" not in r.content


def test_serve_config_bounds_request_time():
    import yaml

    config = Path(__file__).parents[2] / "serve_config.yaml"
    http = yaml.safe_load(config.read_text())["http_options"]
    assert 0 < http["request_timeout_s"] <= 300  # Serve's proxy ends requests past it
