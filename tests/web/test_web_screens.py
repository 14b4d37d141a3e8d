"""The page's screens and its Validate view in headless Chromium, against the real Serve app
over HTTP (the module's `server` of tests/web/conftest.py).

What they check: an expression error from the API is shown under its box with a caret at the
line and column the parser named and the cursor put there; a where/rank scan shows the API's
rows in the API's order; a preset from the Screen menu fills the form and the scan names it
(until the form is changed); "Save screen" stores a version the API then lists, and after a
reload the menu has it and running it shows the API's rows; the columns
and functions list is the API's; the Validate view shows the API's report for the same screen (the
survivorship line, the statistics per horizon), draws its four charts on their canvases
(cumulative excess, rolling IC, deciles, passing count) over the whole replay at any window
width (cumulative from 0 at the first session), names the data source (synthetic here), and
its daily CSV is the API's.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd
import pytest
from serve_support import playwright_or_skip

sync_api = playwright_or_skip()
pytest.importorskip("ray.serve")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
ROOT = Path(__file__).resolve().parents[2]

WHERE = "pct_rank(mom_21) > 0.6 and\n  Close > SMA50"
RANK = "mom_21 / ATR_pct"


def _scan(page) -> None:
    with page.expect_response("**/v1/scan/stream"):
        page.click("#run")
    page.wait_for_function("() => ['done', 'failed'].includes("
                           "document.getElementById('progress-text').textContent)")


@pytest.mark.parametrize("where, line, column, hint", [
    ("RSII < 30", 1, 1, "did you mean RSI?"),
    ("RSI < 30 and\n  Clsoe > SMA200", 2, 3, "did you mean Close?"),
])
def test_expression_error_points_at_its_place(page, where, line, column, hint):
    page.fill("#where", where)
    _scan(page)
    box = page.locator("#where-error")
    assert box.is_visible()
    shown, caret = box.inner_text().split("\n")[:2]
    assert shown == where.split("\n")[line - 1]
    assert caret.index("^") == column - 1 and hint in caret
    assert page.get_attribute("#where", "aria-invalid") == "true"
    assert f"at {line}:{column}" in page.inner_text("#error")
    start = page.evaluate("document.getElementById('where').selectionStart")
    lines = where.split("\n")
    assert start == sum(len(x) + 1 for x in lines[:line - 1]) + column - 1
    # fixed: the marks go with the next request
    page.fill("#where", "RSI < 30")
    _scan(page)
    assert page.is_hidden("#where-error") and page.get_attribute("#where", "aria-invalid") is None


def test_bad_rank_expression_marks_the_rank_box(page):
    page.fill("#rank", "mom_21 +")
    _scan(page)
    assert page.is_visible("#rank-error") and page.is_hidden("#where-error")
    assert "^" in page.inner_text("#rank-error")


def test_where_and_rank_scan_shows_the_api_rows(page, server):
    page.fill("#where", WHERE)
    page.fill("#rank", RANK)
    page.check("[name=ascending]")
    _scan(page)
    assert page.is_hidden("#error"), page.inner_text("#error")
    api = server["http"].post("/v1/scan", json={"where": WHERE, "rank": RANK,
                                                "ascending": True, "limit": 500})
    assert api.status_code == 200, api.text
    rows = api.json()["rows"]
    assert rows
    shown = page.eval_on_selector_all("#table tbody tr td[data-key=Symbol]",
                                      "cells => cells.map(td => td.textContent)")
    assert shown == [r["Symbol"] for r in rows[:len(shown)]]


def _column(page, key: str) -> list[str]:
    return page.eval_on_selector_all(f"#table tbody tr td[data-key={key}]",
                                     "cells => cells.map(td => td.textContent)")


def test_ranked_scan_shows_rank_value_and_the_columns_it_reads(page, server):
    """Ranked by an expression: the table shows RankValue and each column the where / rank
    read (ADX here, not a standard column), with the API's values."""
    page.fill("#where", "ADX > 20")
    page.fill("#rank", "mom_63 / ATR_pct")
    _scan(page)
    assert page.is_hidden("#error"), page.inner_text("#error")
    rows = server["http"].post("/v1/scan", json={"where": "ADX > 20", "rank": "mom_63 / ATR_pct",
                                                 "limit": 500}).json()["rows"]
    assert {"ADX", "RankValue"} <= set(rows[0])
    symbols = _column(page, "Symbol")
    assert symbols == [r["Symbol"] for r in rows[:len(symbols)]]
    for key in ("ADX", "RankValue"):
        shown = [float(v) for v in _column(page, key)]
        want = [r[key] for r in rows[:len(shown)]]
        assert shown == pytest.approx(want, rel=1e-3), key


