"""What the CLI, the HTTP API and the Watcher deployment call: one `WatchService`.

It joins the store (store.py), the evaluation (evaluate.py, over an `Engine`: in-process
kernels and models, or the Serve replicas' handles) and the deliverer (deliver.py):
  create   checks the spec and every target (safety.py: DNS resolved now), checks that the
           screen resolves and evaluates it once at the newest session (trial.py: a failure
           that is the screen's is a ConfigError, and nothing is stored), stores the watch,
           records its baseline and returns the secret — the only time it is returned;
  tick     the watcher's step: when the data version (or the set of watches) changed since
           the last tick, `catch_up` (a watch that fails is marked failed, the others
           advance); then deliver until nothing more is due now; every `prune_every_s`
           (Policy), the outbox pruned to its retention and its space reclaimed;
  run      tick every `poll_s` until stopped (the Watcher deployment, `technic watch run`,
           the in-process API's loop), each tick preceded by the scheduled data update's
           `step()` when one is set (`updater`: data/providers/schedule.py, which runs it
           after each close and keeps its own failures); a tick that fails is logged and counted
           (`stats()["tick_errors"]`, the last error kept), and the loop goes on;
  test     one signed `watch.test` message to each target, now, outside the outbox;
  redeliver, events, status, remove: the store's, with names checked.
What a caller asks for is seen through its `scope` (technic_v4/tenancy.py: the API key's
namespace; OPEN for the CLI and an API without keys): another owner's watch is unknown, and
only the scope's own events are read. `tick` sees every watch.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from technic_v4.data.reader import Snapshot, StoreReader
from technic_v4.errors import ConfigError, UnknownScreenError
from technic_v4.scan.many import execute_many
from technic_v4.scan.plan import check_cost
from technic_v4.screens.trial import evaluated_once
from technic_v4.settings import Settings
from technic_v4.tenancy import OPEN, Scope
from technic_v4.watch.clock import SYSTEM, Clock
from technic_v4.watch.deliver import Deliverer, Policy
from technic_v4.watch.evaluate import Engine, SessionRun, catch_up
from technic_v4.watch.model import Watch, WatchSpec, check_watch_name
from technic_v4.watch.safety import check_target
from technic_v4.watch.send import Outcome, send_apprise, send_webhook, webhook_body
from technic_v4.watch.store import Events, Rows, SqliteWatchStore, WatchStore

log = logging.getLogger("technic.watch")


@dataclass
class TickResult:
    runs: list[SessionRun]
    delivered: int

    def as_dict(self) -> dict[str, Any]:
        return {"sessions": [r.as_dict() for r in self.runs], "claimed": self.delivered}


class WatchService:
    """Watches over one store and one engine (module docstring)."""

    def __init__(self, store: WatchStore, snapshot: Callable[[], Snapshot], engine: Engine,
                 policy: Policy | None = None):
        self.store, self.snapshot, self.engine = store, snapshot, engine
        self.policy = policy or Policy()
        self.deliverer = Deliverer(store, self.policy)
        self.clock = store.clock  # when pruning and the next tick are due (tests move it)
        self._seen: tuple[str, frozenset[str]] | None = None
        self._pruned_at: float | None = None
        self.counters = {"ticks": 0, "tick_errors": 0, "evaluations": 0, "events": 0,
                         "failed": 0, "pruned_events": 0}
        self.last_error: str | None = None
        self.last_tick: dict[str, Any] | None = None
        self.updater: Any = None  # a ScheduledUpdater (TECHNIC_UPDATE_AT), or None

    # -- changes -------------------------------------------------------------------------
    async def create(self, spec: WatchSpec, scope: Scope = OPEN) -> dict[str, Any]:
        """Store the watch (in `scope`'s own namespace) and evaluate its baseline; the answer
        holds the secret (once)."""
        spec.check()
        for target in spec.targets():
            await check_target(target.kind, target.url, self.policy.allow_private)
        probe = Watch("", spec.name, spec.options(), (), "", "", scope.owner)
        try:
            config, _ = await asyncio.to_thread(probe.config, self.engine.screens)
        except UnknownScreenError as exc:
            raise ConfigError("screen", f"{exc}; valid: {', '.join(exc.valid or [])}",
                              exc.valid) from None
        snap = await asyncio.to_thread(self.snapshot)
        check_cost(config, snap, self.engine.budget)
        if len(snap.sessions):
            e = self.engine
            with evaluated_once("screen" if spec.screen is not None else "definition"):
                await execute_many([replace(config, as_of_date=str(snap.sessions[-1].date()))],
                                   snap, e.evaluate, e.predict, chunk_size=e.chunk_size,
                                   evaluations=e.evaluations, budget=e.budget)
        watch, secret = await asyncio.to_thread(self.store.scoped(scope).create, spec)
        runs = await catch_up(self.store, snap, self.engine, [watch],
                              max_events=self.policy.max_events)
        return {**_public(watch, scope), "secret": secret,
                "baseline": runs[0].as_dict() if runs else None}

    async def remove(self, name: str, scope: Scope = OPEN) -> None:
        await asyncio.to_thread(self.store.scoped(scope).delete, check_watch_name(name))

    async def redeliver(self, name: str, ids: Sequence[int] | None = None,
                        scope: Scope = OPEN) -> int:
        return await asyncio.to_thread(self.store.scoped(scope).redeliver,
                                       check_watch_name(name), ids)

    # -- reads ---------------------------------------------------------------------------
    async def list(self, scope: Scope = OPEN) -> Rows:
        store = self.store.scoped(scope)
        watches = await asyncio.to_thread(store.list)
        states = {s["id"]: s for s in (await asyncio.to_thread(store.status))["watches"]}
        return [{**_public(w, scope), "state": states.get(w.id)} for w in watches]

    async def get(self, name: str, scope: Scope = OPEN) -> dict[str, Any]:
        store = self.store.scoped(scope)
        watch = await asyncio.to_thread(store.get, check_watch_name(name))
        state = (await asyncio.to_thread(store.status, name))["watches"][0]
        return {**_public(watch, scope), "state": state}

    async def events(self, after: int = 0, limit: int = 100, watch: str | None = None,
                     scope: Scope = OPEN) -> Events:
        if watch is not None:
            check_watch_name(watch)
        return await asyncio.to_thread(self.store.scoped(scope).events_after, after, limit,
                                       watch)

    async def last_seq(self, scope: Scope = OPEN) -> int:
        return await asyncio.to_thread(self.store.scoped(scope).last_seq)

    async def status(self, name: str | None = None, scope: Scope = OPEN) -> dict[str, Any]:
        """Deliveries by state, breakers, dead letters (store.status) of one watch or all."""
        if name is not None:
            check_watch_name(name)
        return await asyncio.to_thread(self.store.scoped(scope).status, name)

    def stats(self) -> dict[str, Any]:
        out = {**self.counters, "delivery": dict(self.deliverer.stats),
               "last_error": self.last_error, "last_tick": self.last_tick}
        if self.updater is not None:
            out["update"] = self.updater.status()
        return out

    # -- the watcher ---------------------------------------------------------------------
    async def tick(self) -> TickResult:
        """Evaluate what a new data version brought, then deliver what is due."""
        snap = await asyncio.to_thread(self.snapshot)
        watches = await asyncio.to_thread(self.store.list)
        seen = (snap.data_version, frozenset(w.id for w in watches))
        runs: list[SessionRun] = []
        if seen != self._seen:  # evaluating twice is harmless (store.record), only wasted
            runs = await catch_up(self.store, snap, self.engine, watches,
                                  max_events=self.policy.max_events)
            self._seen = seen
            self.counters["evaluations"] += sum(len(r.evaluated) for r in runs)
            self.counters["events"] += sum(r.events for r in runs)
            self.counters["failed"] += sum(len(r.failed) for r in runs)
        delivered = await self.deliverer.run_until_idle()
        await self.prune_if_due()
        self.counters["ticks"] += 1
        result = TickResult(runs, delivered)
        self.last_tick = {"at": self.clock.now(), **result.as_dict()}
        return result

    async def prune_if_due(self) -> dict[str, int] | None:
        """`store.prune` to the retention when `prune_every_s` passed since the last one."""
        now = self.clock.now()
        if self._pruned_at is not None and now - self._pruned_at < self.policy.prune_every_s:
            return None
        gone = await asyncio.to_thread(self.store.prune, now, self.policy.retention_s)
        self._pruned_at = now
        self.counters["pruned_events"] += gone.get("events", 0)
        return gone

    async def run(self, poll_s: float, stop: asyncio.Event | None = None) -> None:
        """`tick` every `poll_s` (sooner when a retry falls due) until `stop` is set."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                if self.updater is not None:
                    await asyncio.to_thread(self.updater.step)
                await self.tick()
                self.last_error = None
            except Exception as exc:  # the loop must outlive one bad tick: counted, kept
                self.counters["tick_errors"] += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:500]
                log.exception("technic watch: tick failed")
            due = await asyncio.to_thread(self.store.next_due)
            wait = poll_s if due is None else min(poll_s, max(0.05, due - self.clock.now()))
            stopped = asyncio.ensure_future(stop.wait())
            slept = asyncio.ensure_future(self.clock.sleep(wait))
            await asyncio.wait({stopped, slept}, return_when=asyncio.FIRST_COMPLETED)
            for task in (stopped, slept):
                task.cancel()

    async def test(self, name: str, scope: Scope = OPEN) -> Rows:
        """A signed `watch.test` message to every target of `name`, now (not via the outbox:
        nothing is retried or recorded). One result per target."""
        watch = await asyncio.to_thread(self.store.scoped(scope).get, check_watch_name(name))
        event = {"id": "evt_test_" + secrets.token_hex(8), "kind": "test",
                 "watch": watch.name, "session": None, "symbol": None, "row": None}
        out = []
        p = self.policy
        for target in watch.targets:
            if target.kind == "webhook":
                outcome = await send_webhook(self.deliverer.client(), target.url, watch.secret,
                                             str(event["id"]), webhook_body(event),
                                             allow_private=p.allow_private,
                                             timeout_s=p.timeout_s)
            else:
                outcome = await send_apprise(target.url, f"technic watch {watch.name}: test",
                                             "A test message: this target will receive the "
                                             "watch's events.", allow_private=p.allow_private,
                                             timeout_s=p.timeout_s)
            out.append({**target.public(), **_outcome(outcome)})
        return out


