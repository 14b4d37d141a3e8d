"""Webhooks to a real local receiver: failures, a timeout, then success — every event
arrives once acknowledged, signed (verified with `standardwebhooks`); the circuit breaker,
dead letters and redelivery."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

sys.path.insert(0, str(Path(__file__).parent.parent))
from serve_support import tiny_models  # noqa: E402
from support import Receiver, run, split_market  # noqa: E402

from technic_v4.watch.clock import ManualClock  # noqa: E402
from technic_v4.watch.deliver import Policy  # noqa: E402
from technic_v4.watch.model import WatchSpec  # noqa: E402
from technic_v4.watch.service import local_service  # noqa: E402

# the waits are the store's clock's (ManualClock: moved by the test, never slept on); only
# the HTTP timeout is real, and far longer than a local answer takes on a loaded machine
POLICY = dict(allow_private=True, base_s=5.0, cap_s=60.0, timeout_s=4.0, lease_s=30)
ROUNDS = 500  # delivery rounds before a test calls delivery stuck


@pytest.fixture(scope="module")
def market(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("watch-delivery")
    return root, tiny_models(root / "models")


def _service(root: Path, models: Path, name: str, **policy):  # type: ignore[no-untyped-def]
    split = split_market(root / name / "data", n_symbols=200, tail=2)
    clock = ManualClock()
    svc = local_service(split.data, models, policy=Policy(**{**POLICY, **policy}), clock=clock)
    return split, svc, clock


def _deliver_all(svc, clock: ManualClock) -> int:  # type: ignore[no-untyped-def]
    """Deliver, moving the clock to the next due retry each round, until nothing is
    pending; returns the rounds it took."""
    for rounds in range(1, ROUNDS + 1):
        run(svc.deliverer.run_until_idle())
        counts = svc.store.status()["watches"]
        if all(w["deliveries"]["pending"] == 0 for w in counts):
            return rounds
        clock.advance_to(svc.store.next_due())
    raise AssertionError(f"still pending after {ROUNDS} rounds: {svc.store.status()}")


def test_failures_and_a_timeout_then_every_event_arrives_once_signed(market):
    root, models = market
    # requests 0-2 fail (500, 502, 429 with Retry-After 0), 3 gets no answer (the client
    # times out), then all accepted
    answers = {0: 500, 1: 502, 2: 429, 3: ("hang", 60.0)}
    with Receiver(plan=lambda n: answers.get(n, 200)) as rx:
        split, svc, clock = _service(root, models, "ok", breaker_failures=100)
        made = {name: run(svc.create(WatchSpec(name, screen=screen, webhooks=[rx.url])))
                for name, screen in (("squeeze", "squeeze"), ("macd", "macd-bull-cross"))}
        split.append(2)
        run(svc.tick())
        _deliver_all(svc, clock)
        events = {e["id"]: e for _, e in svc.store.events_after(0, 10_000)}
        assert len(events) > 5
        accepted: dict[str, int] = {}
        for req in rx.requests:
            headers = {k.lower(): v for k, v in req["headers"].items()}
            event = events[headers["webhook-id"]]
            payload = Webhook(made[event["watch"]]["secret"]).verify(req["body"], headers)
            assert payload == {"type": f"watch.{event['kind']}", "data": event}
            with pytest.raises(WebhookVerificationError):  # another watch's secret does not verify
                other = next(n for n in made if n != event["watch"])
                Webhook(made[other]["secret"]).verify(req["body"], headers)
            if req["status"] == 200 and req.get("answered"):
                accepted[headers["webhook-id"]] = accepted.get(headers["webhook-id"], 0) + 1
        assert accepted == dict.fromkeys(events, 1)  # every event, acknowledged once
        log = svc.store.delivery_log()
        acks = [x["delivery"] for x in log if x["outcome"] == "delivered"]
        assert len(acks) == len(set(acks)) == len(events)
        failed = [x for x in log if x["outcome"] == "failed"]
        assert len(failed) >= 4 and any("timeout" in (x["error"] or "") or "no complete"
                                        in (x["error"] or "") for x in failed)
        for w in svc.store.status()["watches"]:
            assert w["deliveries"] == {"pending": 0, "delivered": w["deliveries"]["delivered"],
                                       "dead": 0}
        # nothing is sent for an acknowledged event, however long after (leases long gone)
        sent = len(rx.requests)
        clock.advance(7 * 86400)
        run(svc.deliverer.run_until_idle())
        assert len(rx.requests) == sent


def test_breaker_opens_dead_letters_and_redeliver(market):
    root, models = market
    failing = {"on": True}
    with Receiver(plan=lambda n: 500 if failing["on"] else 200) as rx:
        split, svc, clock = _service(root, models, "dead", max_attempts=3, breaker_failures=2,
                                     breaker_cooldown_s=60.0)
        run(svc.create(WatchSpec("w", screen="macd-bull-cross", webhooks=[rx.url])))
        split.append(2)
        run(svc.tick())
        pending = svc.store.status("w")["watches"][0]["deliveries"]["pending"]
        assert pending > 0
        run(svc.deliverer.run_until_idle())
        state = svc.store.status("w")["watches"][0]
        assert state["targets"][0]["breaker"] == "open"
        assert state["targets"][0]["consecutive_failures"] >= 2
        sent_while_open = len(rx.requests)
        clock.advance(59.0)  # every retry's backoff is over, the cool-down is not
        run(svc.deliverer.run_until_idle())
        assert len(rx.requests) == sent_while_open  # open: nothing is tried
        clock.advance(2.0)  # the cool-down passes: half-open, one trial, which fails
        run(svc.deliverer.run_until_idle())
        assert len(rx.requests) == sent_while_open + 1
        state = svc.store.status("w")["watches"][0]
        assert state["targets"][0]["breaker"] == "open"  # for twice the cool-down now
        clock.advance(119.0)
        run(svc.deliverer.run_until_idle())
        assert len(rx.requests) == sent_while_open + 1
        # from here on, no breaker: every delivery runs out of attempts
        svc.deliverer.policy = replace(svc.deliverer.policy, breaker_failures=10**6)
        _deliver_all(svc, clock)
        state = svc.store.status("w")["watches"][0]
        assert state["deliveries"]["dead"] == pending
        assert len(state["dead_letters"]) == min(pending, 50)
        assert state["dead_letters"][0]["last_status"] == 500
        assert len(rx.requests) <= 3 * pending  # max_attempts each
        failing["on"] = False
        assert run(svc.redeliver("w")) == pending
        _deliver_all(svc, clock)
        state = svc.store.status("w")["watches"][0]
        assert state["deliveries"] == {"pending": 0, "delivered": pending, "dead": 0}
        assert state["targets"][0]["breaker"] == "closed"


def test_redirects_are_not_followed(market):
    root, models = market
    with Receiver(plan=lambda n: 302) as rx, Receiver() as inner:
        rx.redirect = inner.url
        split, svc, _ = _service(root, models, "redirect", max_attempts=1)
        run(svc.create(WatchSpec("w", screen="macd-bull-cross", webhooks=[rx.url])))
        split.append(1)
        run(svc.tick())
        run(svc.deliverer.run_until_idle())
        state = svc.store.status("w")["watches"][0]
        assert state["deliveries"]["dead"] > 0 and not inner.requests
        assert "redirect" in state["dead_letters"][0]["last_error"]
