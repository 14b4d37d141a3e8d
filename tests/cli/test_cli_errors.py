"""CLI manners: every command, given bad input, says so in one `error:` line on stderr and exits
2, never with a traceback; results go to stdout and diagnostics to stderr, unwrapped when it is
not a terminal; `scan --symbol` of an unknown symbol exits 3 after the others' results; an
`--as-of` that moves says where and why; `models train` never trains on a market it built
itself and never writes over the shipped models."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from technic_v4.alpha.registry import shipped_models_dir
from technic_v4.data.calendar import sessions_between
from technic_v4.data.demo import DemoSpec, build_demo_store
from technic_v4.data.ingest import ingest_frame
from technic_v4.data.store import read_universe

pytestmark = pytest.mark.slow  # each case starts `technic` as a process


def technic(*args: str, data_dir: Path, home: Path, models_dir: Path | None = None
            ) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TECHNIC_")}
    env.update(TECHNIC_DATA_DIR=str(data_dir), XDG_DATA_HOME=str(home), COLUMNS="80")
    if models_dir is not None:
        env["TECHNIC_MODELS_DIR"] = str(models_dir)
    return subprocess.run([sys.executable, "-m", "technic_v4.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def _bars(n: int, start: str, end: str, seed: int = 1) -> pd.DataFrame:
    sessions = sessions_between(start, end)
    rng = np.random.default_rng(seed)
    close = 40 * np.exp(np.cumsum(rng.normal(0, 0.02, (n, len(sessions))), axis=1))
    return pd.DataFrame({
        "symbol": np.repeat([f"T{i:02d}" for i in range(n)], len(sessions)),
        "date": np.tile(sessions.strftime("%Y-%m-%d"), n), "open": close.ravel(),
        "high": close.ravel() * 1.01, "low": close.ravel() * 0.99, "close": close.ravel(),
        "volume": rng.integers(10_000, 10**6, n * len(sessions)).astype(float)})


@pytest.fixture(scope="module")
def w(tmp_path_factory) -> dict[str, Path]:
    """The places the cases refer to: stores, files and folders."""
    root = tmp_path_factory.mktemp("cli-errors")
    w = {"root": root, "home": root / "home", "empty": root / "empty"}
    w["empty"].mkdir()
    w["demo"] = root / "demo"
    build_demo_store(w["demo"], DemoSpec(n_symbols=60, start="2024-01-02", end="2025-06-30"))
    w["nine"] = root / "nine"  # 9 symbols, plenty of history
    ingest_frame(_bars(9, "2022-01-03", "2024-12-31"), w["nine"], name="nine")
    w["short"] = root / "short"  # 40 symbols, 100 sessions
    ingest_frame(_bars(40, "2024-06-03", "2024-10-22"), w["short"], name="short")
    w["bars"] = root / "bars.csv"
    _bars(3, "2024-01-02", "2024-01-31").to_csv(w["bars"], index=False)
    w["wide"] = root / "wide.csv"  # 2,000 columns, none of them the ones ingest needs
    w["wide"].write_text(",".join(f"measurement_{i:04d}" for i in range(2000)) + "\n"
                         + ",".join("1" for _ in range(2000)) + "\n")
    w["noadj"] = root / "noadj"  # a per-symbol folder without Adj Close
    w["noadj"].mkdir()
    pd.DataFrame({"Date": ["2024-01-02", "2024-01-03"], "Open": 1.0, "High": 1.0,
                  "Low": 1.0, "Close": 1.0, "Volume": 10}).to_csv(w["noadj"] / "ABC.csv",
                                                                  index=False)
    return w


# (arguments, data dir in w, text the error line must hold); "{name}" is w[name]
CASES = [
    (["scan", "--sector", "Crypto"], "demo", "unknown sector 'Crypto'"),
    (["scan", "--max-symbols", "x"], "demo", "Invalid value for '--max-symbols'"),
    (["scan", "--bogus"], "demo", "No such option: --bogus"),
    (["scan", "--as-of", "yesterday"], "demo", "use YYYY-MM-DD"),
    (["scan", "--as-of", "1960-01-01"], "demo", "before the store's first session"),
    (["scan", "--symbol", "../etc"], "demo", "invalid symbol"),
    (["scan", "--format", "parquet"], "demo", "needs --out"),
    (["scan", "--data-dir", "foo://bucket/x"], "demo", "'foo'"),
    (["data", "demo", "--symbols", "10"], "empty", "between 50 and 20,000"),
    (["data", "demo", "--symbols", "abc"], "empty", "Invalid value for '--symbols'"),
    (["data", "demo", "--calendar", "XXXX"], "empty", "`technic data calendars` lists"),
    (["data", "ingest", "{root}/missing.csv"], "empty", "no such file or folder"),
    (["data", "ingest", "{bars}", "--calendar", "Mars"], "empty", "unknown exchange calendar"),
    (["data", "ingest", "{bars}", "--universe", "{root}/nope.csv"], "empty",
     "no such universe file"),
    (["data", "ingest", "{bars}", "--prices", "split"], "empty", "expected adj_close or raw"),
    (["data", "ingest", "{wide}"], "empty", "(1988 more of 2000 columns)"),
    (["data", "ingest", "{noadj}"], "empty", "--prices raw"),
    (["data", "append", "{root}/missing.csv"], "demo", "no such file"),
    (["data", "append", "{bars}"], "empty", "no price store"),
    (["data", "append", "{bars}"], "nine", "rows were rejected (duplicate: "),
    (["data", "update", "--provider", "bloomberg"], "empty", "unknown provider 'bloomberg'"),
    (["data", "update", "--start", "yesterday"], "empty", "not a date"),
    (["data", "check"], "empty", "no price store"),
    (["data", "info"], "empty", "no price store"),
    (["models", "train"], "empty", "no price store in"),
    (["models", "train", "--horizon", "7"], "demo", "no feature set for horizon(s) [7]"),
    (["models", "train"], "nine", "too few symbols: 9 of the store's 9"),
    (["models", "train"], "short", "too little history: "),
    (["models", "train", "--models-dir", str(shipped_models_dir())], "demo",
     "holds the models shipped with technic"),
    (["models", "show", "--models-dir", "{empty}"], "demo", "no alpha models in"),
]


@pytest.mark.parametrize("args,where,expected", CASES,
                         ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_is_one_error_line_and_exit_2(w, args, where, expected) -> None:
    args = [a.format(**{k: str(v) for k, v in w.items()}) for a in args]
    proc = technic(*args, data_dir=w[where], home=w["home"])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, (proc.returncode, out[-2000:])
    assert "Traceback" not in out, out[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert expected in errors[0], proc.stderr
    assert len(errors[0]) < 800, errors[0]  # a 2,000-column header is not printed whole
    if where == "empty":
        assert not (w["empty"] / "store").exists()  # no demo market built behind the back


def test_unknown_symbols_exit_3_after_the_known_ones(w) -> None:
    known = read_universe(w["demo"])["symbol"].iloc[0]
    proc = technic("scan", "--symbol", "ZZZZ", "--symbol", "0700.HK", "--symbol", known,
                   "--format", "csv", data_dir=w["demo"], home=w["home"])
    assert proc.returncode == 3, proc.stderr
    frame = pd.read_csv(io.StringIO(proc.stdout))
    assert frame["Symbol"].tolist() == [known]
    last = proc.stderr.strip().splitlines()[-1]
    assert last == "error: 2 requested symbols not in the universe: ZZZZ, 0700.HK (exit 3)"
    assert "Traceback" not in proc.stderr


def test_results_on_stdout_diagnostics_on_stderr_unwrapped(w) -> None:
    info = technic("data", "info", data_dir=w["demo"], home=w["home"])
    assert info.returncode == 0 and info.stderr == "", info.stderr
    assert "calendar: XNYS" in info.stdout and "symbols: 60" in info.stdout
    scan = technic("scan", "--as-of", "2025-01-04", "--format", "json", data_dir=w["demo"],
                   home=w["home"])
    assert scan.returncode == 0, scan.stderr
    body = json.loads(scan.stdout)  # stdout is the result and nothing else
    assert body["meta"]["as_of"] == "2025-01-03"
    assert ("note: --as-of 2025-01-04 is a Saturday: scanned as of 2025-01-03, the last "
            "session on or before it") in scan.stderr.splitlines()
    lines = scan.stderr.splitlines()
    assert any(len(line) > 100 for line in lines)  # COLUMNS=80, yet nothing wrapped
    assert not any(line.startswith(("window:", "bars ")) for line in lines)
    holiday = technic("scan", "--as-of", "2025-07-04", "--format", "csv", data_dir=w["demo"],
                      home=w["home"])
    assert "is after the store's last session 2025-06-30" in holiday.stderr
    good_friday = technic("scan", "--as-of", "2025-04-18", "--format", "csv",
                          data_dir=w["demo"], home=w["home"])
    assert "note: --as-of 2025-04-18 is an XNYS holiday or closure: scanned as of 2025-04-17" \
        in good_friday.stderr


def test_data_info_loads_neither_numba_nor_xgboost(w) -> None:
    code = ("import sys\nfrom technic_v4.cli import app\n"
            f"sys.argv = ['technic', 'data', 'info', '--data-dir', {str(w['demo'])!r}]\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in ('numba', 'xgboost', 'exchange_calendars') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert "LOADED []" in proc.stdout, proc.stdout + proc.stderr


def test_models_train_writes_to_the_user_folder_and_says_how_to_use_it(w) -> None:
    proc = technic("models", "train", "--horizon", "5", data_dir=w["demo"], home=w["home"])
    assert proc.returncode == 0, proc.stderr
    user = w["home"] / "technic" / "models"
    assert (user / "alpha_5d.ubj").is_file() and (user / "alpha_5d.meta.json").is_file()
    assert f"scans now use these models (from {user})" in proc.stderr  # no TECHNIC_MODELS_DIR
    assert "alpha_5d" in proc.stdout  # the trained model's card is the result


def test_first_run_starts_compiling_early_and_detects_a_cold_cache(w, monkeypatch) -> None:
    """A first scan (a local data dir without a store) starts the kernel compile in a second
    process before its own imports; any other scan does not. The cold-cache check reads
    numba's cache index of exactly the kernels a scan calls."""
    from technic_v4.cli import firstrun
    from technic_v4.indicators import warmup

    started: list[list[str]] = []

    class FakePopen:
        def __init__(self, argv, **kw):  # type: ignore[no-untyped-def]
            started.append(argv)

        def poll(self):  # type: ignore[no-untyped-def]
            return 0

    monkeypatch.setattr(firstrun.subprocess, "Popen", FakePopen)
    for args, warm, expected in [(["scan", "--data-dir", str(w["empty"])], False, 2),
                                 (["scan", "--data-dir", str(w["empty"])], True, 0),
                                 (["scan", f"--data-dir={w['demo']}"], False, 0),
                                 (["scan", "--help", "--data-dir", str(w["empty"])], False, 0),
                                 (["scan", "--data-dir", "s3://bucket/x"], False, 0)]:
        monkeypatch.setattr(firstrun, "_WARMING", None)
        monkeypatch.setattr(firstrun, "_probably_warm", lambda warm=warm: warm)
        started.clear()
        firstrun.start_warming(args)
        assert len(started) == expected, args
        assert all("warm_kernels(" in argv[-1] for argv in started)
    monkeypatch.setattr(firstrun, "_WARMING", None)

    warmup.warm_kernels()  # compiles or loads every kernel a scan calls: then the cache is warm
    assert warmup.cold_kernel_cache() == (0, "")
    kernel = warmup.scan_kernels()[0]
    monkeypatch.setattr(kernel._cache._cache_file, "_load_index", lambda: {})
    cold, where = warmup.cold_kernel_cache()
    assert cold == 1 and (where.endswith("__pycache__") or "numba" in where), where
