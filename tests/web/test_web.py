"""The scan page (GET /) in headless Chromium against the real Serve app over HTTP.

Server: the same as test_serve.py: Ray started small, `build_app` with `serve.run` on
127.0.0.1, a 500-symbol demo store and tiny models, API keys on; so the page is tested through
the ingress, the indicator replicas and the batched alpha deployment, as deployed (Ray's start
costs ~15-25 s once for the module). Browser: Debian's /usr/bin/chromium driven by Playwright
(no browser download); the tests skip, saying how to install it, when it is missing.

What they check: a sector scan from the form (progress read from the NDJSON stream), sorting,
the numbers shown against the API's JSON for the same request, the CSV download, a symbol's
chart drawn on its canvases, its "Why this rating" panel against
GET /v1/symbols/{symbol}/explain, sorting and paging 5,000 rows in the browser, errors from the API
shown as messages (unknown sector, wrong key), and that the page fetches nothing from any
other origin. Screenshots go to tests/artifacts/ (gitignored); TECHNIC_UPDATE_SCREENSHOT=1
also writes docs/screenshot.png and docs/screenshot-chart.png for the README (not on every run,
so the suite does not rewrite committed files).
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import httpx
import pandas as pd
import pytest
from serve_support import ndjson, playwright_or_skip

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
sync_api = playwright_or_skip()
ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

SECTOR = "Information Technology"
# column -> (API key, scale of the shown number, decimals shown): the table's formatting
SHOWN = {"Close": (1, 2), "TechRating": (1, 1), "Alpha5d": (100, 2), "Alpha10d": (100, 2),
         "RSI": (1, 1), "MACD_hist": (1, 3), "ATR_pct": (100, 2), "Volume_ratio": (1, 2),
         "mom_21": (100, 1), "mom_63": (100, 1)}


def _run_scan(page, sectors: list[str]) -> dict:
    page.select_option("#sectors", sectors)
    page.evaluate("""() => {  // every text the progress label shows during the scan
        window.progressSeen = [];
        new MutationObserver(records => records.forEach(r => r.addedNodes.forEach(
            n => window.progressSeen.push(n.textContent))))  // each text, even when batched
          .observe(document.getElementById('progress-text'), {childList: true});
    }""")
    with page.expect_response("**/v1/scan/stream") as resp:
        page.click("#run")
    page.wait_for_function("() => document.getElementById('progress-text').textContent === "
                           "'done' || !document.getElementById('error').hidden")
    return {"request": resp.value.request.post_data_json, "lines": ndjson(resp.value.text())}


def _shown(page) -> list[dict[str, str]]:
    return page.eval_on_selector_all("#table tbody tr", """rows => rows.map(tr =>
        Object.fromEntries([...tr.cells].map(td => [td.dataset.key, td.textContent])))""")


def _close(text: str, value: float | None, scale: float, decimals: int) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return text in ("", "—")
    shown = float(text.rstrip("%"))
    return abs(shown - value * scale) <= 0.5 * 10 ** -decimals + 1e-9


def test_page_assets_served(server):
    r = httpx.get(server["url"] + "/")  # the page itself needs no key; the API does
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "default-src 'self'" in r.headers["content-security-policy"]
    for name in ("app.js", "api.js", "table.js", "chart.js", "explain.js", "screen.js",
                 "validate.js", "app.css",
                 "vendor/lightweight-charts.standalone.production.js"):
        assert httpx.get(f"{server['url']}/web/{name}").status_code == 200, name
    assert httpx.get(server["url"] + "/web/../api/main.py").status_code == 404


def test_scan_sort_chart_and_numbers_match_api(page, server, tmp_path):
    assert page.is_visible("#synthetic-banner"), "the demo market must be labelled synthetic"
    run = _run_scan(page, [SECTOR])
    assert page.is_hidden("#error"), page.inner_text("#error")
    events = [e["event"] for e in run["lines"]]
    assert events[0] == "progress" and events[-1] == "result" and "progress" in events
    assert page.get_attribute("#progress", "value") == "100"
    seen = page.evaluate("window.progressSeen")
    assert any(t.startswith("indicators ") for t in seen), seen  # e.g. "indicators 5/65"
    assert run["request"]["sectors"] == [SECTOR]

    # the same request through the JSON endpoint: what the table must show
    api = server["http"].post("/v1/scan", json=run["request"])
    assert api.status_code == 200, api.text
    rows = api.json()["rows"]
    assert rows and {r["Sector"] for r in rows} == {SECTOR}
    assert f"{len(rows)} rows" in page.inner_text("#summary")
    if os.environ.get("TECHNIC_UPDATE_SCREENSHOT"):
        (ROOT / "docs").mkdir(exist_ok=True)
        page.screenshot(path=ROOT / "docs" / "screenshot.png", full_page=True,  # to the table
                        clip={"x": 0, "y": 0, "width": 1280, "height": 1500})
    shown = _shown(page)
    assert [r["Symbol"] for r in shown] == [r["Symbol"] for r in rows[:len(shown)]]
    by_symbol = {r["Symbol"]: r for r in rows}
    for tr in shown:
        ref = by_symbol[tr["Symbol"]]
        assert tr["Sector"] == ref["Sector"] and tr["Signal"] == ref["Signal"]
        for col, (scale, decimals) in SHOWN.items():
            if col in tr:
                assert _close(tr[col], ref.get(col), scale, decimals), (tr["Symbol"], col,
                                                                        tr[col], ref.get(col))

    # sort by Close: descending first, then ascending; order equals the API values sorted
    page.click("th[data-key=Close]")
    assert page.get_attribute("th[data-key=Close]", "aria-sort") == "descending"
    page.click("th[data-key=Close]")
    assert page.get_attribute("th[data-key=Close]", "aria-sort") == "ascending"
    closes = [float(r["Close"]) for r in _shown(page)]
    expected = sorted(r["Close"] for r in rows)[:len(closes)]
    assert closes == pytest.approx(expected, abs=0.005)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "web-scan.png", full_page=True)

    # CSV download: every row and column of the result, in the table's order
    with page.expect_download() as dl:
        page.click("#csv")
    frame = pd.read_csv(io.StringIO(Path(dl.value.path()).read_text()))
    assert len(frame) == len(rows)
    assert frame["Close"].tolist() == pytest.approx(sorted(r["Close"] for r in rows))
    assert {"Symbol", "TechRating", "Signal", "Alpha5d"} <= set(frame.columns)

    # open the chart of the first symbol shown
    symbol = shown[0]["Symbol"]
    page.click(f"#table tbody a[href='#{symbol}']")
    page.wait_for_selector("#chart-dialog[data-state=ready]")
    assert page.inner_text("#chart-title") == symbol
    page.wait_for_timeout(300)  # the chart paints on the next animation frame
    drawn = page.evaluate("""() => {
        const count = (sel, colours) => {
          let n = 0;
          for (const c of document.querySelectorAll(sel + ' canvas')) {
            if (!c.width || !c.height) continue;
            const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 0; i < px.length; i += 4) {
              if (px[i + 3] > 0 && colours.some(([r, g, b]) =>
                  Math.abs(px[i] - r) + Math.abs(px[i + 1] - g) + Math.abs(px[i + 2] - b) < 30))
                n++;
            }
          }
          return n;
        };
        const up = [38, 166, 154], down = [239, 83, 80], violet = [124, 58, 237],
              blue = [41, 98, 255], orange = [245, 158, 11];
        return {candles: count('#chart-main', [up, down]), rsi: count('#chart-rsi', [violet]),
                macd: count('#chart-macd', [blue, orange])};
    }""")
    assert drawn["candles"] > 500 and drawn["rsi"] > 100 and drawn["macd"] > 100, drawn
    hist = server["http"].get(f"/v1/symbols/{symbol}").json()
    assert f"close {hist['bars']['close'][-1]:.2f}" in page.inner_text("#chart-sub")
    page.screenshot(path=ARTIFACTS / "web-chart.png")
    if os.environ.get("TECHNIC_UPDATE_SCREENSHOT"):
        page.screenshot(path=ROOT / "docs" / "screenshot-chart.png")
    page.click("#chart-close")
    assert not page.evaluate("document.getElementById('chart-dialog').open")


def test_form_filters_become_the_request(page, server):
    """Every form field reaches the API as the ScanRequest field, and the rows match."""
    page.fill("[name=min_tech_rating]", "-20")
    page.fill("[name=min_price]", "5")
    page.fill("[name=min_dollar_volume]", "1000000")
    page.fill("[name=limit]", "40")
    page.fill("[name=as_of_date]", "2026-06-30")
    page.check("input[name=signal][value='Avoid']")
    page.check("input[name=signal][value='Long']")
    run = _run_scan(page, ["Energy", "Financials"])
    assert page.is_hidden("#error"), page.inner_text("#error")
    assert run["request"] == {"sectors": ["Energy", "Financials"], "signals": ["Long", "Avoid"],
                              "min_tech_rating": -20, "min_price": 5,
                              "min_dollar_volume": 1000000, "limit": 40,
                              "as_of_date": "2026-06-30"}
    body = server["http"].post("/v1/scan", json=run["request"]).json()
    assert body["meta"]["as_of"] == "2026-06-30"
    rows = body["rows"]
    assert 0 < len(rows) <= 40 and {r["Signal"] for r in rows} <= {"Long", "Avoid"}
    assert f"{len(rows)} rows" in page.inner_text("#summary")
    assert "as of 2026-06-30" in page.inner_text("#summary")
    assert [r["Symbol"] for r in _shown(page)] == [r["Symbol"] for r in rows]


def test_5000_rows_sort_and_page_fast(page):
    """Sorting 5,000 rows and rendering a page stays well under a frame budget's multiple."""
    timing = page.evaluate("""() => {
        const t = window.technicTable, rows = [];
        const signals = ['Strong Long', 'Long', 'Avoid', 'Short', 'Strong Short'];
        for (let i = 0; i < 5000; i++) rows.push({Symbol: 'S' + i, Sector: 'Energy',
          Close: (i * 7919) % 1000 + 0.5, TechRating: ((i * 31) % 200) - 100,
          Signal: signals[i % 5], RSI: i % 7 ? (i * 13) % 100 : null, quality_flags: ''});
        let t0 = performance.now();
        t.setRows(rows);
        const load = performance.now() - t0;
        t0 = performance.now();
        t.sortBy('TechRating');
        t.sortBy('RSI');
        t.sortBy('Signal');
        const sort = (performance.now() - t0) / 3;
        const strongest = document.querySelector('#table tbody td[data-key=Signal]').textContent;
        t.sortBy('Close');
        t.goto(99);
        return {load, sort, n: document.querySelectorAll('#table tbody tr').length,
                info: document.getElementById('page-info').textContent,
                first: document.querySelector('#table tbody td[data-key=Close]').textContent,
                strongest};
    }""")
    print("5,000 rows in the browser (ms):", {k: timing[k] for k in ("load", "sort")})
    assert timing["n"] == 50 and "of 5000" in timing["info"], timing
    assert timing["load"] < 250 and timing["sort"] < 250, timing
    assert timing["strongest"] == "Strong Long"  # Signal sorts by strength, not A-Z
    assert timing["first"] == "9.50"  # page 100 of 100, Close descending: 9.5 down to 0.5


