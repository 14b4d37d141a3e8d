"""Benchmark: market regimes for the whole demo market, and what a scan pays for them.

    python bench/bench_regimes.py [--repeats 5] [--sessions 1265] [--figure docs/regimes-demo.png]

On the default 5,000-symbol demo market cut to its first --sessions sessions (in memory):
  regimes      `regime_series(panel)`: benchmark, SMA200, 50-day slope, realized vol and its
               1-year percentile, breadth over every symbol's SMA50, the rule (once per data
               version; target < 100 ms)
  scan extra   what a warm scan adds: the cached series' lookup and its session's tags
               (`REGIME_CACHE.get` + `tags_at` + `market_columns`; target < 1 ms)
  scan         a warm `run_scan` of the default config, for scale
--figure draws the regime timeline of the whole demo market (the equal-weighted level shaded
by regime, each regime's share) with matplotlib: the docs figure (docs/guides/regimes.md).
Medians over --repeats.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pandas as pd  # noqa: E402
from timing import median_ms  # noqa: E402

from technic_v4.data.demo import DemoSpec, generate_demo_market  # noqa: E402
from technic_v4.data.reader import PanelSource  # noqa: E402
from technic_v4.regimes import (  # noqa: E402
    REGIME_CACHE,
    REGIMES,
    RegimeSeries,
    market_columns,
    regime_series,
)
from technic_v4.scan import ScanConfig, run_scan  # noqa: E402

COLORS = {"trend_up/calm": "#9fdcd5", "trend_up/high_vol": "#26a69a",
          "range/calm": "#d9dee7", "range/high_vol": "#f5b342",
          "trend_down/calm": "#f6b3b2", "trend_down/high_vol": "#e0413d", "unknown": "#ffffff"}


def figure(series: RegimeSeries, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bars) = plt.subplots(2, 1, figsize=(11, 5.2), height_ratios=(3, 1.1),
                                   layout="constrained")
    dates = series.sessions
    for span in series.spans():
        ax.axvspan(pd.Timestamp(str(span["start"])),
                   pd.Timestamp(str(span["end"])) + pd.Timedelta(days=1),
                   color=COLORS[str(span["regime"])], lw=0)
    ax.plot(dates, series.numbers["market_level"], color="#1d2330", lw=1.2,
            label="equal-weighted universe")
    ax.plot(dates, series.numbers["market_sma_200"], color="#2962ff", lw=1, ls="--",
            label="its 200-session average")
    ax.set_title("Market regime of every session: the synthetic demo market "
                 f"({dates[0].date()} to {dates[-1].date()})", fontsize=11)
    ax.legend(loc="upper left", fontsize=8)
    ax.margins(x=0)
    shares = series.shares()
    names = list(REGIMES)
    values = [100 * (shares[n]["share"] or 0) for n in names]
    bars.barh(names, values, color=[COLORS[n] for n in names], edgecolor="#6b7280", lw=0.5)
    for i, v in enumerate(values):
        bars.text(v + 0.5, i, f"{v:.1f}% ({shares[names[i]]['sessions']})", va="center",
                  fontsize=8)
    bars.set_xlabel(f"share of the {sum(shares[n]['sessions'] for n in names)} sessions "
                    f"with a regime ({shares['unknown']['sessions']} before enough history)",
                    fontsize=8)
    bars.tick_params(labelsize=8)
    bars.invert_yaxis()
    bars.set_xlim(0, max(values) * 1.25)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=1265)
    parser.add_argument("--figure", type=Path, default=None)
    args = parser.parse_args()
    whole = generate_demo_market(DemoSpec()).to_panel()
    if args.figure is not None:
        figure(regime_series(whole), args.figure)
    panel = whole.window(min(args.sessions, whole.n_sessions) - 1, args.sessions)
    regime_series(panel)  # kernels compiled
    cold = median_ms(lambda: regime_series(panel), args.repeats)
    source = PanelSource(panel)
    series = REGIME_CACHE.get(source)

    def extra() -> None:
        got = REGIME_CACHE.get(source)
        market_columns(got.tags_at(got.index_of(panel.sessions[-1])), panel.n_symbols)

    warm = median_ms(extra, max(args.repeats, 50))
    run_scan(ScanConfig(), loader=source)
    scan = median_ms(lambda: run_scan(ScanConfig(), loader=source), args.repeats)
    print(f"{panel.n_symbols} symbols x {panel.n_sessions} sessions "
          f"(regime now {series.regime[-1]}):")
    print(f"  regimes over every session   {cold:8.1f} ms  (once per data version)")
    print(f"  a warm scan's extra cost     {warm:8.3f} ms  (lookup, tags, screen columns)")
    print(f"  a warm run_scan, for scale   {scan:8.1f} ms")


if __name__ == "__main__":
    main()
