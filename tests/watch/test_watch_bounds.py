"""One watch cannot stop the others, and the outbox stays bounded.

A watch whose evaluation fails (its saved screen deleted; an engine fault for its screen
alone) is marked failed with the reason — `technic watch show`, `GET /v1/watches/{name}`,
`technic watch status` exit 1 — and every other watch advances; a watch whose screen fails
at creation is a 422 / error and nothing is stored. The outbox: at most `max_events` events
per watch and session (the rest in one `truncated` event) with a keep-everything screen and
`initial`; finished events pruned after the retention (an injected clock, no sleeping) with
the file's space given back; deleting watches gives their space back too."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))
from serve_support import tiny_models  # noqa: E402
from support import Receiver, cli_invoker, run, split_market  # noqa: E402

from technic_v4.errors import ConfigError  # noqa: E402
from technic_v4.watch.clock import ManualClock  # noqa: E402
from technic_v4.watch.deliver import Policy  # noqa: E402
from technic_v4.watch.model import WatchSpec  # noqa: E402
from technic_v4.watch.service import local_service  # noqa: E402

DAY = 86400.0


@pytest.fixture
def cli(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    split = split_market(tmp_path / "data", n_symbols=120, tail=2)
    monkeypatch.setenv("TECHNIC_MODELS_DIR", str(tiny_models(tmp_path / "models")))
    monkeypatch.delenv("TECHNIC_STATE_DIR", raising=False)
    return cli_invoker(split)


def test_a_watch_on_a_deleted_screen_fails_visibly_and_the_others_advance(cli):
    cli("screen", "save", "mine", "--where", "RSI > 50")
    cli("watch", "add", "poisoned", "--screen", "mine")
    cli("watch", "add", "healthy", "--screen", "macd-bull-cross")
    cli("screen", "delete", "mine")
    new = cli.split.append(1)[0]
    cli("watch", "run", "--once")
    status = cli("watch", "status", code=1)
    state = {w["name"]: w for w in json.loads(status.stdout)["watches"]}
    assert state["healthy"]["last_evaluation"]["session"] == new
    assert state["healthy"]["failed"] is None
    failed = state["poisoned"]["failed"]
    assert failed["session"] == new and "mine" in failed["reason"]
    assert "watch poisoned failed at" in status.stderr and "outbox:" in status.stderr
    assert json.loads(cli("watch", "show", "poisoned").stdout)["state"]["failed"] == failed
    # saved again: the next trigger evaluates it, and the failure is cleared
    cli("screen", "save", "mine", "--where", "RSI > 50")
    cli.split.append(1)
    cli("watch", "run", "--once")
    cli("watch", "status")


@pytest.fixture
def market(tmp_path):  # type: ignore[no-untyped-def]
    return split_market(tmp_path / "data", n_symbols=150, tail=3), tiny_models(tmp_path / "m")


class _Poisoned:
    """An executor whose evaluation fails for any screen reading `column`'s history — an
    engine defect that only some screens hit (as `rank: AlphaScore` did)."""

    def __init__(self, inner, column: str):  # type: ignore[no-untyped-def]
        self.inner, self.column = inner, column

    async def evaluate(self, symbols, spec, version):  # type: ignore[no-untyped-def]
        if any(name == self.column for name, _, _ in spec.series):
            raise KeyError(f"unknown indicator output(s) [{self.column!r}]")
        return await self.inner.evaluate(symbols, spec, version)

    async def predict(self, features):  # type: ignore[no-untyped-def]
        return await self.inner.predict(features)

    async def models_version(self) -> str:
        return await self.inner.models_version()


def _poisoned(engine, column: str):  # type: ignore[no-untyped-def]
    """The engine over a `_Poisoned` executor."""
    return replace(engine, executor=_Poisoned(engine.executor, column))


def test_an_engine_fault_in_one_screen_fails_that_watch_only(market):
    split, models = market
    svc = local_service(split.data, models, policy=Policy(allow_private=True))
    run(svc.create(WatchSpec("poison", definition={"where": "ADX[1] > 0"})))
    run(svc.create(WatchSpec("plain", definition={"where": "RSI > 50"}, initial=True)))
    clean = svc.engine
    svc.engine = _poisoned(clean, "ADX")
    with pytest.raises(ConfigError, match="cannot be evaluated") as caught:
        run(svc.create(WatchSpec("poison2", definition={"where": "ADX[2] > 1"})))
    assert caught.value.field == "definition"
    assert [w.name for w in svc.store.list()] == ["plain", "poison"]  # nothing stored
    sessions = split.append(2)
    result = run(svc.tick())
    assert [r.session for r in result.runs] == sessions
    first, second = result.runs
    assert first.evaluated == ["plain"] and "KeyError" in first.errors["poison"]
    assert second.evaluated == ["plain"] and second.errors == {}  # skipped once failed
    state = {w["name"]: w for w in run(svc.status())["watches"]}
    assert state["plain"]["last_evaluation"]["session"] == sessions[-1]
    assert state["poison"]["failed"]["session"] == sessions[0]
    assert state["poison"]["last_evaluation"]["session"] < sessions[0]
    assert run(svc.get("poison"))["state"]["failed"]["reason"].startswith(
        "the screen cannot be evaluated: KeyError")
    # the defect fixed: the next trigger catches the watch up on every session it missed
    svc.engine = clean
    split.append(1)
    result = run(svc.tick())
    state = {w["name"]: w for w in run(svc.status())["watches"]}
    assert state["poison"]["failed"] is None
    assert state["poison"]["last_evaluation"]["session"] == result.runs[-1].session
    assert {r.session for r in result.runs} == {*sessions, result.runs[-1].session}


def test_the_outbox_is_bounded_with_a_keep_everything_screen_and_initial(market):
    split, models = market
    cap, n = 40, 4
    svc = local_service(split.data, models, policy=Policy(max_events=cap))
    for i in range(n):
        made = run(svc.create(WatchSpec(f"all{i}", definition={"where": "Close > 0"},
                                        initial=True, rank_moved=1)))
        assert made["baseline"]["events"] == cap + 1
    events = [e for _, e in svc.store.events_after(0, 100_000)]
    truncated = [e for e in events if e["kind"] == "truncated"]
    assert len(truncated) == n and len(events) == n * (cap + 1)
    kept = svc.store.last_evaluation(svc.store.get("all0").id).symbols
    assert truncated[0]["count"] == len(kept) - cap > 50
    assert truncated[0]["kinds"] == {"entered": len(kept) - cap}
    split.append(3)
    run(svc.tick())
    for w in run(svc.status())["watches"]:
        assert w["events"] <= 4 * (cap + 1)  # baseline + three sessions, each capped
    size = run(svc.status())["outbox"]
    assert size["events"] <= n * 4 * (cap + 1) and size["bytes"] > 0


def test_finished_events_are_pruned_after_the_retention(market):
    split, models = market
    clock = ManualClock()  # events are dated, and pruned, by it
    policy = Policy(allow_private=True, retention_s=30 * DAY, prune_every_s=DAY, base_s=60,
                    max_events=1000)
    svc = local_service(split.data, models, policy=policy, clock=clock)
    with Receiver() as ok, Receiver(plan=lambda n: 500) as down:
        run(svc.create(WatchSpec("acked", definition={"where": "Close > 0"}, initial=True,
                                 webhooks=[ok.url])))
        run(svc.create(WatchSpec("stuck", definition={"where": "RSI > 50"}, initial=True,
                                 webhooks=[down.url])))
        run(svc.tick())
    state = {w["name"]: w for w in run(svc.status())["watches"]}
    acked, stuck = state["acked"]["events"], state["stuck"]["events"]
    assert state["acked"]["deliveries"]["delivered"] == acked > 100
    assert state["stuck"]["deliveries"]["pending"] == stuck > 0
    before = svc.store.outbox_size()
    clock.advance(29 * DAY)  # within the retention
    assert run(svc.prune_if_due()) == {"events": 0, "deliveries": 0, "evaluations": 0}
    assert svc.store.outbox_size()["events"] == acked + stuck
    clock.advance(10 * DAY + 30 * DAY)
    assert run(svc.prune_if_due())["events"] == acked
    assert run(svc.prune_if_due()) is None  # not due again before prune_every_s
    after = svc.store.outbox_size()
    assert after["events"] == stuck  # pending deliveries keep their events
    assert after["bytes"] < before["bytes"] and after["free_bytes"] == 0
    state = {w["name"]: w for w in run(svc.status())["watches"]}
    assert state["acked"]["last_evaluation"] is not None  # the last evaluation stays


def test_deleting_watches_gives_their_space_back(market):
    split, models = market
    svc = local_service(split.data, models)
    for i in range(3):
        run(svc.create(WatchSpec(f"all{i}", definition={"where": "Close > 0"}, initial=True)))
    full = svc.store.outbox_size()
    assert full["events"] >= 300
    for i in range(3):
        run(svc.remove(f"all{i}"))
    empty = svc.store.outbox_size()
    assert empty["events"] == 0 and empty["free_bytes"] == 0
    assert empty["bytes"] < full["bytes"] / 2


def test_rank_alphascore_works_in_scan_screen_and_watch_over_http(market):
    from fastapi.testclient import TestClient

    from deployments.api.main import create_app
    from technic_v4.service.inprocess import InProcessBackend

    split, models = market
    backend = InProcessBackend(split.data, models, warm=False)
    backend.warm()
    with TestClient(create_app(backend, api_keys=("k1",)), headers={"x-api-key": "k1"}) as c:
        body = {"rank": "AlphaScore", "where": "RSI > 40", "max_symbols": 10}
        scan = c.post("/v1/scan", json=body)
        assert scan.status_code == 200, scan.text
        rows = scan.json()["rows"]
        assert rows and [r["RankValue"] for r in rows] == [r["AlphaScore"] for r in rows]
        assert c.put("/v1/screens/by-alpha", json=body).status_code == 200
        made = c.post("/v1/watches", json={"name": "by-alpha", "screen": "by-alpha",
                                           "initial": True})
        assert made.status_code == 201, made.text
        assert made.json()["baseline"]["events"] == len(rows)
        state = c.get("/v1/watches/by-alpha").json()["state"]
        assert state["failed"] is None and state["last_evaluation"]["symbols"] == len(rows)


def test_a_screen_or_watch_that_cannot_be_evaluated_is_422_and_not_stored(market):
    from fastapi.testclient import TestClient

    from deployments.api.main import create_app
    from technic_v4.service.inprocess import InProcessBackend

    split, models = market
    backend = InProcessBackend(split.data, models, warm=False)
    backend.warm()
    backend.watches.engine = _poisoned(backend.watches.engine, "ADX")
    backend.executor = backend.watches.engine.executor  # scans hit the same defect
    with TestClient(create_app(backend, api_keys=("k1",)), headers={"x-api-key": "k1"}) as c:
        bad = {"where": "ADX[1] > 0"}
        r = c.put("/v1/screens/adx", json=bad)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "definition"
        assert "KeyError" in r.json()["detail"][0]["msg"]
        assert c.get("/v1/screens/adx").status_code == 404
        r = c.post("/v1/watches", json={"name": "adx", "definition": bad})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "definition"
        assert c.get("/v1/watches").json()["count"] == 0
        ok = {"where": "RSI > 50"}
        assert c.put("/v1/screens/rsi", json=ok).status_code == 200
        assert c.post("/v1/watches", json={"name": "rsi", "screen": "rsi"}).status_code == 201
