"""Tenancy over HTTP (technic_v4/tenancy.py): with keys k1, k2 and an admin key, each key's
saved screens, watches and watch events are its own.

An in-process backend on the session's warm demo store and tiny models, with a state file of
its own (screens and watches in a tmp folder); apps built by `create_app` with the keys passed
in. Another key's screen or watch answers exactly what a name nobody uses answers (404, the
same body), on every route; names are per key; the admin sees all; open mode is shared.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from serve_support import state_backend

from deployments.api.keys import hash_key
from deployments.api.main import create_app
from technic_v4.cli.watch import sse_events

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

KEYS = ("k1", "k2")
ADMIN = "adm"
MINE = {"where": "RSI > 50", "limit": 4}
THEIRS = {"where": "RSI < 50", "limit": 7}


@pytest.fixture(scope="module")
def backend(warm, tmp_path_factory):  # type: ignore[no-untyped-def]
    return state_backend(warm, tmp_path_factory.mktemp("tenancy"))


@pytest.fixture(scope="module")
def clients(backend):  # type: ignore[no-untyped-def]
    app = create_app(backend, api_keys=KEYS, admin_keys=(ADMIN,))
    out = {k: TestClient(app, headers={"x-api-key": k}) for k in (*KEYS, ADMIN)}
    out["open"] = TestClient(create_app(backend, api_keys=()))
    yield out
    for c in out.values():
        c.close()


@pytest.fixture(scope="module")
def made(clients):  # type: ignore[no-untyped-def]
    """k1's screen `mine` and watch `w1` (on it, `initial`: its baseline writes events)."""
    k1 = clients["k1"]
    assert k1.put("/v1/screens/mine", json=MINE).status_code == 200
    r = k1.post("/v1/watches", json={"name": "w1", "screen": "mine", "initial": True})
    assert r.status_code == 201, r.text
    return r.json()


def events(client: TestClient, **params: Any) -> list[dict]:
    r = client.get("/v1/events", params={"after": 0, "follow": "false", **params})
    assert r.status_code == 200, r.text
    return [e for _, e in sse_events(r.text.splitlines())]


def unknown(client: TestClient, method: str, path: str, nobody: str, name: str,
            **kw: Any) -> None:
    """`path` (naming `name`) answers 404, with the body a name nobody uses gets."""
    r = client.request(method, path, **kw)
    assert r.status_code == 404, (method, path, r.status_code, r.text)
    control = client.request(method, path.replace(name, nobody), **kw)
    assert control.status_code == 404
    assert r.text.replace(name, nobody) == control.text


def test_another_key_gets_404_on_every_route(clients, made):
    k2 = clients["k2"]
    for method, path, kw in [
            ("GET", "/v1/screens/mine", {}),
            ("GET", "/v1/screens/mine", {"params": {"version": 1}}),
            ("DELETE", "/v1/screens/mine", {}),
            ("GET", "/v1/watches/w1", {}),
            ("DELETE", "/v1/watches/w1", {}),
            ("POST", "/v1/watches/w1/test", {}),
            ("POST", "/v1/watches/w1/redeliver", {})]:
        name = "mine" if "screens" in path else "w1"
        unknown(k2, method, path, "nobody-" + name, name, **kw)
    assert "mine" not in [s["name"] for s in k2.get("/v1/screens").json()["screens"]]
    assert k2.get("/v1/watches").json() == {"count": 0, "watches": []}
    assert events(k2) == [] and events(k2, watch="w1") == []
    # a scan or a watch of k2 naming k1's screen: unknown, its valid names without k1's
    r = k2.post("/v1/scan", json={"screen": "mine"})
    assert r.status_code == 422 and "mine" not in r.json()["detail"][0]["valid"]
    r = k2.post("/v1/watches", json={"name": "w2", "screen": "mine"})
    assert r.status_code == 422 and "mine" not in r.json()["detail"][0]["valid"]
    # k2 saving `mine` makes k2's own; k1's is unchanged, and k1 still reads, sees, deletes
    assert k2.put("/v1/screens/mine", json=THEIRS).json()["version"] == 1
    k1 = clients["k1"]
    assert k1.get("/v1/screens/mine").json()["definition"] == {"max_symbols": 4,
                                                               "where": "RSI > 50"}
    assert k1.get("/v1/watches/w1").json()["id"] == made["id"]
    mine = events(k1)
    assert mine and {e["watch"] for e in mine} == {"w1"}
    assert all(e["kind"] == "entered" for e in mine)
    assert k1.post("/v1/watches/w1/redeliver").json()["redelivered"] == 0
    assert k2.delete("/v1/screens/mine").status_code == 200
    assert k1.get("/v1/screens/mine").status_code == 200