def test_unknown_sector_shows_the_api_message(page):
    """A crafted request the form cannot make: the 422's detail is shown, not a blank page."""
    page.evaluate("document.getElementById('sectors').add(new Option('Nope', 'Nope'))")
    _run_scan(page, ["Nope"])
    error = page.inner_text("#error")
    assert page.is_visible("#error") and "Error 422" in error
    assert "sectors: unknown sector 'Nope'" in error and "Information Technology" in error
    assert page.inner_text("#progress-text") == "failed"


def test_wrong_api_key_shows_the_api_message(page):
    page.fill("#api-key", "not-the-key")
    page.press("#api-key", "Enter")
    page.wait_for_selector("#error:not([hidden])")
    assert "Error 401" in page.inner_text("#error")
    assert "X-API-Key" in page.inner_text("#error")
    page.click("#run")  # the scan fails the same way
    page.wait_for_function("() => document.getElementById('progress-text').textContent === "
                           "'failed'")
    assert "Error 401" in page.inner_text("#error")


def test_unknown_symbol_chart_shows_the_api_message(page):
    page.evaluate("import('/web/chart.js').then(m => m.openChart('ZZZZZ'))")
    page.wait_for_selector("#chart-dialog[data-state=error]")
    assert "Error 404" in page.inner_text("#chart-error")
    assert "ZZZZZ" in page.inner_text("#chart-error")
    page.wait_for_selector("#explain[data-state=error]")  # the panel says the same
    assert "Error 404" in page.inner_text("#explain-error")


