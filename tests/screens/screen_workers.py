"""Processes for tests/screens/test_saved.py's concurrency test: each opens its own
ScreenStore on the same file."""

from __future__ import annotations

from typing import Any

from technic_v4.screens.saved import ScreenStore

SAVES = 25


def writer(path: str, k: int, start: Any, out: Any) -> None:
    """Save SAVES definitions under "shared" and as many under "own-k"; report (version,
    max_symbols) of each shared save."""
    store = ScreenStore(path)
    start.wait()
    got = []
    for i in range(SAVES):
        limit = 1 + 1000 * k + i
        got.append((store.save("shared", {"max_symbols": limit, "where": "RSI > 50"}), limit))
        store.save(f"own-{k}", {"max_symbols": limit})
    out.put(got)


def reader(path: str, start: Any, stop: Any, out: Any) -> None:
    """Read the list and "shared" until `stop`; report (reads, errors): every read must
    succeed while writers write, and the latest version never goes back."""
    store = ScreenStore(path)
    start.wait()
    seen, errors, last = 0, [], 0
    while not stop.is_set():
        try:
            names = [s.name for s in store.list()]
            if "shared" in names:
                version = store.get("shared").version
                if version < last:
                    errors.append(f"version went back {last} -> {version}")
                last = version
            seen += 1
        except Exception as exc:
            errors.append(repr(exc))
    out.put((seen, errors))