def test_same_name_under_two_keys(clients, made):
    k1, k2 = clients["k1"], clients["k2"]
    assert k1.put("/v1/screens/same", json=MINE).status_code == 200
    assert k2.put("/v1/screens/same", json=THEIRS).status_code == 200
    assert k1.get("/v1/screens/same").json()["definition"]["where"] == "RSI > 50"
    assert k2.get("/v1/screens/same").json()["definition"]["where"] == "RSI < 50"
    # a scan by name runs the caller's screen, never the other key's cached answer
    for client, inline in ((k1, MINE), (k2, THEIRS), (k1, MINE)):
        by_name = client.post("/v1/scan", json={"screen": "same"}).json()
        direct = client.post("/v1/scan", json=inline).json()
        assert [r["Symbol"] for r in by_name["rows"]] == [r["Symbol"] for r in direct["rows"]]
        assert len(by_name["rows"]) == inline["limit"]
    # watches of one name under both keys, each on its own key's screen
    for client, inline in ((k1, MINE), (k2, THEIRS)):
        r = client.post("/v1/watches", json={"name": "same", "screen": "same"})
        assert r.status_code == 201, r.text
        state = client.get("/v1/watches/same").json()["state"]
        assert state["last_evaluation"]["symbols"] == inline["limit"]
    assert k1.post("/v1/watches", json={"name": "same", "screen": "same"}).status_code == 409


def test_admin_sees_everything(clients, made):
    adm, k1 = clients[ADMIN], clients["k1"]
    listed = {(w["name"], w.get("owner")) for w in adm.get("/v1/watches").json()["watches"]}
    assert ("w1", hash_key("k1")) in listed
    assert adm.get("/v1/watches/w1").json()["id"] == made["id"]
    screens = {(s["name"], s.get("owner")) for s in adm.get("/v1/screens").json()["screens"]}
    assert ("mine", hash_key("k1")) in screens
    assert {e["watch"] for e in events(k1)} <= {e["watch"] for e in events(adm)}
    assert len(events(adm)) >= len(events(k1))
    k1.put("/v1/screens/both", json=MINE)
    clients["k2"].put("/v1/screens/both", json=THEIRS)
    r = adm.get("/v1/screens/both")
    assert r.status_code == 409 and set(r.json()["detail"][0]["valid"]) == {
        hash_key("k1"), hash_key("k2")}
    r = adm.get("/v1/screens/both", params={"owner": hash_key("k2")})
    assert r.json()["definition"]["where"] == "RSI < 50"
    # only an admin may name an owner
    assert k1.get("/v1/watches", params={"owner": hash_key("k2")}).status_code == 403
    # what an admin saves is its own: k1's screen of that name is untouched
    assert adm.put("/v1/screens/mine", json=THEIRS).json()["version"] == 1
    assert k1.get("/v1/screens/mine").json()["definition"]["where"] == "RSI > 50"


def test_open_mode_is_one_shared_namespace(clients, made):
    open_ = clients["open"]
    assert open_.put("/v1/screens/shared", json=MINE).status_code == 200
    assert open_.post("/v1/watches", json={"name": "shared-w", "screen": "shared"}
                      ).status_code == 201
    assert open_.get("/v1/watches/shared-w").status_code == 200
    names = [w["name"] for w in open_.get("/v1/watches").json()["watches"]]
    assert "shared-w" in names and "w1" in names  # what keys made stays visible
    # with keys on, the open namespace is the admin's to see, no key's
    assert clients["k1"].get("/v1/screens/shared").status_code == 404
    assert clients[ADMIN].get("/v1/watches/shared-w").status_code == 200
    assert open_.delete("/v1/watches/shared-w").status_code == 200
    assert open_.get("/v1/watches/shared-w").status_code == 404
