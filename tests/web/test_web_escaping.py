"""Every text that reaches the scan page from outside is shown as text, never run as markup.

Server: the real Serve app (`running_app`, as in test_web.py) over a 60-symbol store written
straight to disk (`custom_store`, bypassing ingest) whose universe carries hostile strings in
every text field: symbol (ingest allows only SYMBOL_PATTERN; the store itself does not check),
name and industry (free text through ingest), sector (ingest maps it to a GICS name; the store
does not) and the store's `source` (ingest sets it from the file name). Browser: Debian's
Chromium through Playwright, the page under its real CSP.

What the page is made to show: the scan table (Symbol, Sector), the data line (source), the
chart dialog of hostile rows (name · sector · industry · source in its subtitle, the symbol as
its title), a chart request the API refuses (a 422 for a hostile symbol), an unknown hostile
sector whose 422 message quotes it back, `describeError` fed hostile bodies, a hostile and a
non-ASCII API key, hostile query strings and hashes (the page reads neither), a 404 for a
hostile asset name, and the CSV downloads (page and API). What is checked each time:
 - textContent equals the raw string (so `&lt;` stays `&lt;`: nothing decoded once or twice);
 - no element the page does not make appears: a MutationObserver installed before any page
   script records every added element (img, svg, iframe, style, b, textarea, ... and any `on*`
   attribute fail), and no request is made for the injected `src=x`;
 - `window.__xss` stays undefined, no CSP violation (`securitypolicyviolation`), no page error,
   no console error other than the API's own 4xx answers;
 - CSV cells a spreadsheet would evaluate (=, +, -, @ first) carry a leading '.
The CSP would stop the inline handlers on its own, so the checks look at the DOM and at CSP
violations, not only at `window.__xss`.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from serve_support import (
    PAGE_GUARD_MS,
    custom_store,
    playwright_or_skip,
    running_app,
    watch_page,
)

sync_api = playwright_or_skip()
ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

KEY = "web-key-1"  # as tests/web/test_web.py: the two modules share a Ray session
ENV = {"RAY_AUTH_MODE": "disabled", "OMP_WAIT_POLICY": "PASSIVE", "TECHNIC_API_KEYS": KEY}

IMG = '<img src=x onerror="window.__xss=1">'
SCRIPT = '"><script>window.__xss=2</script>'
CELL = "</td></tr><svg onload=window.__xss=3><tr><td>"
JS_URL = "javascript:window.__xss=4"
ENTITIES = "&lt;b&gt;not bold&lt;/b&gt; &amp;amp; &#x3C;i&#x3E; &quot;"
RTL = "\u202eevil\u202c مرحبا עולם <b>bold?</b> \u200b"
TEMPLATE = "${window.__xss=5}{{constructor.constructor('window.__xss=6')()}}"
LONG = "<b>" + "W" * 3000 + "</b>"
CONTROL = "line1\nline2\t</textarea><style>body{display:none}</style>"
QUOTES = "O'Brien \"Quoted\" \\ back\\slash </script><!--"
FORMULA = '=HYPERLINK("http://example.invalid/","click")'
SYMBOL = '"><img src=x onerror=window.__xss=7>'
SOURCE = 'ingest:"><img src=x onerror=window.__xss=8>&lt;.csv'  # headers carry Latin-1 only
# (symbol, name, sector, industry) of the hostile rows; None keeps the generated value
ROWS = [
    (None, IMG, CELL, SCRIPT),
    (SYMBOL, QUOTES, None, None),
    (None, FORMULA, "+1-1", "@SUM(1+1)"),
    (None, JS_URL, ENTITIES, ENTITIES),
    (None, RTL, RTL, TEMPLATE),
    (None, LONG, LONG, CONTROL),
]
# elements the page never makes; finding one means some text was parsed as HTML
FORBIDDEN = ["img", "svg", "iframe", "frame", "object", "embed", "style", "b", "textarea",
             "base", "math", "video", "audio", "source"]
WATCH = """(() => {
  window.__added = [];
  window.__csp = [];
  document.addEventListener('securitypolicyviolation', (e) =>
    window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample}`));
  const record = (el) => window.__added.push({
    tag: el.tagName.toLowerCase(), src: el.getAttribute('src'),
    on: [...el.attributes].map((a) => a.name).filter((n) => n.startsWith('on')),
    chart: !!el.closest('.pane'),  // in a chart pane: the library's (logo svg, style)
    el});
  // the page's own HTML (its textarea...): every element there when parsing ends
  document.addEventListener('DOMContentLoaded', () => {
    window.__static = new Set(document.querySelectorAll('*')); });
  new MutationObserver((ms) => { for (const m of ms) for (const n of m.addedNodes) {
    if (n.nodeType === 1) { record(n); n.querySelectorAll('*').forEach(record); }
  } }).observe(document, {childList: true, subtree: true});
})();"""


def _edit(universe, close):
    """Hostile strings into rows that every default scan keeps (a full, recent history)."""
    ok = np.isfinite(close[:, -1]) & (np.isfinite(close).sum(1) > 300) & (close[:, -1] > 5)
    for i, values in zip(np.flatnonzero(ok), ROWS, strict=False):
        for col, v in zip(("symbol", "name", "sector", "industry"), values, strict=True):
            if v is not None:
                universe.loc[i, col] = v
    return universe


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    def store(root: Path) -> Path:
        return custom_store(root, _edit, source=SOURCE)

    with running_app(tmp_path_factory.mktemp("web-escaping"), ENV, "technic-web-escaping",
                     store=store, chunk_size=128) as running:
        with httpx.Client(base_url=running["url"], headers={"X-API-Key": KEY},
                          timeout=120) as http:
            rows = http.post("/v1/scan", json={"limit": 500}).json()["rows"]
            hostile = [next(r for r in rows if r["Name"] == name) for _, name, _, _ in ROWS]
            yield {"url": running["url"], "http": http, "rows": rows, "hostile": hostile}


@pytest.fixture()
def page(browser, server):
    """A fresh page, watched from before its first script; after the test, fails on anything
    injected, any CSP violation, page error, console error (but the API's 4xx) or request to
    another origin or for the injected `src=x`."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    ctx.set_default_timeout(PAGE_GUARD_MS)
    ctx.add_init_script(WATCH)
    pg = ctx.new_page()
    problems = watch_page(pg, server["url"])
    pg.on("console", lambda m: m.type == "error" and not m.text.startswith(
        "Failed to load resource: the server responded with a status of 4")
        and problems.append(f"console error: {m.text}"))
    pg.on("request", lambda r: r.url.split("?")[0].rstrip("/").endswith("/x")
          and problems.append(f"injected request: {r.url}"))
    pg.goto(server["url"] + "/")
    pg.fill("#api-key", KEY)
    pg.press("#api-key", "Enter")
    pg.wait_for_selector("#sectors option")
    yield pg
    _assert_clean(pg)
    ctx.close()
    assert not problems, problems


def _assert_clean(page) -> None:
    state = page.evaluate("""() => ({xss: typeof window.__xss, csp: window.__csp,
        added: window.__added.map(({el, ...rec}) => ({...rec, parsed: window.__static.has(el)})),
        origin: location.origin,
        onattrs: [...document.querySelectorAll('*')].flatMap((el) => [...el.attributes]
          .filter((a) => a.name.startsWith('on')).map((a) => el.tagName + ' ' + a.name)),
        hrefs: [...document.querySelectorAll('a[href]')].map((a) => a.href)})""")
    assert state["xss"] == "undefined", "an injected script ran"
    assert state["csp"] == [], state["csp"]
    bad = [e for e in state["added"] if e["on"]
           or (e["tag"] in FORBIDDEN and not (e["chart"] or e["parsed"]))
           or (e["tag"] == "script" and not (e["src"] or "").startswith("/web/"))]
    assert not bad, bad
    assert not state["onattrs"], state["onattrs"]
    assert not [h for h in state["hrefs"] if not h.startswith(("http:", "https:"))], state[
        "hrefs"]


def _text(page, selector: str) -> str:
    return page.eval_on_selector(selector, "el => el.textContent")


def _describe(status: int, body) -> str:
    """api.js describeError, in Python: the text the page must show for an API error."""
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, list):
        parts = []
        for d in detail:
            field = d.get("field") or ".".join(str(p) for p in d.get("loc", [])[1:])
            parts.append((f"{field}: " if field else "") + (d.get("msg") or json.dumps(d)))
        text = "\n".join(parts)
    elif detail:
        text = detail if isinstance(detail, str) else json.dumps(
            detail, separators=(",", ":"), ensure_ascii=False)
    else:
        text = "no details"
    if isinstance(body, dict) and body.get("error_id"):
        text += f" (error id {body['error_id']})"
    return f"Error {status}: {text}"


def _scan(page) -> None:
    page.evaluate("""() => { const s = document.getElementById('page-size');  // still hidden
        s.value = '100'; s.dispatchEvent(new Event('change')); }""")  # all 60 rows on one page
    page.click("#run")
    page.wait_for_function("() => ['done', 'failed'].includes("
                           "document.getElementById('progress-text').textContent)")


def test_store_carries_the_hostile_strings(server):
    """The API hands the strings over unchanged (JSON-escaped, not HTML-escaped): whatever the
    page shows comes from these exact values."""
    got = [(r["Symbol"], r["Name"], r["Sector"], r["Industry"]) for r in server["hostile"]]
    for want, row in zip(ROWS, got, strict=True):
        assert all(w is None or w == g for w, g in zip(want, row, strict=True)), (want, row)
    assert {r["Source"] for r in server["rows"]} == {SOURCE}


def test_table_and_data_line_show_text_literally(page, server):
    _scan(page)
    assert page.is_hidden("#error"), _text(page, "#error")
    assert page.is_hidden("#synthetic-banner")  # the source is not "synthetic"
    # ... so the demo-trained models do not forecast it: the page says why the Alpha columns
    # are empty
    assert page.is_visible("#alpha-banner")
    assert _text(page, "#alpha-banner") == (
        "Alpha 5d / Alpha 10d are empty: alpha unavailable: models trained on synthetic data; "
        "run technic models train")
    meta = server["http"].get("/v1/sectors").json()["meta"]
    assert _text(page, "#data-info") == (f"data {meta['data_version']} · {SOURCE} · "
                                         f"as of {meta['as_of']}")
    shown = page.eval_on_selector_all("#table tbody tr", """rows => rows.map(tr =>
        Object.fromEntries([...tr.cells].map(td => [td.dataset.key, td.textContent])))""")
    assert [r["Symbol"] for r in shown] == [r["Symbol"] for r in server["rows"]]
    for tr, row in zip(shown, server["rows"], strict=True):
        assert tr["Symbol"] == row["Symbol"] and tr["Sector"] == row["Sector"], (tr, row)
    by_symbol = {r["Symbol"]: r for r in shown}
    for sym, _, sector, _ in ROWS:
        if sym:
            assert sym in by_symbol
        if sector:
            assert sector in {r["Sector"] for r in shown}
    # the hostile symbol's link points at this page, with the symbol encoded
    href = page.evaluate("s => [...document.querySelectorAll('#table tbody a')]"
                         ".find((a) => a.textContent === s).getAttribute('href')", SYMBOL)
    assert href == "#" + quote(SYMBOL, safe="!'()*-._~")


@pytest.mark.parametrize("index", range(len(ROWS)))
def test_chart_dialog_shows_text_literally(page, server, index):
    row = server["hostile"][index]
    _scan(page)
    page.evaluate("s => [...document.querySelectorAll('#table tbody a')]"
                  ".find((a) => a.textContent === s).click()", row["Symbol"])
    page.wait_for_selector("#chart-dialog[data-state=ready], #chart-dialog[data-state=error]")
    assert _text(page, "#chart-title") == row["Symbol"]
    path = "/v1/symbols/" + quote(row["Symbol"], safe="")
    api = server["http"].get(path)
    if row["Symbol"] == SYMBOL:  # not a symbol the API accepts: its 422, as text
        assert api.status_code == 422
        assert page.get_attribute("#chart-dialog", "data-state") == "error"
        assert _text(page, "#chart-error") == _describe(422, api.json())
        return
    data = api.json()
    assert (data["name"], data["sector"], data["industry"]) == (row["Name"], row["Sector"],
                                                                row["Industry"])
    close = [c for c in data["bars"]["close"] if c is not None][-1]
    assert _text(page, "#chart-sub") == (
        f"{row['Name']} · {row['Sector']} · {row['Industry']} · close {close:.2f} · "
        f"{len(data['sessions'])} sessions to {data['meta']['as_of']} · {SOURCE}")


def test_error_messages_quoting_input_are_text(page, server):
    # an unknown sector (a request the form cannot make): the 422 quotes it back
    for sector in (IMG, ENTITIES, RTL):
        body = {"sectors": [sector]}
        api = server["http"].post("/v1/scan/stream", json=body)
        assert api.status_code == 422 and repr(sector) in api.json()["detail"][0]["msg"]
        page.evaluate("""s => { const sel = document.getElementById('sectors');
            for (const o of sel.options) o.selected = false;
            const o = new Option(s, s); o.selected = true; sel.add(o); }""", sector)
        page.click("#run")
        page.wait_for_function("() => document.getElementById('progress-text').textContent "
                               "=== 'failed'")
        assert _text(page, "#error") == _describe(422, api.json())
        assert repr(sector) in _text(page, "#error")
    # describeError + showError on bodies made of hostile text (string, list, object detail)
    for body in ({"detail": IMG, "error_id": SCRIPT},
                 {"detail": [{"field": CELL, "msg": ENTITIES}, {"loc": ["body", RTL],
                                                               "msg": JS_URL}]},
                 {"detail": {"nested": TEMPLATE}}, CONTROL):
        shown = page.evaluate("""async (body) => { const m = await import('/web/api.js');
            m.showError(m.describeError(400, body));
            return document.getElementById('error').textContent; }""", body)
        assert shown == _describe(400, body)
    # an expression the parser refuses: quoted back under its box with a caret, as text
    for where in (IMG, f"RSI < 30 and {SCRIPT}", f"{ENTITIES} > 1"):
        page.fill("#where", where)
        page.click("#run")
        page.wait_for_function("() => document.getElementById('progress-text').textContent "
                               "=== 'failed'")
        assert _text(page, "#where-error").split("\n")[0] == where.split("\n")[0]
        assert "^" in _text(page, "#where-error")


def test_hostile_api_keys_are_kept_as_typed_and_refused_as_text(page):
    for key, status in ((IMG, "Error 401: "), (SCRIPT, "Error 401: "), (RTL, "Error 0: ")):
        page.fill("#api-key", key)
        page.press("#api-key", "Enter")
        page.wait_for_selector("#error:not([hidden])")
        page.wait_for_function("() => document.getElementById('error').textContent !== ''")
        assert page.input_value("#api-key") == key
        stored = page.evaluate("localStorage.getItem('technic.apiKey')")
        assert stored == key.strip()
        error = _text(page, "#error")
        if status == "Error 401: ":
            page.wait_for_function("() => document.getElementById('error').textContent"
                                   ".startsWith('Error 401')")
            assert _text(page, "#error") == "Error 401: missing or invalid X-API-Key header"
        else:  # a header cannot carry it: said so before any request
            assert "printable ASCII" in error, error
        page.evaluate("document.getElementById('error').textContent = ''")


def test_query_string_and_hash_are_inert(page, server):
    """The page reads neither; loading it with hostile ones (and changing the hash) injects
    nothing, and an asset name in the URL comes back as JSON text."""
    for suffix in (f"/?q={quote(IMG)}&sectors={quote(SCRIPT)}#{quote(IMG)}",
                   f"/?{SCRIPT}#{CELL}", f"/#{JS_URL}"):
        page.goto(server["url"] + suffix)
        page.wait_for_selector("#sectors option")
        page.evaluate("h => { location.hash = h; }", SCRIPT)
        _assert_clean(page)
    resp = page.goto(server["url"] + "/web/" + quote(IMG))
    assert resp.status == 404 and resp.headers["content-type"].startswith("application/json")
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    page.goto(server["url"] + "/")  # back on the page for the fixture's final checks
    page.wait_for_selector("#sectors option")


def test_csv_downloads_keep_text_and_defuse_formulas(page, server, tmp_path):
    _scan(page)
    with page.expect_download() as dl:
        page.click("#csv")
    downloaded = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
    api = server["http"].post("/v1/scan", json={"limit": 500, "format": "csv"})
    assert api.status_code == 200
    served = list(csv.DictReader(io.StringIO(api.text)))
    for rows in (downloaded, served):
        by_symbol = {r["Symbol"]: r for r in rows}
        for row in server["hostile"]:
            got = by_symbol[row["Symbol"]]
            for col in ("Name", "Sector", "Industry", "Source"):
                want = row[col]
                if want[:1] in ("=", "+", "-", "@", "\t", "\r"):
                    want = "'" + want
                assert got[col] == want, (col, got[col], want)
