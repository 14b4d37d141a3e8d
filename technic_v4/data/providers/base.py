"""The one interface every market-data provider implements, and what they share.

A provider answers one question: `fetch(sessions, symbols) -> Fetched`, the daily bars of
those symbols on those sessions of its calendar, as the long table the store ingests and
appends (`BAR_COLUMNS`, plus `adj_close` when the provider's `prices` is "adj_close"), with a
report per unit of work: which symbols (or, for a whole-market source, which sessions) had no
data, and which failed after every retry and why. The updater (update.py), the quality gate,
appends and watches read only this; none of them knows which provider ran.

`complete_through` is how a failure stays visible without freezing a hole into the store:
appends never rewrite history, so the updater appends only sessions up to it (None: nothing
is complete) and the rest waits for a rerun, which the provider's on-disk cache makes cheap.
A symbol with no data at all (delisted, renamed, unknown) does not hold anything back; it is
reported by name.

Providers take their keys and base URLs as arguments (from `Settings`, read by the CLI);
none reads the environment.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

BAR_COLUMNS = ["symbol", "date", "open", "high", "low", "close", "volume"]
# beside the store: what `data init` used, its universe, the last update's outcome
SOURCE = Path("providers") / "source.json"
UNIVERSE = Path("providers") / "universe.parquet"
STATUS = Path("providers") / "update.json"
Progress = Callable[[int, int], None]  # (units done, units in all)


class ProviderError(RuntimeError):
    """A provider that cannot run at all (no key, refused key, unknown calendar)."""


@dataclass
class Fetched:
    """What one `fetch` returned (module docstring)."""

    bars: pd.DataFrame
    complete_through: pd.Timestamp | None
    empty: list[str] = field(default_factory=list)          # units with no data (by name)
    failed: dict[str, str] = field(default_factory=dict)    # unit -> reason after retries
    fetched: list[str] = field(default_factory=list)  # units fetched by this run
    cached: list[str] = field(default_factory=list)   # units already in the cache
    requests: int = 0    # HTTP requests this run made


class Provider(Protocol):
    """Daily bars from one source (module docstring)."""

    name: str
    prices: str          # how bars arrive: "adj_close" (with an adj_close column) or "as given"

    def fetch(self, sessions: pd.DatetimeIndex, symbols: Sequence[str] | None, *,
              progress: Progress | None = None) -> Fetched:
        """Bars for `symbols` (None: every symbol the source has) on `sessions`."""
        ...


class RateLimiter:
    """At most `per_minute` request starts per minute, shared by every thread (None: no cap)."""

    def __init__(self, per_minute: float | None):
        self.interval = 0.0 if not per_minute else 60.0 / per_minute
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        time.sleep(max(0.0, start - now))


def write_atomic(frame: pd.DataFrame, path: Path) -> None:
    """`frame` as Parquet at `path` through a temporary file and one rename, so a run killed
    mid-write never leaves half a file that a resumed run would trust."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def read_source(data_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """What `init` recorded: provider name and calendar (None: the store was not built by
    `data init`)."""
    path = Path(data_dir) / SOURCE
    return json.loads(path.read_text()) if path.is_file() else None


def read_status(data_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The last update's outcome (`write_status`), or None before the first."""
    path = Path(data_dir) / STATUS
    return json.loads(path.read_text()) if path.is_file() else None


def write_status(data_dir: str | os.PathLike[str], status: dict[str, Any]) -> None:
    path = Path(data_dir) / STATUS
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status, indent=1, default=str))
    os.replace(tmp, path)


def saved_universe(data_dir: str | os.PathLike[str]) -> pd.DataFrame | None:
    path = Path(data_dir) / UNIVERSE
    return pd.read_parquet(path) if path.is_file() else None