def test_symbol_dialog_explains_the_rating(page, server):
    """"Why this rating" under the chart: the TechRating, sub-scores, rules, risk factor and
    alpha contributions the explain endpoint returns, and the table's TechRating."""
    _run_scan(page, ["Energy"])
    assert page.is_hidden("#error"), page.inner_text("#error")
    row = _shown(page)[0]
    symbol = row["Symbol"]
    page.click(f"#table tbody a[href='#{symbol}']")
    page.wait_for_selector("#explain[data-state=ready]")
    api = server["http"].get(f"/v1/symbols/{symbol}/explain")
    assert api.status_code == 200, api.text
    body = api.json()
    rating = body["tech_rating"]
    assert abs(float(page.inner_text("#explain-rating")) - rating["value"]) <= 0.005 + 1e-9
    assert _close(row["TechRating"], rating["value"], 1, 1)  # the table's, rounded
    assert page.inner_text("#explain-signal") == rating["signal"]["value"] == row["Signal"]
    assert page.inner_text("#explain-signal-rule") == rating["signal"]["rule"]
    shown = page.eval_on_selector_all("#explain-scores tbody tr", """rows => rows.map(tr => ({
        name: tr.dataset.name, weight: tr.cells[1].textContent, score: tr.cells[2].textContent,
        rules: [...tr.querySelectorAll('.rule')].map(d => d.textContent)}))""")
    assert [r["name"] for r in shown] == [s["name"] for s in rating["sub_scores"]]
    for tr, sub in zip(shown, rating["sub_scores"], strict=True):
        assert float(tr["weight"]) == sub["weight"]
        assert abs(float(tr["score"]) - sub["score"]) <= 0.0005 + 1e-12
        assert tr["rules"] == [r["text"] for r in sub["rules"]]
    assert rating["risk_factor"]["text"] in page.inner_text("#explain-risk")
    assert page.inner_text("#explain-formula").endswith(f"= {rating['value']:.2f}")
    for model in body["alpha"]["models"]:
        assert model["available"]
        bars = page.eval_on_selector_all(
            f"#explain-alpha [data-model={model['id']}] li",
            "items => items.map(li => [li.dataset.feature, li.lastChild.textContent])")
        expected = {c["feature"]: c["contribution"] for c in model["contributions"]}
        assert {f for f, _ in bars} == set(expected)
        for feature, text in bars:
            assert abs(float(text) - expected[feature]) <= 5e-7 + 1e-12
    page.locator("#explain").screenshot(path=ARTIFACTS / "web-explain.png")
    page.click("#chart-close")  # cleared with the dialog (its close event is async)
    page.wait_for_function("() => document.getElementById('explain-rating').textContent === ''")
