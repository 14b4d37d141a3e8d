"""/v1/watches and /v1/events: CRUD, auth, errors, secrets shown once, test and redeliver
(TestClient); the event stream resumed with Last-Event-ID over real HTTP (uvicorn)."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent.parent))
from serve_support import free_port, tiny_models  # noqa: E402
from support import Receiver, run, split_market  # noqa: E402

from deployments.api.main import create_app  # noqa: E402
from technic_v4.cli.watch import sse_events  # noqa: E402
from technic_v4.service.inprocess import InProcessBackend  # noqa: E402
from technic_v4.watch.deliver import Policy  # noqa: E402

HANG_GUARD_S = 600  # an answer this late is a hang, not a slow box


@pytest.fixture(scope="module")
def env(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("watch-api")
    split = split_market(root / "data", n_symbols=200, tail=2)
    backend = InProcessBackend(split.data, tiny_models(root / "models"), chunk_size=64,
                               warm=False, policy=Policy(allow_private=True))
    backend.warm()
    app = create_app(backend, api_keys=("k1",))
    with TestClient(app, headers={"x-api-key": "k1"}) as client, Receiver() as rx:
        yield {"client": client, "backend": backend, "split": split, "rx": rx, "app": app}


def test_crud_secret_once_and_redaction(env):
    c, rx = env["client"], env["rx"]
    r = c.post("/v1/watches", json={"name": "momo", "screen": "macd-bull-cross",
                                    "webhooks": [rx.url + "?token=abc"], "rank_moved": 4})
    assert r.status_code == 201, r.text
    made = r.json()
    secret = made["secret"]
    assert secret.startswith("whsec_") and made["baseline"]["evaluated"] == 1
    r = c.post("/v1/watches", json={"name": "inline", "definition": {
        "where": "RSI > 60", "sectors": ["Technology"], "limit": 10}})
    assert r.status_code == 201
    assert r.json()["definition"] == {"max_symbols": 10, "sectors": ["Information Technology"],
                                      "where": "RSI > 60"}
    listed = c.get("/v1/watches")
    one = c.get("/v1/watches/momo")
    for text in (listed.text, one.text):
        assert secret not in text and "token=abc" not in text
    assert listed.json()["count"] == 2
    state = one.json()["state"]
    assert state["last_evaluation"]["baseline"] is True
    assert state["deliveries"] == {"pending": 0, "delivered": 0, "dead": 0}
    assert one.json()["targets"][0]["url"].startswith("http://127.0.0.1:")
    assert c.post("/v1/watches", json={"name": "momo", "screen": "squeeze"}).status_code == 409
    assert c.delete("/v1/watches/inline").json() == {"name": "inline", "deleted": True}
    assert c.get("/v1/watches/inline").status_code == 404
    assert c.delete("/v1/watches/inline").status_code == 404


@pytest.mark.parametrize("body,field", [
    ({"name": "Bad Name", "screen": "squeeze"}, "name"),
    ({"name": "x"}, "screen"),
    ({"name": "x", "screen": "squeeze", "definition": {"where": "RSI > 1"}}, "screen"),
    ({"name": "x", "screen": "nope"}, "screen"),
    ({"name": "x", "definition": {"where": "Clsoe > 1"}}, "definition.where"),
    ({"name": "x", "screen": "squeeze", "webhooks": ["ftp://x.example/"]}, "webhooks"),
    ({"name": "x", "screen": "squeeze", "webhooks": ["http://169.254.169.254/"]}, "webhooks"),
    ({"name": "x", "screen": "squeeze", "rank_moved": 0}, "rank_moved"),
    ({"name": "x", "screen": "squeeze", "extra": 1}, "extra"),
])
def test_bad_requests_are_422_naming_the_field(env, body, field, monkeypatch):
    if "169.254" in json.dumps(body):
        env["backend"].watches.policy = env["backend"].watches.policy.__class__(
            allow_private=False)
    try:
        r = env["client"].post("/v1/watches", json=body)
    finally:
        env["backend"].watches.policy = env["backend"].watches.policy.__class__(
            allow_private=True)
    assert r.status_code == 422, r.text
    assert any(d["field"].startswith(field) for d in r.json()["detail"]), r.json()


def test_api_key_required(env):
    bare = TestClient(env["app"])
    for method, path in (("get", "/v1/watches"), ("post", "/v1/watches"),
                         ("get", "/v1/watches/momo"), ("delete", "/v1/watches/momo"),
                         ("post", "/v1/watches/momo/test"), ("get", "/v1/events")):
        assert getattr(bare, method)(path).status_code == 401, path


def test_test_and_redeliver(env):
    c, rx = env["client"], env["rx"]
    c.post("/v1/watches", json={"name": "pinged", "screen": "squeeze", "webhooks": [rx.url]})
    r = c.post("/v1/watches/pinged/test")
    assert r.status_code == 200 and r.json()["results"][0]["ok"] is True
    assert json.loads(rx.requests[-1]["body"])["type"] == "watch.test"
    assert c.post("/v1/watches/pinged/redeliver").json() == {"name": "pinged",
                                                             "redelivered": 0}
    assert c.post("/v1/watches/nope/redeliver").status_code == 404


def test_events_resume_with_last_event_id_over_http(env):
    import uvicorn

    backend, split = env["backend"], env["split"]
    env["client"].post("/v1/watches", json={"name": "sse", "screen": "macd-bull-cross"})
    split.append(2)
    run(backend.watches.tick())
    total = backend.watches.store.last_seq()
    assert total >= 4
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(env["app"], host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/v1/events"
        head = {"x-api-key": "k1"}
        first = []
        with httpx.stream("GET", url, params={"after": 0}, headers=head, timeout=HANG_GUARD_S) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            for seq, event in sse_events(r.iter_lines()):
                first.append((seq, event))
                if len(first) == 3:
                    break  # the client goes away mid-stream
        resumed = []
        with httpx.stream("GET", url, params={"follow": "false"}, timeout=HANG_GUARD_S,
                          headers={**head, "last-event-id": str(first[-1][0])}) as r:
            resumed = list(sse_events(r.iter_lines()))
        seqs = [s for s, _ in first + resumed]
        assert seqs == list(range(1, total + 1))
        stored = dict(backend.watches.store.events_after(0, 10_000))
        assert all(event == stored[seq] for seq, event in first + resumed)
        # a follower sees an event written after it connected
        with httpx.stream("GET", url, params={"watch": "sse"}, headers=head,
                          timeout=HANG_GUARD_S) as r:
            store = backend.watches.store
            w = store.get("sse")
            from technic_v4.watch.store import Evaluation

            store.record([(w, Evaluation(w.id, "2099-01-02", "v", {"name": "macd-bull-cross",
                                                                   "version": 1}, []),
                           [{"id": "evt_late", "kind": "entered", "symbol": "LATE",
                             "session": "2099-01-02", "watch": "sse"}])])
            got = next(sse_events(r.iter_lines()))
            assert got[1]["id"] == "evt_late" and got[0] == total + 1
        bad = httpx.get(url, headers={**head, "last-event-id": "x"}, timeout=HANG_GUARD_S)
        assert bad.status_code == 400, bad.text
    finally:
        server.should_exit = True
        thread.join(5)
