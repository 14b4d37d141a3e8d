"""Benchmark: batched alpha inference against per-row calls, and a scan with alpha on vs off.

    python bench/bench_alpha.py [--repeats 15] [--models-dir DIR]

On the default synthetic demo market (5,000 symbols), with the models in --models-dir
(default: $TECHNIC_MODELS_DIR or the repo's models/):
  batched      `inference.predict_rows`: one (5,000 x features) float32 matrix, one
               `inplace_predict` (what a scan does), per model
  per-row      one `inplace_predict` call per row on a 1-row matrix
  per-row dm   one `DMatrix` + `predict` per row (the naive loop), timed on 500 rows and
               scaled to 5,000
  scan on/off  `run_scan` on the same Panel (cached in memory) with the models installed vs an
               empty models directory (alpha reported unavailable)
Prints medians (ms) and ratios; these machines are noisy, so trust ratios and medians only.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import xgboost as xgb
from timing import median_ms  # bench/ is on sys.path when run as a script

from technic_v4.alpha import inference, registry
from technic_v4.data.demo import DemoSpec, generate_demo_market
from technic_v4.data.reader import PanelSource
from technic_v4.indicators import compute_indicators
from technic_v4.scanner_core import ScanConfig, run_scan


def bench_inference(models_dir: Path, last: dict, repeats: int) -> None:
    rows = np.ones(len(last["RSI"]), dtype=bool)
    print(f"\ninference, {rows.sum():,} rows (median ms)")
    print(f"{'model':10s} {'batched':>9s} {'per-row':>9s} {'ratio':>7s} {'per-row dm':>11s} "
          f"{'ratio':>7s}")
    models = inference.ModelSet(models_dir)
    for h in inference.HORIZONS:
        model = models.model(h)[0]
        batched = median_ms(lambda m=model: inference.predict_rows(m, last, rows), repeats)
        x = inference.feature_matrix(last, model.features, rows)
        one_rows = [x[i : i + 1] for i in range(len(x))]

        def per_row(m=model, one_rows=one_rows) -> None:
            for r in one_rows:
                m.booster.inplace_predict(r)

        def per_row_dmatrix(m=model, one_rows=one_rows[:500]) -> None:
            for r in one_rows:
                m.booster.predict(xgb.DMatrix(r, feature_names=list(m.features), nthread=1))

        loop = median_ms(per_row, max(3, repeats // 5))
        naive = median_ms(per_row_dmatrix, 3) * len(one_rows) / 500
        print(f"{model.id:10s} {batched:9.2f} {loop:9.1f} {loop / batched:6.0f}x "
              f"{naive:11.1f} {naive / batched:6.0f}x")


def bench_scan(panel_source: PanelSource, models_dir: Path, repeats: int) -> None:
    cfg = ScanConfig()
    timings = {}
    with tempfile.TemporaryDirectory() as empty:
        for label, root in (("alpha on", models_dir), ("alpha off", Path(empty))):
            frame, status = run_scan(cfg, loader=panel_source, models_dir=root)  # warm
            stages = []

            def scan(stages=stages, root=root) -> None:
                stages.append(run_scan(cfg, loader=panel_source, models_dir=root)[1].timings_ms)

            timings[label] = (median_ms(scan, repeats), status, frame,
                              {k: statistics.median(s[k] for s in stages) for k in stages[0]})
    on, off = timings["alpha on"], timings["alpha off"]
    print(f"\nrun_scan, {on[1].attempted:,} symbols x {on[1].window_bars} sessions, warm "
          "(median ms)")
    for label, (ms, status, frame, stage_ms) in timings.items():
        state = "available" if status.alpha["available"] else "unavailable"
        print(f"{label:10s} total {ms:7.1f}  alpha {state}, Alpha5d finite in "
              f"{np.isfinite(frame['Alpha5d']).sum():,} of {len(frame):,} rows\n"
              "           stages " + ", ".join(f"{k} {v:.1f}" for k, v in stage_ms.items()))
    print(f"alpha on / off: {on[0] / off[0]:.2f}x  (+{on[0] - off[0]:.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--models-dir", type=Path, default=None)
    args = parser.parse_args()
    models_dir = args.models_dir or registry.default_models_dir()
    t0 = time.perf_counter()
    panel = generate_demo_market(DemoSpec()).to_panel()
    print(f"demo market {panel.n_symbols:,} x {panel.n_sessions:,} built in "
          f"{time.perf_counter() - t0:.1f} s; models from {models_dir}")
    source = PanelSource(panel)
    window = run_scan(ScanConfig(), loader=source)[1].window_bars
    last = compute_indicators(panel.window(panel.n_sessions - 1, window)).last
    bench_scan(source, models_dir, args.repeats)
    bench_inference(models_dir, last, args.repeats)


if __name__ == "__main__":
    main()
