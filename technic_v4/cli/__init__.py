"""`technic`: scan from the terminal, and manage the price store (the `app` here).

    technic scan [filters] [--format table|csv|json|parquet] [--out FILE]
    technic data demo | ingest FILE|FOLDER [--universe FILE] [--calendar MIC] | append FILE
                 | update | check | info | calendars
    technic models train [--seed N] | show
    technic explain SYMBOL [--as-of DATE] [--format table|json]
    technic screen list | show NAME | save NAME [scan options] | delete NAME | run NAME | columns
    technic validate [scan options] [--horizon N ...] [--every K] [--out FILE]
    technic watch add | list | show | remove | test | status | redeliver | tail | run
    technic live --replay DATE | --from-file FILE | --alpaca [--symbol ...] [--speed 60x]

Manners (tests/cli/test_cli_errors.py drives every command with bad input):
  - Results (the scan's table / CSV / JSON, `data info`, `data check`'s table, `data
    calendars`, `models show`) go to stdout (or --out); progress, logs, summaries and errors go
    to stderr, so `technic scan --format csv > scan.csv` stays clean. When stderr is not a
    terminal nothing is wrapped or decorated.
  - Exit status: 0 done; 1 `data check` found flagged symbols / `data update` left sessions
    missing or failed; 2 an error: one `error: ...` line on stderr, never a traceback (bad
    options and values included; `technic --verbose ...` re-raises an unexpected exception
    with its traceback); 3 `scan --symbol` named symbols that are not in the universe (the
    results for the others are printed, then one `error:` line names the unknown ones).
  - `technic data info` and the other data commands do not import numba or XGBoost: `scan`
    and the commands built on it (`screen`, `watch`, `validate`, `explain`) are built on first
    use (their options come from ScanConfig, whose package loads the engine).
  - A scan whose numba kernel cache is cold says "compiling indicator kernels, first run
    only" before the indicator stage starts (technic_v4/indicators/warmup.py).
  - An `--as-of` that is not a session of the store (a weekend, a holiday, after the data) is
    scanned as of the last session on or before it, and a `note:` says which and why.
`--data-dir` takes a path or an object-store URI (`s3://bucket/prefix?region=...`): it is a
string option, since a path type would collapse the URI's `//`, and messages show a URI
without its query and userinfo.

One module per command group: `scan`, `data`, `models`, `screen`, `validate`, `watch`,
`explain`; `options` holds what they share (consoles, `fail`, exit statuses, --data-dir),
`main` the top-level app, `firstrun` the first run's background kernel compile. Modules
import `options` and `scan`, never this package's `app`, so there is no import cycle.
"""

from technic_v4.cli.main import app

__all__ = ["app"]
