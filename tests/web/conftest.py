"""One headless Chromium for every page test of the session (Debian's, through Playwright)."""

from __future__ import annotations

import pytest
from serve_support import chromium, playwright_or_skip


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    with chromium(playwright_or_skip()) as b:
        yield b
