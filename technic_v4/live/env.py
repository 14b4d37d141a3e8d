"""`LiveEnv`: the screen evaluator's `Env` over the live state, so a compiled screen (`where`,
`rank`) and `select` run on the bars closed so far.

`number(name, width, timeframe)` answers from the timeframe's state ("M1", "M5", "M15",
"M30", "H1", "D"): each symbol's own last `width` closed bars (width <= 2: the current and
the previous value, what comparisons and `crosses_above` read). Longer windows are not kept
live, and asking for one is an error naming the limit, not a guess. Weekly bars are not
kept live either (`W.` screens run on the daily engine). `unprefixed` names the timeframe
a column without a prefix reads ("D" by default; "M5" evaluates a plain screen such as
`crosses_above(Close, VWAP)` on the 5-minute bars).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from technic_v4.live.state import LiveState
from technic_v4.live.steps import OUTPUTS
from technic_v4.screens.env import TimeframesOnBars

# The columns a screen may read live (compile_screen's schema): every output of the state.
SCHEMA: dict[str, str] = {**dict.fromkeys(OUTPUTS, "number"), "Symbol": "text"}


class LiveEnv(TimeframesOnBars):
    """An `Env` (technic_v4.screens.env) over a `LiveState`; a coarser timeframe is read on a
    finer one's bars as the intraday scan reads it (`TimeframesOnBars`)."""

    def __init__(
        self,
        state: LiveState,
        *,
        text: Mapping[str, npt.ArrayLike] | None = None,
        groups: Mapping[str, npt.ArrayLike] | None = None,
        universe: npt.ArrayLike | None = None,
        unprefixed: str = "D",
    ) -> None:
        if unprefixed not in state.frames:
            raise KeyError(f"timeframe {unprefixed!r} is not kept live; kept: "
                           f"{list(state.frames)}")
        self.state = state
        self.unprefixed = unprefixed
        self._cache: dict[tuple[str, int, str], np.ndarray] = {}
        self._version = -1
        self.n_rows = state.n_rows
        self.text_columns = {k: np.asarray(v, dtype=object) for k, v in (text or {}).items()}
        self.group_codes = {k: np.asarray(v, dtype=np.int64) for k, v in (groups or {}).items()}
        self.universe = (np.ones(self.n_rows, dtype=bool) if universe is None
                         else np.asarray(universe, dtype=bool))

    def number(self, name: str, width: int, timeframe: str = "D") -> np.ndarray:
        if self._version != self.state.version:
            self._cache.clear()
            self._version = self.state.version
        key = (name, width, self.unprefixed if timeframe == "D" else timeframe)
        values = self._cache.get(key)
        if values is None:
            values = self._cache[key] = self.state.number(*key)
        return values

    def text(self, name: str) -> np.ndarray:
        if name == "Symbol":
            return self.state.symbols
        return self.text_columns[name]

    def groups(self, name: str) -> np.ndarray:
        return self.group_codes.get(name, np.full(self.n_rows, -1, dtype=np.int64))

    def weeks_spanned(self, width: int) -> int:
        raise ValueError("weekly bars are not kept live: run W. screens on the daily engine")

    def align_weekly(self, values: np.ndarray, width: int) -> np.ndarray:
        raise ValueError("weekly bars are not kept live: run W. screens on the daily engine")
