"""Hostile clients for the edge tests (issue 16), and the two launchers run as real processes.

Clients speak raw HTTP/1.1 over sockets, so they can send what no HTTP library would (bytes
that are not UTF-8, a body one byte a second, nothing at all) and bind each connection to its
own loopback address (`address(i, block)`: 127.<block>.x.y), so per-address caps see many
clients where a test needs them. Each test uses its own `block`, so per-address state (caps,
failed-key buckets) never carries from one test to another.

`launched(...)` runs `python -m deployments.launch` (Ray Serve) or `python -m deployments.local`
(in-process) as a subprocess in its own session, waits for /readyz through the edge, and stops
it with SIGTERM (then SIGKILL of its process group) afterwards. The idle flood runs in child
processes of this module (`python tests/edge_support.py idle-flood ...`) because 25,000
client sockets need more file descriptors than one process may have.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def raise_fd_limit() -> int:
    """This process's RLIMIT_NOFILE soft limit raised to the hard one; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def address(i: int, block: int) -> str:
    """The i-th client address of `block` (127.<block>.x.y; 62,500 per block)."""
    return f"127.{block}.{(i // 250) % 250 + 1}.{i % 250 + 1}"


def raw(method: str, path: str, headers: list[tuple[bytes, bytes]] | None = None,
        body: bytes = b"", *, close: bool = True, length: int | None = None) -> bytes:
    """An HTTP/1.1 request as bytes; header values are sent exactly as given."""
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: technic"]
    for k, v in headers or []:
        lines.append(k + b": " + v)
    if body or method == "POST":
        lines.append(b"Content-Type: application/json")
        lines.append(b"Content-Length: " + str(len(body) if length is None else length).encode())
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@dataclass
class Reply:
    status: int | None
    headers: dict[str, str]
    body: bytes
    seconds: float
    error: str = ""


def parse(data: bytes, seconds: float, error: str = "") -> Reply:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = None
    if lines and lines[0].startswith(b"HTTP/"):
        with suppress(IndexError, ValueError):
            status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return Reply(status, headers, body, seconds, error)


def dechunk(data: bytes) -> bytes:
    out, rest = [], data
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2:]
    return b"".join(out)


HANG_GUARD_S = 600.0  # an answer this late is a hang: speed is bench/'s and RELIABILITY.md's


def request(port: int, data: bytes, src: str | None = None, timeout: float = HANG_GUARD_S
            ) -> Reply:
    """Send `data` (a Connection: close request) and read the answer to EOF."""
    t0 = time.monotonic()
    chunks: list[bytes] = []
    try:
        with socket.socket() as s:
            s.settimeout(timeout)
            if src:
                s.bind((src, 0))
            s.connect((HOST, port))
            s.sendall(data)
            while chunk := s.recv(1 << 16):
                chunks.append(chunk)
    except OSError as exc:
        return parse(b"".join(chunks), time.monotonic() - t0, f"{type(exc).__name__}: {exc}")
    return parse(b"".join(chunks), time.monotonic() - t0)


