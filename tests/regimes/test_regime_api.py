"""GET /v1/regimes and the scan meta's regime_tags, through the in-process app; `technic
regimes` on the same store."""

from __future__ import annotations

import warnings

import orjson
import pytest
from serve_support import demo_store, tiny_models
from typer.testing import CliRunner

from deployments.api.main import create_app
from technic_v4.cli.main import app as cli
from technic_v4.data.reader import StoreReader
from technic_v4.regimes import REGIMES, regime_series
from technic_v4.service.inprocess import InProcessBackend

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("regimes-api")
    return demo_store(root / "data"), tiny_models(root / "models")


@pytest.fixture(scope="module")
def client(dirs):
    backend = InProcessBackend(dirs[0], dirs[1], chunk_size=128, warm=False)
    backend.warm()
    with TestClient(create_app(backend, api_keys=())) as c:
        yield c


@pytest.fixture(scope="module")
def series(dirs):
    reader = StoreReader(dirs[0])
    return regime_series(reader.load(None, len(reader.snapshot().sessions)))


def test_the_timeline_is_every_sessions_regime(client, series) -> None:
    r = client.get("/v1/regimes")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["columns"]["regime"] == list(series.regime)
    assert body["columns"]["session"] == list(series.sessions.strftime("%Y-%m-%d"))
    assert body["regimes"] == list(REGIMES) and body["benchmark"] == "equal-weighted universe"
    assert sum(s["sessions"] for s in body["spans"]) == len(series.sessions)
    assert r.headers["X-Technic-Data-Version"] == series.data_version
    part = client.get("/v1/regimes", params={"start": "2024-01-01", "end": "2024-12-31"}).json()
    assert part["first_session"] >= "2024-01-01" and part["last_session"] <= "2024-12-31"
    assert sum(v["sessions"] for v in part["shares"].values()) == len(part["columns"]["session"])


@pytest.mark.parametrize("params,field", [({"benchmark": "ZZZZ"}, "benchmark"),
                                          ({"benchmark": "a b"}, "benchmark"),
                                          ({"start": "yesterday"}, "start")])
def test_bad_regime_queries_are_422_naming_the_field(client, params, field) -> None:
    r = client.get("/v1/regimes", params=params)
    assert r.status_code == 422, r.text
    assert field in r.text


def test_the_scan_meta_carries_the_regime_tags(client, series) -> None:
    body = client.post("/v1/scan", json={"limit": 5, "as_of_date": "2025-06-02"}).json()
    tags = body["meta"]["regime_tags"]
    assert tags == series.tags_at(series.index_of("2025-06-02"))
    bad = client.post("/v1/scan", json={"regime_benchmark": "ZZZZ"})
    assert bad.status_code == 422 and "regime_benchmark" in bad.text


def test_the_cli_prints_the_timeline_and_the_scans_regime(dirs, series) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["regimes", "--data-dir", str(dirs[0]), "-f", "json"])
    assert out.exit_code == 0, out.output
    assert orjson.loads(out.stdout)["columns"]["regime"] == list(series.regime)
    table = runner.invoke(cli, ["regimes", "--data-dir", str(dirs[0])])
    assert "trend_up/calm" in table.stdout and "share" in table.stdout
    scan = runner.invoke(cli, ["scan", "--data-dir", str(dirs[0]), "--max-symbols", "3"],
                         env={"TECHNIC_MODELS_DIR": str(dirs[1])})
    assert scan.exit_code == 0, scan.output
    assert f"regime: {series.regime[-1]}" in scan.stderr


def test_technic_validate_prints_a_table_by_regime(dirs) -> None:
    out = CliRunner().invoke(cli, ["validate", "--data-dir", str(dirs[0]), "--screen",
                                   "momentum-leaders", "--start", "2025-06-01", "--horizon",
                                   "5"])
    assert out.exit_code == 0, out.output
    assert "by market regime (benchmark equal-weighted universe" in out.stdout
    report = CliRunner().invoke(cli, ["validate", "--data-dir", str(dirs[0]), "--screen",
                                      "momentum-leaders", "--start", "2025-06-01",
                                      "--horizon", "5", "--format", "json"])
    cells = orjson.loads(report.stdout)["horizons"]["5"]["by_regime"]
    for name in cells:
        assert any(line.split("│")[1].strip() == name for line in out.stdout.splitlines()
                   if line.count("│") > 3), name
