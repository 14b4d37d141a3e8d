"""One answer to the same bad input, wherever it is sent: the library, the CLI, HTTP, the stream.

For each case the library raises ConfigError(field, message, valid); the CLI prints one
`error:` line with that message and exits 2; POST /v1/scan and /v1/scan/stream answer 422
(before any stream starts) naming the same field with the same valid values. A store that
changes under every attempt of a scan (stale data) is StaleDataError in the library and the
CLI, and 503 with Retry-After over HTTP, plain and streamed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest
from serve_support import tiny_models

from deployments.api.main import create_app
from technic_v4.data.demo import DemoSpec, build_demo_store
from technic_v4.data.reader import StoreReader
from technic_v4.errors import ConfigError, StaleDataError
from technic_v4.scan import ScanConfig, run_scan
from technic_v4.service.inprocess import InProcessBackend

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

# (ScanConfig fields, CLI args, HTTP body, field named, a valid value that must be listed)
CASES = {
    "unknown industry": ({"industries": ["Widgets"]}, ["--industry", "Widgets"],
                         {"industries": ["Widgets"]}, "industries", "Software"),
    "unknown sector": ({"sectors": ["Crypto"]}, ["--sector", "Crypto"],
                       {"sectors": ["Crypto"]}, "sectors", "Health Care"),
    "bad symbol": ({"symbols": ["../etc"]}, ["--symbol", "../etc"],
                   {"symbols": ["../etc"]}, "symbols", None),
    "as-of before the store": ({"as_of_date": "1990-01-02"}, ["--as-of", "1990-01-02"],
                               {"as_of_date": "1990-01-02"}, "as_of_date", None),
    "unknown signal": ({"signals": ["Buy now"]}, ["--signal", "Buy now"],
                       {"signals": ["Buy now"]}, "signals", "Strong Long"),
    "unknown sort column": ({"sort_by": "Price"}, ["--sort-by", "Price"],
                            {"sort_by": "Price"}, "sort_by", "TechRating"),
}


@pytest.fixture(scope="module")
def dirs(warm):  # type: ignore[no-untyped-def]
    """The session's warm backend (conftest.py): its store and models."""
    return warm.reader.data_dir, warm.models_dir


@pytest.fixture(scope="module")
def client(warm):  # type: ignore[no-untyped-def]
    with TestClient(create_app(warm, api_keys=())) as c:
        yield c


def _library(dirs, fields) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        run_scan(ScanConfig(**fields), loader=StoreReader(dirs[0]), models_dir=dirs[1])
    return info.value


def _cli(dirs, args) -> subprocess.CompletedProcess:
    env = dict(os.environ, TECHNIC_DATA_DIR=str(dirs[0]), TECHNIC_MODELS_DIR=str(dirs[1]))
    return subprocess.run([sys.executable, "-m", "technic_v4.cli", "scan", *args], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_same_answer_everywhere(case, dirs, client):
    fields, args, body, field, valid = CASES[case]
    exc = _library(dirs, fields)
    assert exc.field == field, exc.as_dict()
    if valid is not None:
        assert valid in exc.valid

    proc = _cli(dirs, args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "error:" in proc.stderr
    assert exc.message.split(";")[0][:40] in " ".join(proc.stderr.split()), proc.stderr

    for path in ("/v1/scan", "/v1/scan/stream"):
        r = client.post(path, json=body)
        assert r.status_code == 422, (path, r.status_code, r.text[:300])
        (entry,) = r.json()["detail"]
        assert entry["field"] == field, (path, entry)
        if valid is not None:
            assert valid in entry["valid"], (path, entry)


def _flipping(root):
    """Rewrite the store at `root` to another version (a real store change)."""
    seeds = iter(range(100, 10_000))

    def flip() -> None:
        build_demo_store(root, DemoSpec(n_symbols=60, seed=next(seeds)))
    return flip


@pytest.mark.slow
def test_stale_data_is_the_same_answer_everywhere(tmp_path):
    data, models = tmp_path / "data", tiny_models(tmp_path / "models")
    build_demo_store(data, DemoSpec(n_symbols=60, seed=1))
    flip = _flipping(data)

    class ChangingReader(StoreReader):
        """A store replaced between every plan and its evaluation."""

        def load(self, end, bars):  # type: ignore[no-untyped-def]
            flip()
            return super().load(end, bars)

    with pytest.raises(StaleDataError):
        run_scan(ScanConfig(), loader=ChangingReader(data), models_dir=models)

    backend = InProcessBackend(data, models, chunk_size=32, warm=False)
    backend.warm()
    evaluate = backend.executor.evaluate

    async def changing(symbols, spec, version):  # type: ignore[no-untyped-def]
        flip()  # a store replaced between every plan and its evaluation, as above
        return await evaluate(symbols, spec, version)

    backend.executor.evaluate = changing  # type: ignore[method-assign]
    with TestClient(create_app(backend, api_keys=())) as c:
        r = c.post("/v1/scan", json={}, headers={"Cache-Control": "no-cache"})
        assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
        assert "retry" in r.json()["detail"]
        with c.stream("POST", "/v1/scan/stream", json={}) as s:
            assert s.status_code == 200
            last = [line for line in s.iter_lines() if line.strip()][-1]
        import orjson

        event = orjson.loads(last)
        assert event["event"] == "error" and event["status"] == 503, event
        assert event["retry_after"] == 1 and "retry" in event["detail"]