def _public(watch: Watch, scope: Scope) -> dict[str, Any]:
    """What a caller is shown of a watch; an admin also sees its owner."""
    shown = scope.admin and watch.owner
    return {**watch.public(), "owner": watch.owner} if shown else watch.public()


def _outcome(outcome: Outcome) -> dict[str, Any]:
    return {"ok": outcome.ok, "status": outcome.status, "error": outcome.error}


def local_service(data_dir: Any, models_dir: Any = None, *, policy: Policy | None = None,
                  state_dir: Any = None, reader: StoreReader | None = None,
                  clock: Clock = SYSTEM, settings: Settings | None = None) -> WatchService:
    """A WatchService that evaluates in this process (the CLI, `technic watch run`), on
    `clock`'s time; `settings` (the process's) name the models and the delivery policy
    unless `models_dir` / `policy` are given."""
    from technic_v4.alpha.inference import ModelSet
    from technic_v4.scan.executor import LocalExecutor
    from technic_v4.scan.run import Evaluations
    from technic_v4.screens.saved import ScreenStore

    reader = reader or StoreReader(data_dir)
    root = Path(models_dir) if models_dir else settings.models_root() if settings else None
    if policy is None:
        policy = Policy.from_settings(settings) if settings else Policy()
    screens = ScreenStore.for_data_dir(reader.data_dir, state_dir)
    engine = Engine(LocalExecutor(reader, ModelSet(root)), screens, None, Evaluations(2))
    return WatchService(SqliteWatchStore.for_data_dir(reader.data_dir, state_dir, clock=clock),
                        reader.snapshot, engine, policy)
