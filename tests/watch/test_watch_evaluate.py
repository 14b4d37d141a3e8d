"""Appending sessions to a store gives exactly the entered/left sets (and order) that two
`run_scan`s as of the two sessions give, for presets, saved screens and inline definitions
with expressions, sector filters and ranks; a session is never evaluated twice."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))
from serve_support import tiny_models  # noqa: E402
from support import run, split_market  # noqa: E402

from technic_v4.data.reader import StoreReader  # noqa: E402
from technic_v4.scan import ScanConfig, run_scan  # noqa: E402
from technic_v4.screens.saved import ScreenStore  # noqa: E402
from technic_v4.watch.deliver import Policy  # noqa: E402
from technic_v4.watch.model import WatchSpec  # noqa: E402
from technic_v4.watch.service import local_service  # noqa: E402

SAVED = {"where": "RSI > 50 and Close > SMA50", "sectors": ["Technology", "Energy"],
         "rank": "mom_21 / ATR_pct", "max_symbols": 15}
WATCHES = [
    WatchSpec("squeeze", screen="squeeze"),
    WatchSpec("macd", screen="macd-bull-cross", rank_moved=5),
    WatchSpec("saved", screen="tech-momo", rank_moved=2),
    WatchSpec("inline", definition={"where": "Close > SMA20 and mom_5 > 0.02",
                                    "sectors": ["Healthcare"], "sort_by": "RSI"}),
    WatchSpec("top", definition={"min_tech_rating": 10, "max_symbols": 25}, initial=True),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("watch-eval")
    split = split_market(root / "data", n_symbols=300, tail=3)
    models = tiny_models(root / "models")
    ScreenStore.for_data_dir(root / "data").save("tech-momo", SAVED)
    svc = local_service(root / "data", models, policy=Policy(allow_private=True))
    created = {spec.name: run(svc.create(spec)) for spec in WATCHES}
    sessions = []
    for _ in range(3):
        sessions += split.append()
        run(svc.tick())
    return {"split": split, "svc": svc, "models": models, "created": created,
            "sessions": sessions, "data": root / "data"}


def _kept(world, spec: WatchSpec, session: str) -> list[str]:
    cfg = (ScanConfig(screen=spec.screen, as_of_date=session) if spec.screen
           else ScanConfig(**dict(spec.definition or {}), as_of_date=session))
    frame, _ = run_scan(cfg, loader=StoreReader(world["data"]), models_dir=world["models"],
                        screens=ScreenStore.for_data_dir(world["data"]))
    return frame["Symbol"].tolist()


def test_baseline_emits_nothing_unless_initial(world):
    svc, created = world["svc"], world["created"]
    first = str(world["split"].market.sessions[world["split"].written - 4].date())
    for answer in created.values():
        assert answer["secret"].startswith("whsec_")
        assert answer["baseline"]["session"] == first
    events = [e for _, e in svc.store.events_after(0, 100_000)]
    initial = [e for e in events if e["session"] == first]
    assert {e["watch"] for e in initial} == {"top"}
    assert [e["symbol"] for e in initial] == _kept(world, WATCHES[-1], first)
    assert all(e["kind"] == "entered" for e in initial)


@pytest.mark.parametrize("spec", WATCHES, ids=[w.name for w in WATCHES])
def test_events_equal_the_difference_of_two_scans(world, spec):
    svc = world["svc"]
    events = [e for _, e in svc.store.events_after(0, 100_000) if e["watch"] == spec.name]
    sessions = world["sessions"]
    before = _kept(world, spec, str(world["split"].market.sessions[
        world["split"].written - 4].date()))
    changed = 0
    for session in sessions:
        now = _kept(world, spec, session)
        got = [e for e in events if e["session"] == session]
        entered = [e["symbol"] for e in got if e["kind"] == "entered"]
        left = [e["symbol"] for e in got if e["kind"] == "left"]
        assert entered == [s for s in now if s not in before]          # in rank order
        assert left == [s for s in before if s not in now]
        if spec.rank_moved:
            moved = {e["symbol"]: (e["previous_rank"], e["rank"]) for e in got
                     if e["kind"] == "rank_moved"}
            expect = {s: (before.index(s) + 1, now.index(s) + 1) for s in now if s in before
                      and abs(before.index(s) - now.index(s)) >= spec.rank_moved}
            assert moved == expect
        changed += len(entered) + len(left)
        before = now
    if spec.name in ("macd", "top", "squeeze"):
        assert changed > 0, "the test should see some change"


def test_events_carry_rows_versions_and_deterministic_ids(world):
    svc, split = world["svc"], world["split"]
    reader = StoreReader(world["data"])
    m = split.market
    col = {s: i for i, s in enumerate(m.universe["symbol"])}
    events = [e for _, e in svc.store.events_after(0, 100_000)]
    assert len({e["id"] for e in events}) == len(events)
    for e in events:
        j = int(np.searchsorted(m.sessions.values, np.datetime64(e["session"])))
        assert e["data_version"] and e["screen"]["version"] >= 1
        assert e["screen_version"] == e["screen"]["version"]
        if e["row"] is None:
            assert e["kind"] == "left" and e["row_state"] == "no data"
            assert not np.isfinite(m.close[col[e["symbol"]], j])
            continue
        assert e["row"]["Symbol"] == e["symbol"]
        assert e["row"]["Close"] == pytest.approx(m.close[col[e["symbol"]], j])
        assert e["row"]["LastDate"] == e["session"]
    last = [e for e in events if e["session"] == world["sessions"][-1]]
    assert {e["data_version"] for e in last} == {reader.snapshot().data_version}
    saved = [e for e in events if e["watch"] == "saved"]
    assert all(e["screen"] == {"name": "tech-momo", "version": 1, "preset": False}
               for e in saved)
    assert all("RankValue" in e["row"] for e in saved if e["kind"] != "left")


def test_a_session_is_evaluated_once(world):
    svc = world["svc"]
    before = svc.store.last_seq()
    svc._seen = None  # forget the data version: the next tick evaluates again
    result = run(svc.tick())
    assert result.runs == [] and svc.store.last_seq() == before
    from technic_v4.watch.evaluate import Engine, catch_up
    from technic_v4.watch.store import Evaluation

    # even forced: a recorded (watch, session) writes nothing more, and ids are unique
    watch = svc.store.get("top")
    last = svc.store.last_evaluation(watch.id)
    redo = Evaluation(watch.id, last.session, last.data_version, last.screen, [])
    fake = [{"id": "evt_x", "kind": "left", "symbol": "X", "session": last.session}]
    assert svc.store.record([(watch, redo, fake)]) == 0
    assert svc.store.last_seq() == before
    assert run(catch_up(svc.store, StoreReader(world["data"]).snapshot(),
                        Engine(svc.engine.executor, svc.engine.screens))
               ) == []


def _random_configs(n: int, seed: int = 15) -> list[ScanConfig]:
    """Screens drawn at random from conditions, sectors, ranks, sorts and limits."""
    import random

    rng = random.Random(seed)
    conds = ["RSI > {a}", "RSI < {b}", "Close > SMA50", "mom_21 > 0", "Volume_ratio > 1.2",
             "pct_rank(mom_63) > 0.7", "crosses_above(MACD, MACD_signal, within=5)",
             "Close > highest(High, 20)[1]", "sector_rank(TechRating) <= 5", "ATR_pct < 0.03"]
    sectors = ["Technology", "Energy", "Healthcare", "Financials", "Utilities"]
    out = []
    for _ in range(n):
        where = " and ".join(rng.sample(conds, rng.randint(1, 3))).format(
            a=rng.randint(30, 60), b=rng.randint(50, 80))
        kw: dict = {"where": where}
        if rng.random() < 0.5:
            kw["sectors"] = rng.sample(sectors, rng.randint(1, 2))
        if rng.random() < 0.4:
            kw["rank"] = rng.choice(["mom_63 / ATR_pct", "-RSI", "Volume_ratio"])
        elif rng.random() < 0.5:
            kw["sort_by"] = rng.choice(["RSI", "mom_21", "Alpha5d", "AlphaScore"])
            kw["ascending"] = rng.random() < 0.5
        if rng.random() < 0.5:
            kw["max_symbols"] = rng.randint(1, 40)
        if rng.random() < 0.3:
            kw["min_tech_rating"] = float(rng.randint(-20, 30))
        out.append(ScanConfig(**kw))
    return out


def test_execute_many_keeps_exactly_what_run_scan_keeps(world):
    """The property watches rest on: for any mix of screens at a session, each Selection
    lists the symbols run_scan keeps, in its order."""
    from technic_v4.scan.many import execute_many

    svc = world["svc"]
    reader = StoreReader(world["data"])
    snap = reader.snapshot()
    for session in (world["sessions"][0], world["sessions"][-1]):
        cfgs = [ScanConfig(**{**c.__dict__, "as_of_date": session})
                for c in _random_configs(8)]
        selections, _ = run(execute_many(cfgs, snap, svc.engine.evaluate, svc.engine.predict))
        for cfg, sel in zip(cfgs, selections, strict=True):
            frame, _ = run_scan(cfg, loader=reader, models_dir=world["models"])
            assert sel.symbols == frame["Symbol"].tolist(), (cfg.where, cfg.rank)


def test_event_rows_carry_the_screen_s_own_forecasts(tmp_path):
    """Models that give every row one number (tiny_models(realistic=False)): each screen
    withholds both horizons, as its run_scan does, so its event rows show null alpha, not
    the shared evaluation's numbers; on sound models the rows equal run_scan's."""
    for realistic in (False, True):
        root = tmp_path / str(realistic)
        split = split_market(root / "data", n_symbols=120, tail=1)
        models = tiny_models(root / "models", realistic=realistic)
        svc = local_service(root / "data", models, policy=Policy(allow_private=True))
        spec = WatchSpec("all", definition={"max_symbols": 30}, initial=True)
        run(svc.create(spec))
        split.append()
        run(svc.tick())
        events = [e for _, e in svc.store.events_after(0, 100_000) if e["row"] is not None]
        assert events
        for session in {e["session"] for e in events}:
            frame, status = run_scan(ScanConfig(max_symbols=30, as_of_date=session),
                                     loader=StoreReader(root / "data"), models_dir=models)
            assert status.alpha["available"] is realistic
            want = frame.set_index("Symbol")
            for e in (e for e in events if e["session"] == session and e["kind"] == "entered"):
                for column in ("Alpha5d", "Alpha10d", "AlphaScore"):
                    expect = want.loc[e["symbol"], column]
                    got = e["row"][column]
                    if np.isnan(expect):
                        assert got is None, (realistic, column, got)
                    else:
                        assert got == pytest.approx(expect, rel=1e-12), (column, got, expect)
