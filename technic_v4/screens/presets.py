"""Preset screens: definitions shipped in code, read-only, listed beside the saved ones.

A preset is a saved screen that nobody saved: a name, a version, a definition (the ScanConfig
fields it sets) and a line saying what it looks for. `technic screen list` and GET /v1/screens
show them with `preset: true`; `technic scan --screen golden-cross` and `{"screen":
"golden-cross"}` run them like any saved screen, and fields set in the request override
theirs. A user screen cannot take a preset's name. Bump a preset's `version` whenever its
definition changes, so results and watch events that name (screen, version) stay unambiguous.

Every preset compiles and finds at least one symbol on the 5,000-symbol synthetic demo market
(tests/screens/test_presets.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    description: str
    definition: Mapping[str, Any] = field(default_factory=dict)
    version: int = 1


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("oversold-uptrend", "Oversold in an uptrend",
           "RSI below 30 while the close holds above the 200-day average; most oversold first.",
           {"where": "RSI < 30 and Close > SMA200", "sort_by": "RSI", "ascending": True}),
    Preset("breakout-52w", "52-week-high breakout on volume",
           "Close above the highest high of the 252 sessions before today, on at least 1.5x "
           "the 50-day average volume; heaviest volume first.",
           {"where": "Close > highest(High, 252)[1] and rel_volume_50 > 1.5",
            "rank": "rel_volume_50"}),
    Preset("golden-cross", "Golden cross",
           "The 50-day average crossed above the 200-day average within the last 5 sessions.",
           {"where": "crosses_above(SMA50, SMA200, within=5)"}),
    Preset("macd-bull-cross", "MACD bullish cross",
           "MACD crossed above its signal line within the last 3 sessions; strongest "
           "histogram first.",
           {"where": "crosses_above(MACD, MACD_signal, within=3)", "sort_by": "MACD_hist"}),
    Preset("squeeze", "Squeeze: narrow Bollinger bands",
           "Bollinger width in the narrowest tenth of the universe; narrowest first.",
           {"where": "pct_rank(BB_width) < 0.1", "sort_by": "BB_width", "ascending": True}),
    Preset("momentum-leaders", "Momentum leaders",
           "Above the 50-day average with an RS rating of 80 or more, ranked by 63-session "
           "momentum per unit of volatility (mom_63 / ATR_pct); top 50.",
           {"where": "Close > SMA50 and RS_rating >= 80", "rank": "mom_63 / ATR_pct",
            "max_symbols": 50}),
    Preset("weekly-pullback", "Pullback in a weekly uptrend",
           "Weekly RSI above 50 (the last closed week) while the daily RSI dips below 40; "
           "deepest dip first.",
           {"where": "W.RSI > 50 and RSI < 40", "sort_by": "RSI", "ascending": True}),
)}
