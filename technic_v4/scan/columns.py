"""The scan's result table: its column names and order (the contract users see), which sort.

DESIGN.md fixes RESULT_COLUMNS; EXTRA_COLUMNS follow them in every result. `SHOWN_INDICATORS`
are the indicator outputs on each row; one a symbol has too few bars for is NaN and named in
its `Incomplete` column. A request may choose its columns instead (`columns`, as Finviz's
custom view): any of CHOOSABLE, every indicator output among them; the result then holds
Symbol and those, in that order. Either way it also holds every column its `where` and `rank`
read (their values at the as-of session) and, when ranked by an expression, RankValue.
"""

from __future__ import annotations

from technic_v4.indicators.registry import ALL_OUTPUTS

RESULT_COLUMNS = [
    "Symbol", "Sector", "Industry", "Close", "Volume", "RSI", "MACD", "MACD_signal",
    "MACD_hist", "BB_width", "ATR_pct", "Volume_ratio", "mom_21", "mom_63", "mom_126",
    "TechRating", "Signal", "Alpha5d", "Alpha10d",
]
EXTRA_COLUMNS = [
    "Name", "AlphaScore", "mom_5", "SMA20", "SMA50", "SMA200", "dist_high_20", "DollarVolume",
    "Bars", "LastDate", "Incomplete", "Source", "quality_flags", "Indexes",
]
TEXT_COLUMNS = ("Symbol", "Sector", "Industry", "Signal", "Name", "LastDate", "Incomplete",
                "Source", "quality_flags", "Indexes")
SORTABLE = tuple(c for c in RESULT_COLUMNS + EXTRA_COLUMNS if c not in TEXT_COLUMNS)
SHOWN_INDICATORS = ["RSI", "MACD", "MACD_signal", "MACD_hist", "BB_width", "ATR_pct",
                    "Volume_ratio", "mom_5", "mom_21", "mom_63", "mom_126",
                    "SMA20", "SMA50", "SMA200", "dist_high_20"]
REJECTION_COLUMNS = ["Symbol", "reason", "detail"]
# every column a request may choose: the result's, then each indicator output, the bars,
# and the cross-sectional / calendar values the expressions read
CHOOSABLE: tuple[str, ...] = tuple(dict.fromkeys([
    *RESULT_COLUMNS, *EXTRA_COLUMNS, *ALL_OUTPUTS, "Open", "High", "Low", "perf_ytd",
    "RS_rating"]))