def test_column_picker_chooses_the_columns(page, server):
    """The Columns box: the table shows Symbol and the chosen columns in the chosen order,
    then those the where reads; an unknown column is the API's message naming valid ones."""
    page.fill("#columns", "EMA50, beta_60 RSI")
    page.fill("#where", "CCI > 0")
    _scan(page)
    assert page.is_hidden("#error"), page.inner_text("#error")
    body = {"columns": ["EMA50", "beta_60", "RSI"], "where": "CCI > 0", "limit": 500}
    rows = server["http"].post("/v1/scan", json=body).json()["rows"]
    assert list(rows[0]) == ["Symbol", "EMA50", "beta_60", "RSI", "CCI"]
    cells = page.eval_on_selector_all("#table tbody tr:first-child td",
                                      "tds => tds.map(td => td.dataset.key)")
    assert cells == list(rows[0])
    shown = [float(v) for v in _column(page, "EMA50")]
    assert shown == pytest.approx([r["EMA50"] for r in rows[:len(shown)]], rel=1e-3)
    page.fill("#columns", "RSI, NOPE")
    _scan(page)
    assert "unknown columns ['NOPE']" in page.inner_text("#error")
    assert "EMA50" in page.inner_text("#error")


def _canvas_pixels(page, selector: str) -> int:
    """Painted, non-background pixels on the chart's canvases."""
    return page.evaluate("""(sel) => {
        let n = 0;
        for (const c of document.querySelectorAll(sel + ' canvas')) {
          if (!c.width || !c.height) continue;
          const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          for (let i = 0; i < px.length; i += 4) {
            const [r, g, b, a] = [px[i], px[i + 1], px[i + 2], px[i + 3]];
            const grey = Math.abs(r - g) < 12 && Math.abs(g - b) < 12;
            if (a > 0 && !grey) n++;  // coloured: a series, not the grid, text or background
          }
        }
        return n;
    }""", selector)


def test_validate_view_shows_the_api_report(page, server):
    page.fill("#where", WHERE)
    page.fill("#rank", RANK)
    page.fill("[name=every]", "5")
    page.fill("[name=horizons]", "5, 21")
    page.fill("[name=top_n]", "10")
    page.fill("[name=cost_bps]", "10")
    with page.expect_response("**/v1/validate/stream") as resp:
        page.click("#validate")
    page.wait_for_function("() => ['done', 'failed'].includes("
                           "document.getElementById('val-progress-text').textContent)")
    assert page.is_hidden("#error"), page.inner_text("#error")
    sent = resp.value.request.post_data_json
    assert sent == {"where": WHERE, "rank": RANK, "every": 5, "horizons": [5, 21],
                    "top_n": 10, "rebalance": 5, "cost_bps": 10}
    api = server["http"].post("/v1/validate", json=sent)
    assert api.status_code == 200, api.text
    want = api.json()
    got = page.evaluate("window.technicValidation()")
    assert got["report"]["horizons"] == want["report"]["horizons"]
    assert got["daily"] == want["daily"]
    assert page.inner_text("#val-survivorship") == want["report"]["assumptions"]["survivorship"]
    rows = page.eval_on_selector_all("#val-horizons tbody tr",
                                     "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
    assert [r[0] for r in rows] == ["5 sessions", "21 sessions"]
    t5 = want["report"]["horizons"]["5"]["passing_excess"]["t_stat"]
    assert rows[0][2] == f"{t5:.2f}"
    assert f"{want['report']['data']['sessions_evaluated']} sessions evaluated" in \
        page.inner_text("#val-summary")
    assert page.inner_text("#val-source") == want["report"]["data"]["notice"]
    assert want["report"]["data"]["synthetic"] and "SYNTHETIC" in page.inner_text("#val-source")
    page.wait_for_timeout(300)  # charts paint on the next animation frame
    for chart in ("#val-cum", "#val-ic", "#val-deciles", "#val-passing"):
        assert _canvas_pixels(page, chart) > 200, chart
    _whole_replay_at_any_width(page, want["daily"]["session"])
    page.select_option("#val-horizon", "21")
    years = page.eval_on_selector_all("#val-years tbody tr td:first-child",
                                      "cells => cells.map(c => c.textContent)")
    assert years == list(want["report"]["horizons"]["21"]["by_year"])
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "web-validate.png", full_page=True)
    if os.environ.get("TECHNIC_UPDATE_SCREENSHOT"):  # the README's image (docs/)
        page.locator("#validation").screenshot(path=ROOT / "docs" / "screenshot-validate.png")

    with page.expect_download() as dl:
        page.click("#val-csv")
    frame = pd.read_csv(io.StringIO(Path(dl.value.path()).read_text()))
    csv = server["http"].post("/v1/validate", json={**sent, "format": "csv"})
    pd.testing.assert_frame_equal(frame, pd.read_csv(io.StringIO(csv.text)))


