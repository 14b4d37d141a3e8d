"""Helpers of the watch tests: a demo market written without its last sessions (appended by
the test), a local engine, and a real HTTP receiver that records what arrives."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from technic_v4.data import store
from technic_v4.data.demo import DemoMarket, DemoSpec, generate_demo_market


@dataclass
class SplitMarket:
    """A demo market in `data`, all but its last `tail` sessions written; `append()` adds
    the next held-back session (as `technic data append` would: a tail segment)."""

    data: Path
    market: DemoMarket
    written: int

    def append(self, k: int = 1) -> list[str]:
        m, a, b = self.market, self.written, self.written + k
        store.append_segment(self.data, sessions=m.sessions[a:b], universe=m.universe,
                             **{f: getattr(m, f)[:, a:b] for f in
                                ("open", "high", "low", "close", "volume")})
        self.written = b
        return [str(s.date()) for s in m.sessions[a:b]]

    def bars_file(self, path: Path, k: int = 1) -> Path:
        """The next `k` held-back sessions as a long CSV (for `technic data append`)."""
        m, a, b = self.market, self.written, self.written + k
        frames = []
        for j in range(a, b):
            frames.append(pd.DataFrame({
                "symbol": m.universe["symbol"], "date": str(m.sessions[j].date()),
                **{f: getattr(m, f)[:, j] for f in ("open", "high", "low", "close", "volume")}}))
        pd.concat(frames).dropna().to_csv(path, index=False)
        return path


def split_market(data: Path, n_symbols: int = 300, tail: int = 3,
                 start: str = "2025-01-02") -> SplitMarket:
    m = generate_demo_market(DemoSpec(n_symbols=n_symbols, start=start))
    t = len(m.sessions) - tail
    store.write_store(data, sessions=m.sessions[:t], universe=m.universe,
                      **{f: getattr(m, f)[:, :t] for f in
                         ("open", "high", "low", "close", "volume")}, source="synthetic")
    return SplitMarket(data, m, t)


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1. `plan(n)` says what the n-th request (0-based) gets:
    an int status, ("sleep", seconds, status), or ("hang", seconds): no answer at all, the
    connection closed after `seconds` (or when the receiver closes). Every request is
    recorded."""

    plan: Callable[[int], object] = lambda n: 200
    requests: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    closing: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    n = len(receiver.requests)
                    entry = {"headers": dict(self.headers), "body": body,
                             "path": self.path, "at": time.time(), "status": None}
                    receiver.requests.append(entry)
                answer = receiver.plan(n)
                if isinstance(answer, tuple) and answer[0] == "hang":
                    receiver.closing.wait(answer[1])  # until the client gives up (or exit)
                    entry["status"] = "hung"
                    self.close_connection = True
                    return
                if isinstance(answer, tuple):
                    time.sleep(answer[1])
                    answer = answer[2]
                entry["status"] = answer
                out = json.dumps({"n": n}).encode()
                try:
                    self.send_response(int(answer))
                    if int(answer) in (301, 302, 307, 308):
                        self.send_header("location", receiver.redirect)
                    self.send_header("content-length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                    entry["answered"] = time.time()
                except OSError:
                    entry["status"] = "client gone"

            def log_message(self, *args: object) -> None:
                return None

        self.redirect = ""
        http.server.ThreadingHTTPServer.request_queue_size = 256  # no SYN drops under load
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()

    def accepted(self) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["status"] == 200 and r.get("answered")]


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def cli_invoker(split: Any) -> Callable[..., Any]:
    """`technic ARGS --data-dir <split's data>` through typer's runner, the exit status
    checked (`code`), with the split market as `.split`: the watch CLI tests' fixture."""
    from typer.testing import CliRunner

    from technic_v4.cli import app

    runner = CliRunner()

    def invoke(*args: str, code: int = 0):  # type: ignore[no-untyped-def]
        result = runner.invoke(app, [*args, "--data-dir", str(split.data)])
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        return result

    invoke.split = split  # type: ignore[attr-defined]
    return invoke
