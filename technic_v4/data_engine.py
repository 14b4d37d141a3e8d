"""The origin design's data module, kept because users' scripts import it
(`from technic_v4 import data_engine`): bars and the universe, read from the store.

Every function here reads through `technic_v4.data.reader.StoreReader` (one per data dir in
this process, so a loop over symbols reads the store's window once) and returns what it gives:
  - `get_price_history(symbol, days)`: one symbol's bars over the last `days` sessions of the
    store (`StoreReader.load`), as the DataFrame the seed's scripts index (`df["Close"]`);
  - `get_price_history_batch(symbols, days)`: the same for many symbols, one read;
  - `load_panel(days)`: the whole universe's window as a `Panel` (what the scan computes on);
  - `get_universe()`: the universe table of the store's current data version.
`data_dir` defaults to $TECHNIC_DATA_DIR, else the per-user data folder; a local folder
without a store gets the synthetic demo market (`reader.ensure_store`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pandas as pd

from technic_v4.data.panel import FIELDS, Panel
from technic_v4.data.reader import StoreReader
from technic_v4.data.store_fs import DataDir, DataRoot, data_root
from technic_v4.data.universe import validate_symbol
from technic_v4.errors import UnknownSymbolError
from technic_v4.settings import Settings

COLUMNS = tuple(f.capitalize() for f in FIELDS)  # Open, High, Low, Close, Volume
FREQS = ("daily",)

_readers: dict[DataRoot, StoreReader] = {}
_lock = threading.Lock()


def reader(data_dir: DataDir | None = None) -> StoreReader:
    """The StoreReader of `data_dir` (default: TECHNIC_DATA_DIR, read now: a script using this
    module starts here) that this module and its callers share."""
    root = data_root(data_dir) if data_dir is not None else Settings().data_root()
    with _lock:
        if root not in _readers:
            _readers[root] = StoreReader(root)
        return _readers[root]


def load_panel(days: int, *, as_of: object = None, data_dir: DataDir | None = None) -> Panel:
    """Every symbol's bars over the last `days` sessions up to `as_of` (None: the latest)."""
    return reader(data_dir).load(as_of, _positive(days))


def get_universe(data_dir: DataDir | None = None) -> pd.DataFrame:
    """The store's universe: symbol, name, sector, industry, first and last session."""
    return reader(data_dir).snapshot().universe.copy()


def get_price_history(symbol: str, days: int, freq: str = "daily", *,
                      as_of: object = None, data_dir: DataDir | None = None) -> pd.DataFrame:
    """`symbol`'s bars over the last `days` sessions of the store up to `as_of`: columns
    Open, High, Low, Close, Volume, indexed by Date; sessions without a bar are left out (an
    empty frame for a symbol that traded none of them). UnknownSymbolError when the store does
    not hold `symbol`; InvalidSymbolError when it is not a symbol."""
    return get_price_history_batch([symbol], days, freq, as_of=as_of, data_dir=data_dir)[
        validate_symbol(symbol)]


def get_price_history_batch(symbols: Sequence[str], days: int, freq: str = "daily", *,
                            as_of: object = None, data_dir: DataDir | None = None
                            ) -> dict[str, pd.DataFrame]:
    """`get_price_history` for each of `symbols` (upper-cased), from one read of the window."""
    if freq not in FREQS:
        raise ValueError(f"freq {freq!r} is not supported; valid: {list(FREQS)}")
    wanted = [validate_symbol(s) for s in symbols]
    panel = load_panel(days, as_of=as_of, data_dir=data_dir)
    rows = reader(data_dir).rows(panel, wanted)
    if (rows < 0).any():
        missing = [s for s, r in zip(wanted, rows, strict=True) if r < 0]
        raise UnknownSymbolError(f"symbols not in the store (data_version "
                                 f"{panel.data_version}): {missing[:10]}")
    return {sym: _frame(panel, int(row)) for sym, row in zip(wanted, rows, strict=True)}


def _frame(panel: Panel, row: int) -> pd.DataFrame:
    has = np.isfinite(panel.close[row])
    return pd.DataFrame({col: getattr(panel, f)[row, has] for col, f in zip(COLUMNS, FIELDS,
                                                                          strict=True)},
                        index=pd.DatetimeIndex(panel.sessions[has], name="Date"))


def _positive(days: int) -> int:
    if isinstance(days, bool) or not isinstance(days, int | np.integer) or days < 1:
        raise ValueError(f"days must be a positive whole number of sessions, got {days!r}")
    return int(days)
