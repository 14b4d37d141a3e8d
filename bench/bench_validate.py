"""Benchmark: a full validation report against alphalens and against a loop of scans.

    python bench/bench_validate.py [--repeats 3] [--data-dir DIR] [--scans 20]

On the default 5,000-symbol demo market (~5 years of evaluated sessions; built in a temporary
folder unless --data-dir), for one screen (a where and a rank expression), 4 horizons:
  technic      `validate(cfg, reader, options)`: the replay, forward returns, IC, deciles,
               portfolio, sectors, years (warm: the store's history in the reader, kernels
               compiled)
  alphalens    alphalens-reloaded from the SAME precomputed factor (the replay's rank values)
               and prices: get_clean_factor_and_forward_returns, factor_information_coefficient,
               mean_return_by_quantile, factor_rank_autocorrelation (no replay at all)
  run_scan     `run_scan(as_of_date=d)` for --scans sessions, extrapolated to every session
Target: technic under 3 s warm. Medians over --repeats; the ratios are in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import median_ms  # noqa: E402

from technic_v4.data.demo import build_demo_store  # noqa: E402
from technic_v4.data.reader import StoreReader  # noqa: E402
from technic_v4.scan import ScanConfig, run_scan  # noqa: E402
from technic_v4.validate import ValidateOptions, replay, validate  # noqa: E402

CFG = ScanConfig(where="pct_rank(mom_21) > 0.5 and Close > SMA50",
                 rank="pct_rank(mom_21) - 1.25 * pct_rank(mom_5)")
HORIZONS = (1, 5, 10, 21)


def alphalens_ms(reader: StoreReader, repeats: int) -> tuple[float, int]:
    """alphalens on the replay's own rank values as the factor."""
    import alphalens.performance as perf
    import alphalens.utils as al_utils

    rep = replay(CFG, reader)
    panel = rep.panel
    prices = pd.DataFrame(panel.close.T, index=panel.sessions, columns=panel.symbols)
    prices.index = prices.index.tz_localize("UTC")
    factor = pd.DataFrame(rep.rank.T, index=rep.sessions.tz_localize("UTC"),
                          columns=panel.symbols).stack().dropna()
    factor.index.names = ["date", "asset"]

    def run() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = al_utils.get_clean_factor_and_forward_returns(
                factor, prices, periods=HORIZONS, quantiles=10, max_loss=1.0)
            perf.factor_information_coefficient(data)
            perf.mean_return_by_quantile(data)
            perf.factor_rank_autocorrelation(data)

    return median_ms(run, repeats), len(factor)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scans", type=int, default=20)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    data = Path(args.data_dir) if args.data_dir else Path(tmp.name) / "data"
    if not args.data_dir:
        build_demo_store(data)
    reader = StoreReader(data)
    opts = ValidateOptions(horizons=HORIZONS)
    first = time.perf_counter()
    report = validate(CFG, reader, opts).report  # loads the history, compiles the kernels
    first_s = time.perf_counter() - first
    ours = median_ms(lambda: validate(CFG, reader, opts), args.repeats)
    sessions = report["data"]["sessions_evaluated"]
    print(f"{report['data']['symbols']:,} symbols x {sessions:,} sessions "
          f"({report['data']['first_session']}..{report['data']['last_session']}), "
          f"{len(HORIZONS)} horizons; first run {first_s:.1f} s")

    al, cells = alphalens_ms(reader, args.repeats)
    days = np.linspace(0, sessions - 1, args.scans).astype(int)
    snap = reader.snapshot()
    dates = [str(d.date()) for d in snap.sessions[-sessions:][days]]
    per_scan = []
    for d in dates:
        t0 = time.perf_counter()
        run_scan(ScanConfig(where=CFG.where, rank=CFG.rank, as_of_date=d), loader=reader)
        per_scan.append((time.perf_counter() - t0) * 1000)
    loop = statistics.median(per_scan) * sessions

    print(f"\n{'full validation report':44} {'median ms':>10} {'vs technic':>11}")
    print(f"{'technic validate (warm)':44} {ours:10.0f} {1:10.1f}x")
    print(f"{'alphalens-reloaded, precomputed factor':44} {al:10.0f} {al / ours:10.1f}x"
          f"   ({cells:,} factor cells)")
    print(f"{'loop of run_scan(as_of=d), extrapolated':44} {loop:10.0f} {loop / ours:10.1f}x"
          f"   (median {statistics.median(per_scan):.0f} ms x {sessions} sessions)")
    ic = report["horizons"]["5"]["rank_ic"]
    print(f"\nrank IC (5d) {ic['mean']}, t {ic['t_stat']}; portfolio annualised excess "
          f"{report['portfolio']['annualised_excess']}")


if __name__ == "__main__":
    main()