class Probe(threading.Thread):
    """A new client every `every` s from its own address: GET /healthz, then (with `scan`) a
    small uncached scan; every (kind, status, seconds) kept in `results`."""

    def __init__(self, port: int, key: str, block: int, every: float = 0.5,
                 scan: bytes = b'{"limit": 5, "sectors": ["Utilities"]}'):
        super().__init__(daemon=True)
        self.port, self.key, self.block, self.every, self.scan = port, key, block, every, scan
        self.results: list[tuple[str, int | None, float]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        i = 0
        headers = [(b"X-API-Key", self.key.encode()), (b"Cache-Control", b"no-cache")]
        while not self.halt.is_set():
            r = request(self.port, raw("GET", "/healthz"), address(i, self.block))
            self.results.append(("healthz", r.status, r.seconds))
            if self.scan:
                r = request(self.port, raw("POST", "/v1/scan", headers, self.scan),
                            address(i + 1, self.block))
                self.results.append(("scan", r.status, r.seconds))
            i += 2
            self.halt.wait(self.every)

    def stop(self) -> list[tuple[str, int | None, float]]:
        self.halt.set()
        self.join(60)
        return self.results

    def worst(self, kind: str) -> float:
        return max((s for k, _, s in self.results if k == kind), default=0.0)


@dataclass
class SlowBodyStats:
    answers: list[tuple[int | None, float]] = field(default_factory=list)  # status, seconds
    connections: int = 0


def slow_bodies(port: int, n: int, seconds: float, block: int, key: str) -> SlowBodyStats:
    """`n` clients (one address each) that, for `seconds`, each send a request whose 100-byte
    body comes one byte a second, reconnecting whenever the server answers or closes."""
    stats = SlowBodyStats()
    head = raw("POST", "/v1/scan", [(b"X-API-Key", key.encode())], b"", length=100)

    async def one(i: int) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection(
                    HOST, port, local_addr=(address(i, block), 0)), 10)
            except (TimeoutError, OSError):
                await asyncio.sleep(0.5)
                continue
            stats.connections += 1
            t0 = time.monotonic()
            w.write(head + b"{")
            status: int | None = None
            try:
                while True:
                    try:
                        data = await asyncio.wait_for(r.read(4096), 1.0)
                    except TimeoutError:
                        w.write(b" ")  # one more body byte
                        await w.drain()
                        continue
                    if data.startswith(b"HTTP/"):
                        status = int(data.split()[1])
                    break
            except OSError:
                pass
            stats.answers.append((status, time.monotonic() - t0))
            w.close()

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(n)))

    asyncio.run(main())
    return stats


def non_reading(port: int, n: int, block: int, data: bytes) -> list[socket.socket]:
    """`n` clients, one address each, that send `data` and never read (receive buffer 4 KiB);
    the caller closes them."""
    out = []
    for i in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.bind((address(i, block), 0))
        s.connect((HOST, port))
        s.sendall(data)
        out.append(s)
    return out


def socket_closed_by_peer(s: socket.socket, wait_s: float = 0.0) -> bool:
    """True once the server has closed (or reset) this never-read socket: reading finds
    EOF/RST (data still queued is read over first). `wait_s` > 0 keeps reading while data
    arrives, at most that long between reads: a server that closed gracefully with its answer
    still in its send buffer sends the rest, then the FIN, only as this side reads."""
    if wait_s > 0:
        s.settimeout(wait_s)
    else:
        s.setblocking(False)
    try:
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                return True
    except (BlockingIOError, TimeoutError):
        return False
    except OSError:
        return True


# -- processes -------------------------------------------------------------------------------

def tree(pid: int) -> list:  # type: ignore[type-arg]
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def find(pid: int, needle: str) -> int:
    """The pid of the first process under `pid` whose command line contains `needle`."""
    for p in tree(pid):
        with suppress(Exception):
            if needle in " ".join(p.cmdline()):
                return int(p.pid)
    raise LookupError(f"no {needle!r} under pid {pid}")


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / (1 << 20)


def haproxy_info(pid: int) -> dict[str, str]:
    """`show info` of the HAProxy under `pid`, through its stats socket."""
    import psutil

    proc = psutil.Process(find(pid, "haproxy"))
    cfg = Path(proc.cmdline()[proc.cmdline().index("-f") + 1])
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(cfg.parent / "admin.sock"))
        s.sendall(b"show info\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return {k.strip(): v.strip() for k, _, v in
            (line.partition(":") for line in data.decode().splitlines()) if v}


