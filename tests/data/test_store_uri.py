"""The store in an object store: an S3 API server (moto, its own process on 127.0.0.1) holds a
store written through `s3://` URIs, and everything read from it equals the local store, bit for
bit; appends reach warm caches; a rewrite puts its manifest last; bad URIs and secrets in URIs
never leak into messages. Stores stay under ~10 MB per object (150 symbols): moto 5.2 cannot
complete the multipart uploads pyarrow 26 uses above that (single PUTs work)."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from s3_support import BUCKET
from serve_support import free_port, parquet_frame, tiny_models

from technic_v4.data import store
from technic_v4.data.append import append_bars
from technic_v4.data.calendar import sessions_between
from technic_v4.data.demo import DemoSpec, build_demo_store
from technic_v4.data.reader import StoreReader, ensure_store
from technic_v4.data.store_fs import data_root
from technic_v4.scanner_core import ScanConfig, run_scan

pytestmark = pytest.mark.slow  # a moto S3 server and `technic` processes

SPEC = DemoSpec(n_symbols=150)
FIELDS = ("open", "high", "low", "close", "volume")
KEY, SECRET = "AKIAUNITTESTKEY7", "wJalrXUtnFEMIunitTESTsecret42"


@pytest.fixture(scope="module")
def pair(s3, tmp_path_factory):
    """The same demo market written to a local dir and to s3://technic/base."""
    local = tmp_path_factory.mktemp("local")
    build_demo_store(local, SPEC)
    uri = s3.uri("base")
    build_demo_store(uri, SPEC)
    return local, uri


def _same_panel(a, b):
    """Bit-equal bars (NaN where NaN), same symbols, sessions, universe, source, version."""
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), strict=True)
    assert list(a.symbols) == list(b.symbols)
    assert a.sessions.equals(b.sessions)
    assert a.source == b.source and a.data_version == b.data_version
    pd.testing.assert_frame_equal(a.universe, b.universe, check_exact=True)


def test_s3_store_reads_equal_the_local_store(s3, pair):
    local, uri = pair
    assert data_root(uri) == uri and store.store_exists(uri)
    m_local, m_s3 = store.read_manifest(local), store.read_manifest(uri)
    assert m_s3.data_version == m_local.data_version
    assert m_s3.segment_list() == m_local.segment_list()
    assert s3.objects("base") == ["bars.parquet", "manifest.json", "universe.parquet"]
    for end, bars in [(None, None), (None, 60), ("2024-03-15", 300), ("2021-01-04", 5)]:
        _same_panel(store.load_panel(uri, end=end, bars=bars),
                    store.load_panel(local, end=end, bars=bars))
    assert store.read_sessions(uri).equals(store.read_sessions(local))
    assert store.store_location(uri) == f"s3://{BUCKET}/base/store"


def test_run_scan_on_s3_equals_local(pair):
    local, uri = pair
    cfg = ScanConfig(max_symbols=40)
    frame_s3, status_s3 = run_scan(cfg, loader=StoreReader(uri))
    frame_local, status_local = run_scan(cfg, loader=StoreReader(local))
    assert len(frame_s3) == 40
    pd.testing.assert_frame_equal(frame_s3, frame_local, check_exact=True)
    assert status_s3.data_version == status_local.data_version
    assert (status_s3.attempted, status_s3.kept) == (status_local.attempted, status_local.kept)


def _next_day(data_dir, n=100, new_symbol="ZZNEW"):
    """Long bars for the session after the store's last: the first `n` symbols and one new."""
    m = store.read_manifest(data_dir)
    day = sessions_between(pd.Timestamp(m.last_session) + pd.Timedelta(days=1),
                           pd.Timestamp(m.last_session) + pd.Timedelta(days=7))[0]
    panel = store.load_panel(data_dir, bars=1)
    close = np.nan_to_num(panel.close[:n, -1], nan=10.0) * 1.01
    symbols = [*panel.symbols[:n], new_symbol]
    close = np.append(close, 25.0)
    return day, pd.DataFrame({"symbol": symbols, "date": str(day.date()), "open": close,
                              "high": close * 1.01, "low": close * 0.99, "close": close,
                              "volume": 1000.0})


def test_append_on_s3_reaches_a_warm_loader_and_equals_local(s3, tmp_path):
    local, uri = tmp_path / "local", s3.uri("append")
    build_demo_store(local, SPEC)
    build_demo_store(uri, SPEC)
    loader, windows = StoreReader(uri, auto_demo=False), StoreReader(uri, windows=2)
    before = loader.load(None, 60)
    assert loader.load(None, 60) is before  # warm: served from the cache
    assert windows.load(None, 60).data_version == before.data_version
    day, bars = _next_day(uri)
    rep_s3, rep_local = append_bars(bars, uri), append_bars(bars, local)
    assert rep_s3.manifest.data_version == rep_local.manifest.data_version != before.data_version
    after = loader.load(None, 60)
    assert after is not before and after.data_version == rep_s3.manifest.data_version
    assert after.sessions[-1] == day and after.symbols[-1] == "ZZNEW"
    assert windows.manifest().data_version == after.data_version
    _same_panel(windows.load(None, 60), after)
    _same_panel(after, store.load_panel(local, bars=60))
    assert np.isnan(after.close[-1, :-1]).all()  # the new symbol has no bars before it joined
    names = s3.objects("append")
    assert {"bars-000001.parquet", "universe-000001.parquet", "quality.csv"} <= set(names)


