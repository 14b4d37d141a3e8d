"""Shared fixtures, and the suite's markers by folder.

The folders mirror the code (data, indicators, scan, alpha, cli, api, serve, web). Tests under
serve/ start Ray Serve (marker `serve`); tests under web/ also drive Chromium (`browser`).
`python -m pytest -m "not serve and not browser"` runs the library, CLI and in-process API
suites in under a minute; `--slow` adds the tests marked slow (the README's test command,
which CI runs, gives it). Engine tests seed Panels in memory; fixtures that start real
servers (moto's S3, redis-server, the warm in-process backend) are shared per session.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from technic_v4.data.panel import Panel, panel_from_arrays


def _isolate_from_the_users_environment() -> None:
    """The suite never reads the user's settings or folders: every `TECHNIC_*` variable is
    dropped and the XDG folders (platformdirs' data, state, config, cache) point into one
    temporary home per run (inherited by the xdist workers), a folder of their own per
    worker. Processes the tests start (the CLI, launchers, Ray's workers) inherit both."""
    for name in [n for n in os.environ if n.startswith("TECHNIC_")]:
        del os.environ[name]
    home = os.environ.get("PYTEST_TECHNIC_HOME")
    if not home:
        home = tempfile.mkdtemp(prefix="technic-suite-home-")
        os.environ["PYTEST_TECHNIC_HOME"] = home
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    for kind in ("DATA", "STATE", "CONFIG", "CACHE"):
        os.environ[f"XDG_{kind}_HOME"] = os.path.join(home, worker, kind.lower())


_isolate_from_the_users_environment()
FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent
FOLDER_MARKERS = {"serve": ("serve",), "web": ("serve", "browser")}
# The Serve tests run in two xdist groups, one worker each, side by side from the start:
# `launchers` (modules that start `python -m deployments.local` / `deployments.launch` as
# subprocesses: their Ray, if any, is the subprocess's) and `serve` (modules that start Ray in
# the test process: one Ray at a time per worker, shared where settings match). Both spend
# much of their time waiting on wall-clock work (floods, Locust runs, replica restarts), which
# the other worker's CPU-bound tests fill. RAY_ADDRESS=local (below) keeps every ray.init()
# from joining the 2-node cluster test_cluster.py registers as the machine's "current" one.
LAUNCHER_MODULES = (
    "serve/test_cost_edge.py", "serve/test_edge_local.py", "serve/test_edge_serve.py",
    "serve/test_heavy_launchers.py", "serve/test_tenancy_launchers.py",
)
# The order the `serve` group runs in (one worker, one module after another): modules whose
# Ray settings match run next to each other, so one Ray start serves them all
# (serve_support.ray_session: a start costs 20-50 s here); the cluster module, which stops
# the shared session, first. Only speed depends on it: every module starts what it needs.
# Modules not listed run after these, in file order.
SERVE_SCHEDULE = (
    *LAUNCHER_MODULES, "serve/test_cluster.py",
    "serve/test_faults.py", "serve/test_model_swap_serve.py", "serve/test_seed_ray.py",
    "serve/test_serve_metrics.py",  # the same Ray settings (serve_support.METRICS_PORT)
    "serve/test_serve.py", "serve/test_store_uri_serve.py", "serve/test_watch_serve.py",
    "web/test_web.py", "web/test_web_escaping.py", "web/test_web_screens.py",
    "web/test_web_watches.py",
)
# What a test costs, to deal the groups out longest first (`--no-loadscope-reorder` keeps the
# order given here): a test marked slow takes seconds to minutes, another a fraction of one.
SLOW_COST, QUICK_COST = 1.0, 0.02
os.environ["RAY_ADDRESS"] = "local"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true",
                     help="also run the tests marked slow (the README's test command does)")
    parser.addoption("--network", action="store_true",
                     help="also run the tests marked network, against the live services")


@pytest.hookimpl(tryfirst=True)  # before xdist's, which reads the groups into the node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Markers by folder, and the xdist groups (`-n 2 --dist loadgroup` in pyproject.toml):
    the Serve tests in two groups (`launchers`, `serve`: see LAUNCHER_MODULES), each other
    module in a group of its own, so its module fixtures (trained models, servers) are built
    once. Groups are handed to the workers in this order: the two Serve groups, then the
    others by their estimated cost, largest first, so no worker is left running a long group
    alone at the end. Tests marked `slow` (processes, training, long property runs) are
    skipped, and counted, unless `--slow` is given or `-m` names them, so a quick run stays
    quick and CI runs everything."""
    run_slow = config.getoption("--slow") or "slow" in (config.getoption("-m") or "")
    skip_slow = pytest.mark.skip(reason="slow: `--slow` runs it (CI does)")
    group_of: dict[int, str] = {}
    cost: dict[str, float] = {}
    for k, item in enumerate(items):
        path = Path(item.fspath).relative_to(ROOT)
        markers = FOLDER_MARKERS.get(path.parts[0], ())
        for name in markers:
            item.add_marker(getattr(pytest.mark, name))
        group = str(path)
        if markers:
            group = "launchers" if path.as_posix() in LAUNCHER_MODULES else "serve"
        item.add_marker(pytest.mark.xdist_group(group))
        group_of[k] = group
        slow = item.get_closest_marker("slow") is not None
        cost[group] = cost.get(group, 0.0) + (SLOW_COST if slow and run_slow else QUICK_COST)
        if not run_slow and slow:
            item.add_marker(skip_slow)
        if not config.getoption("--network") and item.get_closest_marker("network"):
            item.add_marker(pytest.mark.skip(reason="network: reaches a live service; "
                                             "`--network` runs it"))
    rank = {name: k for k, name in enumerate(SERVE_SCHEDULE)}

    def order(pair: tuple[int, pytest.Item]) -> tuple[int, float, int, int]:
        k, item = pair
        group = group_of[k]
        if group in ("launchers", "serve"):
            path = Path(item.fspath).relative_to(ROOT).as_posix()
            return (0, 0.0, rank.get(path, len(rank)), k)
        return (1, -cost[group], 0, k)

    items[:] = [item for _, item in sorted(enumerate(items), key=order)]


@pytest.fixture(scope="session")
def real_bars() -> Panel:
    """Real daily OHLCV (AAPL, FB, GOOG, IBM, MSFT, 2000-2013; see fixtures/PROVENANCE.md)
    on the union of their dates, NaN where a ticker has no row (GOOG and FB list later)."""
    df = pd.read_csv(FIXTURES / "stocks.csv.gz", parse_dates=["Date"])
    wide = {
        col.lower(): df.pivot(index="Ticker", columns="Date", values=col).sort_index()
        for col in ("Open", "High", "Low", "Close", "Volume")
    }
    arrays = {name: frame.to_numpy(dtype=np.float64) for name, frame in wide.items()}
    return panel_from_arrays(
        wide["close"].index.to_list(),
        pd.DatetimeIndex(wide["close"].columns),
        source="quandl-wiki-fixture",
        **arrays,
    )


@pytest.fixture(scope="session")
def s3(tmp_path_factory):  # type: ignore[no-untyped-def]
    """An S3 API server (moto) on 127.0.0.1 with a bucket, and AWS env for pyarrow."""
    from s3_support import s3_server

    with s3_server(tmp_path_factory.mktemp("moto") / "requests.log") as server:
        yield server


@pytest.fixture(scope="session")
def redis_server():  # type: ignore[no-untyped-def]
    """A real redis-server on 127.0.0.1 and a free port (skips without one)."""
    from redis_support import REDIS, SKIP_REASON, redis_running

    if REDIS is None:
        pytest.skip(SKIP_REASON)
    with redis_running() as srv:
        yield srv


@pytest.fixture(scope="session")
def warm(tmp_path_factory):  # type: ignore[no-untyped-def]
    """One warm in-process API backend (500-symbol demo store, tiny models) for the session;
    tests must not change its store (build their own for that)."""
    from serve_support import warm_backend

    return warm_backend(tmp_path_factory.mktemp("warm"))


@pytest.fixture(scope="session", autouse=True)
def _ray_shutdown_at_exit():  # type: ignore[no-untyped-def]
    """Serve modules share a Ray session where their settings match (serve_support); it
    ends with the test session."""
    yield
    import sys

    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()
