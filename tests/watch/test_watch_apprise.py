"""Apprise targets: one summarised e-mail per watch and session, through a real local SMTP
server (aiosmtpd) and a `mailto://` URL."""

from __future__ import annotations

import email
import sys
from email import policy
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))
from serve_support import free_port, tiny_models  # noqa: E402
from support import run, split_market  # noqa: E402

from technic_v4.watch.deliver import Policy  # noqa: E402
from technic_v4.watch.model import WatchSpec  # noqa: E402
from technic_v4.watch.service import local_service  # noqa: E402

controller = pytest.importorskip("aiosmtpd.controller")


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def test_one_summary_email_per_watch_and_session(tmp_path):
    inbox = Inbox()
    port = free_port()
    smtp = controller.Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        split = split_market(tmp_path / "data", n_symbols=200, tail=2)
        svc = local_service(split.data, tiny_models(tmp_path / "models"),
                            policy=Policy(allow_private=True, base_s=0.05, timeout_s=5))
        url = (f"mailto://127.0.0.1:{port}?to=me@example.com&from=technic@example.com"
               "&mode=insecure")
        for name, screen in (("macd", "macd-bull-cross"), ("squeeze", "squeeze")):
            run(svc.create(WatchSpec(name, screen=screen, apprise=[url])))
        split.append(2)  # two sessions at once: each evaluated, each summarised
        run(svc.tick())
        events = [e for _, e in svc.store.events_after(0, 10_000)]
        expected = {(e["watch"], e["session"]) for e in events}
        assert len(expected) >= 3
        got = {}
        for msg in inbox.messages:
            subject = str(msg["subject"])
            watch, session = subject.split("technic watch ")[1].split(" — ")[0], \
                subject.split(" — ")[1].split(":")[0]
            assert (watch, session) not in got, "one message per watch and session"
            got[(watch, session)] = msg.get_body(("plain",)).get_content()
        assert set(got) == expected
        for (watch, session), body in got.items():
            mine = [e for e in events if (e["watch"], e["session"]) == (watch, session)]
            for e in mine[:50]:
                sign = {"entered": "+", "left": "-", "rank_moved": "~"}[e["kind"]]
                assert f"{sign} {e['symbol']}" in body
        state = svc.store.status()["watches"]
        assert sum(w["deliveries"]["delivered"] for w in state) == len(expected)
    finally:
        smtp.stop()