def test_rewrite_uploads_new_objects_then_the_manifest_then_deletes(s3, tmp_path):
    uri, local = s3.uri("rewrite"), tmp_path / "local"
    for root in (uri, local):
        build_demo_store(root, SPEC)
        append_bars(_next_day(root)[1], root)
    old = store.read_manifest(uri)
    before = store.load_panel(uri)
    mark = len(s3.requests())
    compacted = store.compact_store(uri)
    calls = [(m, k.split("/store/")[-1]) for m, k in s3.requests()[mark:]
             if k.startswith(f"{BUCKET}/rewrite/store/") and m in ("PUT", "POST", "DELETE")
             and not k.endswith("/")]  # pyarrow re-PUTs the "store/" marker after a delete
    puts = [k for m, k in calls if m in ("PUT", "POST")]
    deletes = [k for m, k in calls if m == "DELETE"]
    assert puts[-1] == "manifest.json" and "manifest.json" not in puts[:-1]
    assert {"bars-000002.parquet", "universe-000002.parquet"} <= set(puts)
    last_put = max(i for i, (m, _) in enumerate(calls) if m in ("PUT", "POST"))
    first_delete = min(i for i, (m, _) in enumerate(calls) if m == "DELETE")
    assert last_put < first_delete  # nothing referenced by the old manifest goes before it
    assert {s["file"] for s in old.segment_list()} <= set(deletes)
    assert s3.objects("rewrite") == ["bars-000002.parquet", "manifest.json",
                                     "universe-000002.parquet"]
    assert compacted.segment_list() == [{"file": "bars-000002.parquet",
                                         "n_symbols": old.n_symbols,
                                         "n_sessions": old.n_sessions}]
    after = store.load_panel(uri)
    assert after.data_version == compacted.data_version != before.data_version
    assert compacted.data_version == store.compact_store(local).data_version
    _same_panel(after, store.load_panel(local))


def test_file_uri_is_a_local_store(tmp_path, pair):
    local, _ = pair
    uri = f"file://{tmp_path}/fdata"
    assert data_root(uri) == tmp_path / "fdata"
    build_demo_store(uri, SPEC)
    assert (tmp_path / "fdata" / "store" / "manifest.json").is_file()
    assert store.store_path(uri) == tmp_path / "fdata" / "store"
    _same_panel(store.load_panel(uri, bars=80), store.load_panel(local, bars=80))


@pytest.mark.parametrize("bad, scheme", [
    ("foo://bucket/prefix", "foo"), ("hdfs://namenode/x", "hdfs"), ("http://example.com/x", "http"),
    ("s3://", "s3"), ("s3:///no-bucket", "s3"), ("file://otherhost/x", "file"),
    ("s3://bucket/x?no_such_option=1", "s3")])
def test_bad_uris_are_store_errors_naming_the_scheme(bad, scheme):
    with pytest.raises(store.StoreError, match=f"scheme '{scheme}'"):
        data_root(bad)
    with pytest.raises(store.StoreError):
        store.read_manifest(bad)


def test_a_uri_collapsed_by_a_path_type_is_refused():
    with pytest.raises(store.StoreError, match="collapsed"):
        data_root(Path("s3://bucket/prefix"))


def test_an_empty_s3_location_is_refused_not_filled(s3):
    uri = s3.uri("empty")
    with pytest.raises(store.StoreError, match="never filled with the synthetic demo"):
        ensure_store(uri)
    with pytest.raises(store.StoreError, match="no price store at s3://technic/empty/store"):
        StoreReader(uri, auto_demo=False).load(None, 10)
    assert s3.objects("empty") == []


def _no_secrets(text: str) -> None:
    assert KEY not in text and SECRET not in text, text


