"""`technic validate` (typer's CliRunner, in process) on a small store: JSON is the library's
report, CSV and Parquet its daily series, the table names the screen and the survivorship
line, a saved screen by name validates as its fields, and errors are one `error:` line with
exit status 2."""

from __future__ import annotations

import io

import orjson
import pandas as pd
import pytest
from serve_support import custom_store
from typer.testing import CliRunner

from technic_v4.data.reader import StoreReader
from technic_v4.scan import ScanConfig
from technic_v4.screens.saved import ScreenStore
from technic_v4.validate import ValidateOptions, validate

RUNNER = CliRunner()
SCREEN = ["--where", "pct_rank(mom_21) > 0.6", "--rank", "mom_21", "--every", "5",
          "--horizon", "5", "--horizon", "10", "--top-n", "8"]
LIBRARY = (ScanConfig(where="pct_rank(mom_21) > 0.6", rank="mom_21"),
           ValidateOptions(every=5, horizons=(5, 10), top=8))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return custom_store(tmp_path_factory.mktemp("cli-validate") / "data", lambda u, c: u)


@pytest.fixture()
def technic(data, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("TECHNIC_STATE_DIR", str(data))
    from technic_v4.cli import app

    def run(*args: str, code: int = 0):  # type: ignore[no-untyped-def]
        result = RUNNER.invoke(app, ["validate", *args, "--data-dir", str(data)])
        assert result.exit_code == code, (args, result.stdout, result.stderr, result.exception)
        return result
    return run


@pytest.fixture(scope="module")
def expected(data):
    return validate(LIBRARY[0], StoreReader(data), LIBRARY[1])


def test_json_is_the_library_report(technic, expected):
    body = orjson.loads(technic(*SCREEN, "--format", "json").stdout)
    want = orjson.loads(orjson.dumps(expected.report))
    for part in ("screen", "options", "data", "passing", "horizons", "portfolio",
                 "assumptions"):
        assert body[part] == want[part], part


def test_csv_and_parquet_are_the_daily_series(technic, expected, tmp_path):
    csv = pd.read_csv(io.StringIO(technic(*SCREEN, "--format", "csv").stdout))
    want = expected.daily
    assert csv.columns.tolist() == want.columns.tolist()
    assert csv["session"].tolist() == want["session"].tolist()
    numbers = want.columns.drop("session")
    pd.testing.assert_frame_equal(csv[numbers], want[numbers], check_dtype=False, rtol=1e-12)
    out = tmp_path / "daily.parquet"
    technic(*SCREEN, "--format", "parquet", "--out", str(out))
    pd.testing.assert_frame_equal(pd.read_parquet(out), want)


def test_table_names_the_screen_and_survivorship(technic, expected):
    result = technic(*SCREEN)
    assert "where pct_rank(mom_21) > 0.6" in result.stdout and "rank mom_21" in result.stdout
    for h in ("5d", "10d"):
        assert h in result.stdout
    t5 = expected.report["horizons"]["5"]["passing_excess"]["t_stat"]
    assert f"{t5:.3f}" in result.stdout
    assert expected.report["assumptions"]["survivorship"].split(";")[0] in \
        " ".join(result.stderr.split())


def test_saved_screen_by_name(technic, data, expected):
    ScreenStore.for_data_dir(data).save("cli-validate", {"where": "pct_rank(mom_21) > 0.6",
                                                         "rank": "mom_21"})
    body = orjson.loads(technic("--screen", "cli-validate", *SCREEN[4:], "--format",
                                "json").stdout)
    assert body["saved_screen"] == {"name": "cli-validate", "version": 1, "preset": False}
    assert body["horizons"] == orjson.loads(orjson.dumps(expected.report["horizons"]))


@pytest.mark.parametrize("args, says", [
    (["--horizon", "999"], "horizons must be 1..252"),
    (["--where", "RSII < 30"], "did you mean RSI?"),
    (["--where", "Alpha5d > 0"], "in-sample"),
    (["--screen", "no-such-screen"], "golden-cross"),
    (["--format", "xml"], "unknown --format"),
    (["--format", "parquet"], "needs --out"),
    (["--start", "1990-01-01", "--end", "1989-01-01"], "end 1989-01-01 is before start"),
    (["--end", "1989-01-01"], "end 1989-01-01 is before the store's first session"),
    (["--start", "yesterday"], "start must be a date"),
])
def test_errors_are_one_line_exit_2(technic, args, says):
    result = technic(*args, code=2)
    assert result.stderr.startswith("error: ") and says in " ".join(result.stderr.split())