def _whole_replay_at_any_width(page, sessions: list[str]) -> None:
    """The time charts show every session of the replay, the cumulative excess from 0."""
    first, final = sessions[0], sessions[-1]
    for width in (1500, 3000, 1280):
        page.set_viewport_size({"width": width, "height": 860})
        page.wait_for_timeout(300)
        view = page.evaluate("window.technicValidationCharts()")
        for name, shown in view.items():
            assert shown["range"] == {"from": first, "to": final}, (width, name, shown)
        assert view["cum"]["first"] == {"time": first, "value": 0}, view["cum"]


def test_validate_charts_show_every_session(page):
    """Every session evaluated (over 1,000 points: more than a pane holds at the chart
    library's default minimum bar width) is on each time chart, at any width."""
    page.fill("#where", "Close > SMA50")
    page.fill("[name=horizons]", "5")
    page.click("#validate")
    page.wait_for_function("() => ['done', 'failed'].includes("
                           "document.getElementById('val-progress-text').textContent)")
    assert page.is_hidden("#error"), page.inner_text("#error")
    sessions = page.evaluate("window.technicValidation().daily.session")
    assert len(sessions) > 1000
    _whole_replay_at_any_width(page, sessions)


def test_validate_error_shows_the_api_message(page):
    page.fill("[name=horizons]", "5, 999")
    page.click("#validate")
    page.wait_for_selector("#error:not([hidden])")
    assert "horizons" in page.inner_text("#error")


def test_preset_fills_the_form_and_the_scan_names_it(page, server):
    page.select_option("#screen", "oversold-uptrend")
    preset = server["http"].get("/v1/screens/oversold-uptrend").json()
    assert page.input_value("#where") == preset["definition"]["where"]
    assert page.is_checked("[name=ascending]") == preset["definition"]["ascending"]
    assert preset["title"] in page.inner_text("#screen-about")
    with page.expect_request("**/v1/scan/stream") as req:
        _scan(page)
    sent = req.value.post_data_json
    assert sent["screen"] == "oversold-uptrend" and sent["sort_by"] == "RSI"
    api = server["http"].post("/v1/scan", json={"screen": "oversold-uptrend", "limit": 500})
    assert api.headers["x-technic-screen"] == "oversold-uptrend:1"
    shown = page.eval_on_selector_all("#table tbody tr td[data-key=Symbol]",
                                      "cells => cells.map(td => td.textContent)")
    assert shown == [r["Symbol"] for r in api.json()["rows"][:len(shown)]]
    # changed: the form's fields are the screen now, the preset's unseen sort_by stays
    page.fill("#where", "RSI < 45 and Close > SMA200")
    assert "changed below" in page.inner_text("#screen-about")
    with page.expect_request("**/v1/scan/stream") as req:
        _scan(page)
    sent = req.value.post_data_json
    assert "screen" not in sent and sent["sort_by"] == "RSI"
    assert sent["where"] == "RSI < 45 and Close > SMA200"