def test_credentials_in_uris_never_reach_messages_or_logs(s3, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    creds = f"{KEY}:{SECRET}@"
    uri = s3.uri("creds", userinfo=creds)  # moto accepts any keys: these sign the requests
    build_demo_store(uri, DemoSpec(n_symbols=50))
    assert store.read_manifest(uri).n_symbols == 50
    assert store.store_location(uri) == f"s3://{BUCKET}/creds/store"
    errors = []
    for call in (lambda: ensure_store(s3.uri("creds-none", userinfo=creds)),
                 lambda: store.load_panel(s3.uri("creds-none", userinfo=creds)),
                 lambda: store.read_manifest(
                     f"s3://{creds}{BUCKET}/x?endpoint_override=127.0.0.1:{free_port()}"
                     "&scheme=http&region=us-east-1"),
                 lambda: store.read_manifest(
                     f"s3://{creds}{BUCKET}/x?region=us-east-1&token={SECRET}"),
                 lambda: data_root(f"foo://{creds}host/x?token={SECRET}")):
        with pytest.raises(store.StoreError) as info:
            call()
        errors.append(str(info.value))
        exc = info.value  # no chained pyarrow error repeats the URI in a traceback
        assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)
    assert "Connection refused" in errors[2] or "connect" in errors[2].lower(), errors[2]
    assert "scheme 'foo'" in errors[4]
    for text in [*errors, caplog.text]:
        _no_secrets(text)
    proc = subprocess.run([sys.executable, "-m", "technic_v4.cli", "data", "info",
                           "--data-dir", s3.uri("creds-none", userinfo=creds)],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert proc.returncode == 2 and "s3://technic/creds-none" in proc.stderr, proc.stderr
    _no_secrets(proc.stderr + proc.stdout)


def test_cli_builds_describes_and_scans_an_s3_store(s3):
    uri = s3.uri("cli")

    def technic(*args):
        return subprocess.run([sys.executable, "-m", "technic_v4.cli", *args, "--data-dir", uri],
                              capture_output=True, text=True, timeout=300,
                              env=dict(os.environ, COLUMNS="200"))

    built = technic("data", "demo", "--symbols", "60")
    assert built.returncode == 0, built.stderr
    assert "source: synthetic" in built.stderr and "endpoint_override" not in built.stderr
    info = technic("data", "info")
    assert info.returncode == 0 and f"store: s3://{BUCKET}/cli/store" in info.stdout, info.stderr
    scan = technic("scan", "--format", "csv", "--max-symbols", "5")
    assert scan.returncode == 0, scan.stderr
    frame = pd.read_csv(io.StringIO(scan.stdout))
    assert len(frame) == 5 and frame["TechRating"].notna().all()
    bad = subprocess.run([sys.executable, "-m", "technic_v4.cli", "data", "info", "--data-dir",
                          "foo://bucket/x"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "'foo'" in bad.stderr


def test_cli_ingests_and_appends_into_s3_like_a_local_dir(s3, pair, tmp_path):
    from technic_v4.data.ingest import ingest_bars

    panel = store.load_panel(pair[0], bars=140)
    n, t = 60, panel.n_sessions
    bars = pd.DataFrame({"symbol": np.repeat(panel.symbols[:n], t),
                         "date": np.tile(panel.sessions.strftime("%Y-%m-%d"), n),
                         **{f: getattr(panel, f)[:n].ravel() for f in FIELDS}}).dropna()
    bars.to_csv(tmp_path / "bars.csv", index=False)
    uri, local = s3.uri("cli-ingest"), tmp_path / "local"

    def technic(*args):
        proc = subprocess.run([sys.executable, "-m", "technic_v4.cli", *args, "--data-dir", uri],
                              capture_output=True, text=True, timeout=300, env=dict(os.environ))
        assert proc.returncode == 0, proc.stderr
        return proc

    technic("data", "ingest", str(tmp_path / "bars.csv"))
    assert store.read_manifest(uri).data_version == ingest_bars(
        tmp_path / "bars.csv", local).manifest.data_version
    _, day = _next_day(uri, n=n)
    day.to_csv(tmp_path / "day.csv", index=False)
    technic("data", "append", str(tmp_path / "day.csv"))
    append_bars(day, local)
    _same_panel(store.load_panel(uri, bars=30), store.load_panel(local, bars=30))
    assert {"ingest_rejections.csv", "quality.csv", "bars-000001.parquet"} <= set(
        s3.objects("cli-ingest"))


def test_api_scans_an_s3_store(pair, tmp_path, monkeypatch):
    from deployments.api.main import create_app
    from technic_v4.service.inprocess import InProcessBackend

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    _, uri = pair
    models = tiny_models(tmp_path / "models")
    backend = InProcessBackend(uri, models, chunk_size=64, warm=False)
    backend.warm()
    monkeypatch.setenv("TECHNIC_MODELS_DIR", str(models))
    frame, status = run_scan(ScanConfig(max_symbols=25), loader=StoreReader(uri))
    with TestClient(create_app(backend, api_keys=())) as client:
        r = client.post("/v1/scan", json={"limit": 25, "format": "parquet"})
        assert r.status_code == 200, r.text
        pd.testing.assert_frame_equal(parquet_frame(r.content), frame, check_exact=True)
        assert r.headers["x-technic-data-version"] == status.data_version
        assert client.get("/readyz").json()["ready"]
