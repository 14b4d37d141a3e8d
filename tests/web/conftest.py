"""One headless Chromium per module of page tests (Debian's, through Playwright),
and the Serve app for each module of page tests that need no store of their own (test_web.py,
test_web_validate.py): Ray started small, `build_app` with `serve.run` on 127.0.0.1, a
500-symbol demo store and tiny models, API keys on."""

from __future__ import annotations

import httpx
import pytest
from serve_support import PAGE_GUARD_MS, chromium, playwright_or_skip, running_app, watch_page

KEY = "web-key-1"
ENV = {"RAY_AUTH_MODE": "disabled", "OMP_WAIT_POLICY": "PASSIVE", "TECHNIC_API_KEYS": KEY}


# per module, not per session: Playwright's sync API keeps an event loop running in the
# worker's thread while the browser is open, and a later test's asyncio.run would fail
@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    with chromium(playwright_or_skip()) as b:
        yield b


@pytest.fixture(scope="module")  # Serve serves one app on "/": per module
def server(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("web"), ENV, "technic-web",
                     chunk_size=128) as running:
        with httpx.Client(base_url=running["url"], headers={"X-API-Key": KEY},
                          timeout=120) as http:
            yield {"url": running["url"], "http": http}


@pytest.fixture()
def page(browser, server):
    """A fresh page with the API key typed in; fails the test on any script error or any
    request to another origin."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    ctx.set_default_timeout(PAGE_GUARD_MS)
    pg = ctx.new_page()
    problems = watch_page(pg, server["url"])
    pg.goto(server["url"] + "/")
    pg.fill("#api-key", KEY)
    pg.press("#api-key", "Enter")  # change event: stored in localStorage, sectors reloaded
    pg.wait_for_selector("#sectors option")
    yield pg
    ctx.close()
    assert not problems, problems