def test_save_screen_and_its_versions(page, server):
    page.fill("#where", "RSI < 40")
    page.fill("#rank", "mom_63")
    page.fill("#save-name", "page-saved")
    page.click("#save-screen")
    page.wait_for_function("() => document.getElementById('save-result').textContent !== ''")
    assert page.inner_text("#save-result") == "saved page-saved v1"
    got = server["http"].get("/v1/screens/page-saved").json()
    assert got["definition"]["where"] == "RSI < 40" and got["definition"]["rank"] == "mom_63"
    assert page.input_value("#screen") == "page-saved"
    page.click("#save-screen")  # unchanged: no new version
    page.wait_for_function("() => document.getElementById('save-result').textContent"
                           ".includes('already')")
    assert server["http"].get("/v1/screens/page-saved").json()["version"] == 1
    # reload the page: the saved screen is in the menu; run it by name
    page.reload()
    page.wait_for_selector("#screen option[value='page-saved']", state="attached")
    page.select_option("#screen", "page-saved")
    assert page.input_value("#where") == "RSI < 40"
    with page.expect_request("**/v1/scan/stream") as req:
        _scan(page)
    assert req.value.post_data_json["screen"] == "page-saved"
    api = server["http"].post("/v1/scan", json={"screen": "page-saved", "limit": 500})
    shown = page.eval_on_selector_all("#table tbody tr td[data-key=Symbol]",
                                      "cells => cells.map(td => td.textContent)")
    assert shown and shown == [r["Symbol"] for r in api.json()["rows"][:len(shown)]]
    page.fill("#save-name", "Bad Name!")
    page.click("#save-screen")
    page.wait_for_selector("#error:not([hidden])")
    assert "name" in page.inner_text("#error").lower()
    server["http"].delete("/v1/screens/page-saved")


def test_columns_and_functions_are_the_apis(page, server):
    page.click("#catalogue summary")
    page.wait_for_selector("#catalogue-columns code")
    api = server["http"].get("/v1/screen/columns").json()
    shown = page.eval_on_selector_all("#catalogue-columns code", "cs => cs.map(c => c.textContent)")
    assert shown == [c["name"] for c in api["columns"]] and "RSI" in shown
    functions = page.eval_on_selector_all("#catalogue-functions tbody tr td:first-child",
                                          "cs => cs.map(c => c.textContent)")
    assert functions == [f["signature"] for f in api["functions"]]


def test_validate_a_preset(page, server):
    """Pick a preset, validate it: the request names it, the charts and the survivorship
    line are the API's report for that screen."""
    page.select_option("#screen", "golden-cross")
    page.fill("[name=every]", "10")
    page.fill("[name=horizons]", "10")
    with page.expect_response("**/v1/validate/stream") as resp:
        page.click("#validate")
    page.wait_for_function("() => ['done', 'failed'].includes("
                           "document.getElementById('val-progress-text').textContent)")
    assert page.is_hidden("#error"), page.inner_text("#error")
    sent = resp.value.request.post_data_json
    assert sent["screen"] == "golden-cross"
    want = server["http"].post("/v1/validate", json=sent).json()
    got = page.evaluate("window.technicValidation()")
    assert got["report"]["saved_screen"] == {"name": "golden-cross", "version": 1,
                                             "preset": True}
    assert got["report"]["horizons"] == want["report"]["horizons"]
    assert page.inner_text("#val-survivorship") == want["report"]["assumptions"]["survivorship"]
    page.wait_for_timeout(300)
    for chart in ("#val-cum", "#val-passing"):
        assert _canvas_pixels(page, chart) > 200, chart


def test_the_market_regime_in_the_header_validate_and_its_own_view(page, server):
    """The scan's regime in the header, the validation's per-regime table and shaded chart,
    and the Regimes view: all the API's."""
    _scan(page)
    api = server["http"].post("/v1/scan", json={"limit": 5}).json()["meta"]["regime_tags"]
    assert page.inner_text("#regime-info") == f"regime {api['regime']}"
    page.fill("[name=horizons]", "5")
    page.click("#validate")
    page.wait_for_function("() => ['done', 'failed'].includes("
                           "document.getElementById('val-progress-text').textContent)")
    assert page.is_hidden("#error"), page.inner_text("#error")
    report = page.evaluate("window.technicValidation().report")
    rows = page.eval_on_selector_all("#val-regimes tbody tr td:first-child",
                                     "cells => cells.map(c => c.textContent)")
    assert rows == list(report["horizons"]["5"]["by_regime"]) and len(rows) >= 3
    with page.expect_response("**/v1/regimes"):
        page.click("#show-regimes")
    page.wait_for_selector("#regimes:not([hidden])")
    shown = page.evaluate("window.technicRegimes()")
    assert shown["columns"]["regime"] == server["http"].get("/v1/regimes").json()[
        "columns"]["regime"]
    page.wait_for_timeout(300)  # charts paint on the next animation frame
    assert _canvas_pixels(page, "#regime-chart") > 200
    assert "trend_up/calm" in page.inner_text("#regime-legend")
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#regimes-view").screenshot(path=ARTIFACTS / "web-regimes.png")
