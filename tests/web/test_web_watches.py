"""The page's Watches view in headless Chromium against the real Serve app (the module's
`server` of tests/web/conftest.py): a watch created from the screen form (its where and
sectors become the definition), the secret shown once, the list with delivery state, the
recent events read from /v1/events, an API error (a loopback webhook) shown as a message,
and removal. All text goes in through textContent (test_web_escaping.py's rule)."""

from __future__ import annotations

import pytest
from serve_support import playwright_or_skip

sync_api = playwright_or_skip()
pytest.importorskip("ray.serve")


def test_watch_the_screen_in_the_form(page, server):
    page.fill("#where", "RSI > 55")
    page.select_option("#sectors", index=0)
    page.fill("#watch-name", "page-watch")
    page.fill("#watch-rank-moved", "3")
    with page.expect_response(lambda r: r.url.endswith("/v1/watches")
                              and r.request.method == "POST") as created:
        page.click("#watch-create")
    assert created.value.status == 201
    page.wait_for_selector("#watch-secret:not([hidden])")
    secret = page.inner_text("#watch-secret-value")
    assert secret.startswith("whsec_")
    made = server["http"].get("/v1/watches/page-watch").json()
    assert made["definition"]["where"] == "RSI > 55" and len(made["definition"]["sectors"]) == 1
    assert made["rank_moved"] == 3 and secret not in str(made)
    page.wait_for_function("() => [...document.querySelectorAll('#watch-list td')]"
                           ".some(td => td.textContent === 'page-watch')")
    row = page.locator("#watch-list tr", has_text="page-watch")
    assert "(inline)" in row.inner_text() and "stream only" in row.inner_text()


def test_events_and_errors_and_removal(page, server):
    http = server["http"]
    r = http.post("/v1/watches", json={"name": "initial-set", "screen": "squeeze",
                                       "initial": True})
    assert r.status_code == 201, r.text
    assert http.get("/v1/watches/initial-set").json()["state"]["events"] > 0
    page.click("#watch-refresh")
    page.wait_for_function("() => document.querySelectorAll('#watch-events tbody tr')"
                           ".length > 0")
    first = page.locator("#watch-events tbody tr").first.inner_text()
    assert "initial-set" in first and "entered" in first
    # an API error is a message, not a blank page
    page.fill("#watch-name", "bad-target")
    page.fill("#watch-webhook", "http://127.0.0.1:9/hook")
    page.click("#watch-create")
    page.wait_for_selector("#watch-error:not([hidden])")
    assert "loopback" in page.inner_text("#watch-error")
    # remove
    page.wait_for_selector("#watch-list button[data-watch='initial-set']")
    with page.expect_response(lambda resp: resp.request.method == "DELETE"):
        page.click("#watch-list button[data-watch='initial-set']")
    assert http.get("/v1/watches/initial-set").status_code == 404
    # no markup is ever built from data in watches.js
    source = http.get("/web/watches.js").text
    assert "innerHTML" not in source and "insertAdjacentHTML" not in source
