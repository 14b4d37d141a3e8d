"""`technic explain SYMBOL` as a user runs it: a new process on a demo store and tiny models."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest
from serve_support import demo_store, tiny_models

from technic_v4.alpha.inference import ModelSet
from technic_v4.data.reader import StoreReader
from technic_v4.scan.explain import explain

pytestmark = pytest.mark.slow  # each case starts `technic` as a process


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-explain")
    return demo_store(root / "data"), tiny_models(root / "models")


@pytest.fixture(scope="module")
def symbol(dirs) -> str:
    return str(StoreReader(dirs[0]).snapshot().universe["symbol"].iloc[7])


def technic_explain(dirs, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TECHNIC_DATA_DIR=str(dirs[0]), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "technic_v4.cli", "explain", *args,
                           "--models-dir", str(dirs[1])], env=env, capture_output=True,
                          text=True, timeout=300)


def test_json_is_the_library_answer(dirs, symbol):
    proc = technic_explain(dirs, symbol.lower(), "--format", "json", "--as-of", "2025-06-30")
    assert proc.returncode == 0, proc.stderr
    body = orjson.loads(proc.stdout)
    expected = explain(StoreReader(dirs[0]), ModelSet(dirs[1]), symbol, "2025-06-30")
    assert body == orjson.loads(orjson.dumps(expected))
    assert body["meta"]["as_of"] == "2025-06-30" and body["symbol"] == symbol


def test_table_shows_every_part(dirs, symbol):
    proc = technic_explain(dirs, symbol)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    body = explain(StoreReader(dirs[0]), ModelSet(dirs[1]), symbol)
    rating = body["tech_rating"]
    for sub in rating["sub_scores"]:
        assert sub["name"] in out
        for rule in sub["rules"]:  # long rules wrap in their cell: compare the words
            assert rule["text"].split(":")[0].split()[0] in out
    assert f"= {rating['value']:.2f}" in out
    assert f"Signal       {rating['signal']['value']}: {rating['signal']['rule']}" in out
    assert rating["risk_factor"]["text"] in out
    for model in body["alpha"]["models"]:
        assert f"{model['column']} = {model['forecast']:+.6f}" in out
        assert f"{model['sum']:+.6f}" in out
        for c in model["contributions"]:
            assert c["feature"] in out
    assert "source: synthetic" in out and body["meta"]["data_version"] in out


@pytest.mark.parametrize(("args", "message"), [
    (("ZZZZZ",), "unknown symbol 'ZZZZZ'"),
    (("../etc",), "invalid symbol"),
    (("{sym}", "--as-of", "1990-01-01"), "before the store's first session"),
    (("{sym}", "--as-of", "soon"), "is not a date"),
    (("{sym}", "--format", "xml"), "valid: table, json"),
])
def test_errors_are_one_line_and_exit_2(dirs, symbol, args, message):
    proc = technic_explain(dirs, *(a.format(sym=symbol) for a in args))
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
