"""Terms: the indicator outputs a request reads, and the registry entries that compute them.

A scan reads indicator outputs from five places, and computes those and nothing else:
  1. the score: TechRating and Signal read `scoring.SCORING_INPUTS`;
  2. the result row: the contract's indicator columns (columns.py `SHOWN_INDICATORS`) and the
     20-session average volume behind DollarVolume;
  3. the alpha models' features (`alpha.inference.MODEL_FEATURES`);
  4. the screen: every column the `where` / `rank` expressions read, daily or weekly, with
     the bars of history each reads (WindowSpec.series); RS_rating reads `rs_raw`, a
     TechRating series the score's inputs;
  5. the chosen `columns` (also in WindowSpec.series, one bar each).
`Terms.of(spec)` walks those names to registry outputs and then to entries
(indicators/registry.py `resolve`: an entry runs once however many of its outputs are read)
and the bar fields they read. `measure` (evaluate.py) hands `Terms.daily` to the kernels, so
ADX, STOCH, CCI, MFI, OBV, the candles, the 52-week range or beta run only for a screen or a
column that reads them; the Block records what ran (`Block.computed`).
"""

from __future__ import annotations

from dataclasses import dataclass

from technic_v4 import scoring
from technic_v4.alpha.inference import MODEL_FEATURES
from technic_v4.indicators.registry import OUTPUTS, resolve
from technic_v4.scan.columns import SHOWN_INDICATORS
from technic_v4.scan.expressions import BARS

# what every measured row reads, whatever the request: the score, the row, the features
SCAN_OUTPUTS: tuple[str, ...] = tuple(dict.fromkeys(
    name for name in (*SHOWN_INDICATORS, "Volume_SMA20", *scoring.SCORING_INPUTS,
                      *MODEL_FEATURES) if name in OUTPUTS))


@dataclass(frozen=True)
class Terms:
    """The indicator outputs a request computes: on daily bars and on weekly bars, the
    registry entries that run (each once) and the bar fields they read."""

    daily: tuple[str, ...]
    weekly: tuple[str, ...]
    entries: tuple[str, ...]
    fields: tuple[str, ...]

    @property
    def outputs(self) -> frozenset[str]:
        """Every output computed, either timeframe."""
        return frozenset((*self.daily, *self.weekly))

    @classmethod
    def of(cls, series: tuple[tuple[str, str, int], ...]) -> Terms:
        """The terms of a scan whose expressions and chosen columns read `series`
        ((column, "D" | "W", bars): WindowSpec.series); module docstring."""
        read: dict[str, list[str]] = {"D": list(SCAN_OUTPUTS), "W": []}
        for name, tf, _ in series:
            read[tf].extend(outputs_read(name))
        daily, weekly = (tuple(dict.fromkeys(read[tf])) for tf in ("D", "W"))
        specs, _ = resolve((*daily, *weekly))
        fields = {"close", *(f for s in specs for f in s.inputs)}
        fields |= {BARS[n] for tf in ("D", "W") for n, t, _ in series if t == tf and n in BARS}
        return cls(daily, weekly, tuple(s.name for s in specs),
                   tuple(sorted(fields)))


def outputs_read(column: str) -> tuple[str, ...]:
    """The indicator outputs a column's value is computed from (none for a bar or a value
    the frame holds)."""
    if column == "TechRating":
        return tuple(n for n in scoring.SCORING_INPUTS if n in OUTPUTS)
    if column == "RS_rating":
        return ("rs_raw",)
    return (column,) if column in OUTPUTS else ()
