"""Where apprise may send, and what listings and logs show of a target.

Every scheme apprise registers that technic does not check is refused at creation (422 over
HTTP, naming the allowed schemes), and a real loopback listener (TCP and UDP on one port)
receives nothing from any scheme even when the creation check is bypassed: sends are
confined (no connection to a non-public address, whatever the DNS said at the check) and
redirects are not followed. Listings hide the token where the host is the token (prowl,
pbul, ifttt, pover, join, tgram, ...), and httpx's log lines carry no webhook path."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import sys
import threading
from pathlib import Path

import apprise
import httpx
import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent.parent))
from serve_support import tiny_models  # noqa: E402
from support import Receiver, run, split_market  # noqa: E402

from deployments.api.main import create_app  # noqa: E402
from technic_v4.service.inprocess import InProcessBackend  # noqa: E402
from technic_v4.watch import safety, send  # noqa: E402
from technic_v4.watch.safety import (  # noqa: E402
    APPRISE_SCHEMES,
    UnsafeTargetError,
    check_apprise,
    display_url,
)
from technic_v4.watch.send import send_apprise, send_webhook  # noqa: E402


def _names(value: object) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value or ())  # type: ignore[arg-type]


REGISTERED = sorted({s.lower() for plugin in apprise.Apprise().details(show_disabled=True)[
    "schemas"] for s in (*_names(plugin["protocols"]), *_names(plugin["secure_protocols"]))})
UNCHECKED = [s for s in REGISTERED if s not in APPRISE_SCHEMES]


class Listener:
    """A TCP and a UDP socket on one loopback port; counts every connection and datagram."""

    def __init__(self) -> None:
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.tcp.listen(64)
        self.hits: list[str] = []
        self.tcp.settimeout(0.2)
        self.udp.settimeout(0.2)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True),
                        threading.Thread(target=self._receive, daemon=True)]
        for t in self.threads:
            t.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except TimeoutError:
                continue
            self.hits.append("tcp")
            conn.close()

    def _receive(self) -> None:
        while not self.stop.is_set():
            try:
                self.udp.recvfrom(65536)
            except TimeoutError:
                continue
            self.hits.append("udp")

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()
        self.tcp.close()
        self.udp.close()


@pytest.fixture
def listener():  # type: ignore[no-untyped-def]
    lst = Listener()
    yield lst
    lst.close()


@pytest.fixture
def no_dns(monkeypatch):  # type: ignore[no-untyped-def]
    """Names do not resolve (this machine has no DNS: each lookup would wait 5 s); address
    literals do, as always. The listener is addressed by its literal."""
    real = socket.getaddrinfo

    def literal_only(host, *args, **kw):  # type: ignore[no-untyped-def]
        try:
            ipaddress.ip_address(str(host).strip("[]"))
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, "no DNS in this test") from None
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", literal_only)


def test_apprise_knows_many_schemes_technic_does_not_check():
    assert len(REGISTERED) > 100 and len(UNCHECKED) > 100
    for named in ("kodi", "xbmc", "emby", "jellyfin", "bark", "signal", "synology", "syslog",
                  "rsyslog", "mqtt", "gorush", "lametric", "misskey", "mastodon", "parsep"):
        assert named in UNCHECKED
    assert set(APPRISE_SCHEMES) <= set(REGISTERED)


def test_every_unchecked_scheme_is_refused_and_reaches_nothing(listener, no_dns):
    """Refused by the check, and, with the check bypassed, confined at connect time."""
    for scheme in UNCHECKED:
        url = f"{scheme}://127.0.0.1:{listener.port}/a/b"
        with pytest.raises(UnsafeTargetError, match="is not allowed") as caught:
            check_apprise(url, allow_private=False)
        assert "tgram" in str(caught.value) and "mailto" in str(caught.value)
    for scheme in [*UNCHECKED, *sorted(APPRISE_SCHEMES)]:
        url = f"{scheme}://user:pw@127.0.0.1:{listener.port}/a"
        send._notify(url, "t", "b", allow_private=False)
    assert listener.hits == []


def test_the_listener_hears_an_unconfined_send(listener):
    """The control: with private targets allowed, kodi's plugin does reach the listener."""
    send._notify(f"kodi://127.0.0.1:{listener.port}", "t", "b", allow_private=True)
    assert listener.hits


def test_a_name_that_rebinds_to_loopback_after_the_check_reaches_nothing(listener,
                                                                         monkeypatch):
    """The check sees a public address (the test's DNS); apprise's own lookup then gives
    loopback (the real resolver): the connection is refused."""
    monkeypatch.setattr(safety, "resolve", lambda host, port: ["93.184.216.34"])
    url = f"json://localhost:{listener.port}/hook"
    check_apprise(url, allow_private=False)
    outcome = run(send_apprise(url, "t", "b", allow_private=False, timeout_s=5))
    assert not outcome.ok and listener.hits == []