@contextmanager
def launched(args: list[str], env: dict[str, str], port: int, log: Path,
             timeout_s: float = 240) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m <args>` with `env` added, in its own session; yields once GET /readyz through
    port `port` answers 200; SIGTERM at the end (SIGKILL of its group after 90 s)."""
    full = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]), **env}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=full, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        t0 = time.monotonic()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{args[0]} exited with {proc.returncode}:\n"
                                   f"{log.read_text(errors='replace')[-3000:]}")
            if request(port, raw("GET", "/readyz"), timeout=10).status == 200:
                break
            if time.monotonic() - t0 > timeout_s:
                raise TimeoutError(f"{args[0]} not ready within {timeout_s} s:\n"
                                   f"{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 90) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    return proc.returncode


# -- the idle flood (child processes) --------------------------------------------------------

@dataclass
class FloodStats:
    connects: int = 0
    refused: int = 0          # closed by the server at once (per-address cap), or no connect
    timed_out: int = 0        # held, then answered 408 and closed by the server
    other_close: int = 0      # held, then closed without a 408
    open_at_end: int = 0
    holds: list[float] = field(default_factory=list)  # seconds until the 408
    reconnects_until: float = 0.0  # time.time() when the clients stopped reconnecting


def idle_flood(port: int, n: int, naddr: int, block: int, seconds: float,
               hold_s: float = 15.0) -> FloodStats:
    """`n` connections that never send a byte, from `naddr` addresses of `block`, started
    over the first 3 s; each one, when the server closes it, reconnects after 1 s (3 s after
    a refusal), for `seconds`. A connection open then is held (never closed by the client)
    for up to `hold_s` more: what is still open after that is `open_at_end`."""
    raise_fd_limit()
    st = FloodStats(reconnects_until=time.time() + seconds)
    end = time.monotonic() + seconds

    async def one(i: int) -> None:
        src = address(i % naddr, block)
        await asyncio.sleep(3.0 * i / n)
        while time.monotonic() < end:
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection(
                    HOST, port, local_addr=(src, 0)), 10)
            except (TimeoutError, OSError):
                st.refused += 1
                await asyncio.sleep(3.0)
                continue
            st.connects += 1
            t0 = time.monotonic()
            pause = 1.0
            try:
                data = await asyncio.wait_for(r.read(4096),
                                              max(0.05, end + hold_s - time.monotonic()))
                held = time.monotonic() - t0
                if data.startswith(b"HTTP/1.1 408"):
                    st.timed_out += 1
                    st.holds.append(round(held, 2))
                elif held < 0.5:
                    st.refused += 1
                    pause = 3.0
                else:
                    st.other_close += 1
            except TimeoutError:
                st.open_at_end += 1
            except OSError:
                st.refused += 1
                pause = 3.0
            finally:
                w.close()
            if time.monotonic() < end:
                await asyncio.sleep(pause)

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(n)))

    asyncio.run(main())
    return st


def start_idle_flood(port: int, n: int, naddr: int, block: int, seconds: float,
                     out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, "idle-flood", str(port), str(n),
                             str(naddr), str(block), str(seconds), str(out)],
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


# -- store flips (a child process: the rewrites never wait for the clients' GIL) -------------

def flip_store(data: str, n_symbols: int, start: str, seeds: list[int], flips: int,
               every_s: float) -> dict[str, list]:  # type: ignore[type-arg]
    """Rewrite the store in `data` `flips` times, alternating between the demo markets of
    `seeds` (each rewrite: `write_store`, as an ingest does), `every_s` apart; the versions
    written and the seconds each rewrite took."""
    from technic_v4.data.demo import DemoSpec, generate_demo_market
    from technic_v4.data.store import write_store

    markets = [generate_demo_market(DemoSpec(n_symbols=n_symbols, seed=s, start=start))
               for s in seeds]
    versions: list[str] = []
    seconds: list[float] = []
    for k in range(flips):
        m = markets[(k + 1) % len(markets)]
        t0 = time.monotonic()
        versions.append(write_store(data, sessions=m.sessions, universe=m.universe,
                                    open=m.open, high=m.high, low=m.low, close=m.close,
                                    volume=m.volume, source="synthetic").data_version)
        seconds.append(round(time.monotonic() - t0, 3))
        time.sleep(every_s)
    return {"versions": versions, "seconds": seconds}


def start_flips(data: Path, n_symbols: int, start: str, seeds: tuple[int, ...], flips: int,
                every_s: float, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, "flip-store", str(data), str(n_symbols),
                             start, ",".join(map(str, seeds)), str(flips), str(every_s),
                             str(out)], env={**os.environ, "PYTHONPATH": str(ROOT)})


if __name__ == "__main__" and sys.argv[1:2] == ["flip-store"]:
    done = flip_store(sys.argv[2], int(sys.argv[3]), sys.argv[4],
                      [int(x) for x in sys.argv[5].split(",")], int(sys.argv[6]),
                      float(sys.argv[7]))
    Path(sys.argv[8]).write_text(json.dumps(done))

if __name__ == "__main__" and sys.argv[1:2] == ["idle-flood"]:
    port_, n_, naddr_, block_ = map(int, sys.argv[2:6])
    result = idle_flood(port_, n_, naddr_, block_, float(sys.argv[6]))
    Path(sys.argv[7]).write_text(json.dumps(result.__dict__))
