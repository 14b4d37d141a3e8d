"""Under Ray Serve: a watch created through the ingress, a session appended to the store,
and the Watcher deployment notices the new data version, evaluates and delivers a signed
webhook to a real local receiver; the events stream and the watch's state say the same."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
from standardwebhooks import Webhook

sys.path.insert(0, str(Path(__file__).parent.parent / "watch"))
from serve_support import running_app  # noqa: E402
from support import Receiver, split_market  # noqa: E402

from technic_v4.cli.watch import sse_events  # noqa: E402

ENV = {"RAY_AUTH_MODE": "disabled", "OMP_WAIT_POLICY": "PASSIVE",
       "TECHNIC_WEBHOOK_ALLOW_PRIVATE": "1", "TECHNIC_WATCH_POLL_S": "0.5"}


def test_an_append_is_noticed_and_a_signed_webhook_arrives(tmp_path):
    held: dict = {}

    def store(path: Path) -> Path:
        held["split"] = split_market(path, n_symbols=300, tail=2)
        return path

    with Receiver() as rx, running_app(tmp_path, ENV, "technic-watch", store=store,
                                       chunk_size=128) as app:
        url = app["url"]
        r = httpx.post(f"{url}/v1/watches", timeout=60, json={
            "name": "momo", "screen": "macd-bull-cross", "webhooks": [rx.url]})
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        assert secret not in httpx.get(f"{url}/v1/watches/momo", timeout=30).text
        assert httpx.post(f"{url}/v1/watches", timeout=30, json={
            "name": "momo", "screen": "squeeze"}).status_code == 409
        assert httpx.get(f"{url}/v1/watches/nope", timeout=30).status_code == 404
        held["split"].append(2)
        deadline = time.time() + 60
        while time.time() < deadline and not rx.accepted():
            time.sleep(0.2)
        assert rx.accepted(), "no webhook within 60 s of the append"
        events = []
        with httpx.stream("GET", f"{url}/v1/events", params={"after": 0, "follow": "false"},
                          timeout=30) as s:
            events = list(sse_events(s.iter_lines()))
        assert events and {e["watch"] for _, e in events} == {"momo"}
        ids = {e["id"] for _, e in events}
        deadline = time.time() + 30
        while time.time() < deadline and len(rx.accepted()) < len(ids):
            time.sleep(0.2)
        got = set()
        for req in rx.accepted():
            headers = {k.lower(): v for k, v in req["headers"].items()}
            body = Webhook(secret).verify(req["body"], headers)
            got.add(body["data"]["id"])
        assert got == ids
        deadline = time.time() + 15  # the acknowledgement is recorded after the answer
        while time.time() < deadline:
            state = httpx.get(f"{url}/v1/watches/momo", timeout=30).json()["state"]
            if state["deliveries"]["delivered"] == len(ids):
                break
            time.sleep(0.2)
        assert state["deliveries"] == {"pending": 0, "delivered": len(ids), "dead": 0}
        assert state["last_evaluation"]["session"] == events[-1][1]["session"]