def test_apprise_does_not_follow_redirects():
    with Receiver(plan=lambda n: 302) as first, Receiver() as second:
        first.redirect = second.url
        for query in ("", "?redirect=yes"):
            url = first.url.replace("http://", "json://") + query
            outcome = run(send_apprise(url, "t", "b", allow_private=True, timeout_s=5))
            assert not outcome.ok
        assert len(first.requests) == 2 and second.requests == []


@pytest.fixture(scope="module")
def api(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("outbound")
    split = split_market(root / "data", n_symbols=60, tail=1)
    backend = InProcessBackend(split.data, tiny_models(root / "models"), warm=False)
    backend.warm()
    with TestClient(create_app(backend, api_keys=("k1",)), headers={"x-api-key": "k1"}) as c:
        yield c


def test_unchecked_schemes_are_422_at_creation_and_nothing_is_stored(api, listener):
    for scheme in UNCHECKED:
        r = api.post("/v1/watches", json={
            "name": "w", "screen": "squeeze",
            "apprise": [f"{scheme}://127.0.0.1:{listener.port}/x"]})
        assert r.status_code == 422, (scheme, r.text)
        detail = r.json()["detail"][0]
        assert detail["loc"][-1] == "apprise" and "is not allowed" in detail["msg"]
    assert api.get("/v1/watches").json()["count"] == 0
    assert listener.hits == []


TOKEN = "0123456789abcdef0123456789abcdef01234567"
TOKEN_URLS = [f"prowl://{TOKEN}", f"pbul://o.{TOKEN[:32]}", f"ifttt://{TOKEN[:22]}@event",
              f"pover://uQiRzpo4DXghDmr9QzzfQu27cmVRsG@{TOKEN[:30]}",
              f"join://{TOKEN[:32]}/group.all", f"tgram://123456789:{TOKEN[:35]}/55",
              f"discord://123456/{TOKEN}", f"slack://T1JJ3T3L2/A1BRTD4JD/{TOKEN[:24]}"]


@pytest.mark.parametrize("url", TOKEN_URLS)
def test_token_as_host_schemes_show_no_token(url):
    assert apprise.Apprise.instantiate(url), url  # a well-formed URL of its service
    shown = display_url(url)
    assert shown.startswith(url.split("://")[0] + "://… #")
    for piece in (TOKEN[:22], "uQiRzpo4", "123456789", "T1JJ3T3L2"):
        assert piece.lower() not in shown.lower()


def test_listings_show_no_secret_part(api):
    with Receiver() as rx:
        hook = rx.url.replace("/hook", f"/hooks/{TOKEN}") + "?sig=SIGSECRET"
        mail = "mailtos://alice:PASSWORD@example.com?to=me@example.com"
        r = api.post("/v1/watches", json={"name": "tok", "screen": "squeeze",
                                          "webhooks": [hook], "apprise": [*TOKEN_URLS, mail]})
    # the webhook is on loopback: refused without TECHNIC_WEBHOOK_ALLOW_PRIVATE; its check
    # comes first, so nothing about the apprise URLs is stored either
    assert r.status_code == 422
    monkey = pytest.MonkeyPatch()
    monkey.setattr(safety, "resolve", lambda host, port: ["93.184.216.34"])
    try:
        r = api.post("/v1/watches", json={
            "name": "tok", "screen": "squeeze",
            "webhooks": [f"https://hooks.example.com/h/{TOKEN}?sig=SIGSECRET"],
            "apprise": [*TOKEN_URLS, mail]})
        assert r.status_code == 201, r.text
        shown = [api.get("/v1/watches").text, api.get("/v1/watches/tok").text,
                 json.dumps(r.json()["targets"])]
    finally:
        monkey.undo()
        api.delete("/v1/watches/tok")
    for text in shown:
        for secret in (TOKEN[:22], "SIGSECRET", "PASSWORD", "alice", "uQiRzpo4", "T1JJ3T3L2"):
            assert secret.lower() not in text.lower(), (secret, text)
    assert "https://hooks.example.com/…" in shown[1] and "mailtos://example.com/…" in shown[1]


def test_httpx_log_lines_carry_no_path(caplog):
    caplog.set_level(logging.DEBUG)
    with Receiver() as rx:
        url = rx.url.replace("/hook", f"/hooks/{TOKEN}") + "?sig=SIGSECRET"

        async def go() -> bool:
            async with httpx.AsyncClient() as client:
                out = await send_webhook(client, url, "whsec_" + "A" * 32, "evt_1", b"{}",
                                         allow_private=True, timeout_s=5)
            return out.ok

        assert asyncio.run(go())
        assert len(rx.requests) == 1 and TOKEN in rx.requests[0]["path"]
    httpx_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("HTTP Request: POST http://127.0.0.1:" in line for line in httpx_lines)
    for record in caplog.records:
        assert TOKEN not in record.getMessage() and "SIGSECRET" not in record.getMessage()
