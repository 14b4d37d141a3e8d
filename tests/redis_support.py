"""A throwaway `redis-server` for the tests of the shared cache and rate limiter.

Tests start it, kill it mid-run and restart it on the same port, so what they show is what a
replica sees when the real Redis dies and comes back. `REDIS` is None when the binary is
missing; test modules skip with `SKIP_REASON` then.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from serve_support import free_port

REDIS = shutil.which("redis-server")
SKIP_REASON = "needs redis-server: apt-get update && apt-get install -y redis-server"


class RedisServer:
    """A redis-server on 127.0.0.1:port: no persistence, killed (SIGKILL) by the test."""

    def __init__(self, port: int):
        self.port, self.proc = port, None
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self) -> None:
        import redis

        assert REDIS is not None, SKIP_REASON
        self.proc = subprocess.Popen(
            [REDIS, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url)


@contextmanager
def redis_running() -> Iterator[RedisServer]:
    """A started RedisServer on a free port, stopped at the end (a module fixture's body)."""
    srv = RedisServer(free_port())
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
