"""`technic watch ...` and the `technic data append` trigger (typer's CliRunner, in process),
with a real local webhook receiver."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from standardwebhooks import Webhook

sys.path.insert(0, str(Path(__file__).parent.parent))
from serve_support import tiny_models  # noqa: E402
from support import Receiver, cli_invoker, split_market  # noqa: E402


@pytest.fixture
def cli(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    split = split_market(tmp_path / "data", n_symbols=200, tail=2)
    monkeypatch.setenv("TECHNIC_MODELS_DIR", str(tiny_models(tmp_path / "models")))
    monkeypatch.setenv("TECHNIC_WEBHOOK_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("TECHNIC_STATE_DIR", raising=False)
    return cli_invoker(split)


def test_add_list_show_append_tail_remove(cli, tmp_path):
    with Receiver() as rx:
        added = cli("watch", "add", "momo", "--screen", "macd-bull-cross", "--webhook",
                    rx.url, "--rank-moved", "3")
        made = json.loads(added.stdout)
        secret = made["secret"]
        assert secret.startswith("whsec_") and "shown only now" in added.stderr
        assert made["baseline"]["evaluated"] == 1
        inline = cli("watch", "add", "hot", "--where", "RSI > 70", "-s", "Technology")
        assert json.loads(inline.stdout)["definition"] == {"sectors": ["Information Technology"],
                                                           "where": "RSI > 70"}
        listed = cli("watch", "list", "--json").stdout
        assert secret not in listed and rx.url not in listed  # redacted, secret never again
        shown = cli("watch", "show", "momo").stdout
        assert secret not in shown and json.loads(shown)["targets"][0]["url"].startswith(
            "http://127.0.0.1:")
        assert "momo" in cli("watch", "list").stdout
        # the test message, signed
        cli("watch", "test", "momo")
        req = rx.requests[-1]
        body = Webhook(secret).verify(req["body"], {k.lower(): v for k, v in
                                                    req["headers"].items()})
        assert body["type"] == "watch.test"
        before = len(rx.requests)
        # a data append evaluates the watches and delivers
        bars = cli.split.bars_file(tmp_path / "day.csv")
        out = cli("data", "append", str(bars))
        assert "watches at" in out.stderr and "delivered" in out.stderr
        tail = cli("watch", "tail", "--after", "0", "--no-follow", "--json").stdout
        events = [json.loads(line) for line in tail.splitlines()]
        assert events and {e["watch"] for e in events} <= {"momo", "hot"}
        momo = [e for e in events if e["watch"] == "momo"]
        assert {r["headers"]["webhook-id"] for r in rx.requests[before:]} == {
            e["id"] for e in momo}
        status = json.loads(cli("watch", "status", "momo").stdout)
        assert status["watches"][0]["deliveries"]["delivered"] == len(momo)
        text = cli("watch", "tail", "--after", "0", "--no-follow", "--watch", "hot").stdout
        assert all(" hot " in line for line in text.splitlines())
        cli("watch", "remove", "momo")
        cli("watch", "show", "momo", code=2)


def test_errors_are_one_line(cli):
    assert "needs --screen" in cli("watch", "add", "x", code=2).stderr
    assert "not both" in cli("watch", "add", "x", "--screen", "squeeze", "--where", "RSI > 1",
                             code=2).stderr
    assert "unknown screen" in cli("watch", "add", "x", "--screen", "nope", code=2).stderr
    assert "Clsoe" in cli("watch", "add", "x", "--where", "Clsoe > 1", code=2).stderr
    assert "http or https" in cli("watch", "add", "x", "--screen", "squeeze", "--webhook",
                                  "ftp://example.com/", code=2).stderr
    assert "watch name" in cli("watch", "add", "Bad Name", "--screen", "squeeze",
                               code=2).stderr
    cli("watch", "add", "x", "--screen", "squeeze")
    assert "exists already" in cli("watch", "add", "x", "--screen", "squeeze", code=2).stderr
    assert "unknown watch" in cli("watch", "remove", "nope", code=2).stderr


def test_private_targets_refused_without_the_setting(cli, monkeypatch):
    monkeypatch.delenv("TECHNIC_WEBHOOK_ALLOW_PRIVATE")
    err = cli("watch", "add", "x", "--screen", "squeeze", "--webhook",
              "http://127.0.0.1:9/hook", code=2).stderr
    assert "loopback" in err and "TECHNIC_WEBHOOK_ALLOW_PRIVATE" in err
