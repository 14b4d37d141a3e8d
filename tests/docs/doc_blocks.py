"""Run the documentation's command blocks as a reader would, in a sandbox of their own.

A sandbox is a home folder holding the 5,000-symbol demo market where technic looks by
default (`~/.local/share/technic`), the input files the examples name (`bars.csv`,
`universe.csv`, `bars.parquet`, `today.csv`, `new_day.csv`, `./csv/`: demo bars written in the
vendors' layouts), and an in-process API on a free port standing in for `localhost:8000`. A
`bash` block runs as one script under `set -euo pipefail`, so a failing line fails its block;
a line whose comment states its exit status (`exit status 3`) must exit with it (`exit
status 1 when ...`: with it or 0). `curl` lines
fail on an HTTP error. Lines that need what no test machine has (a package install, a key for
a paid provider, a cloud bucket, a long-running server) are listed in `NOT_RUN` with the test
that covers them instead.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
PORT_IN_DOCS = "localhost:8000"
# The sandbox holds every 10th symbol of the default demo market (500 of 5,000: its scans take
# a tenth of the time) and every demo symbol the documentation names.
SUBSET_STEP = 10
# A sitecustomize for the sandbox's processes: example.com (the documentation's placeholder
# host) resolves to 127.0.0.1, so no example ever sends a packet off this machine.
RESOLVER = Path(__file__).parent / "resolver"
NAMED_SYMBOLS = ("VSE", "QDA", "JSA", "LTE", "ATSY")

# A line matching one of these is not run; the value says why and what runs it instead.
NOT_RUN: dict[str, str] = {
    r"^pip install": "installs packages (CI's own set-up runs it)",
    r"^python -m pytest|^ruff check": "the test suite itself",
    r"^mkdocs ": "the docs build (.ci/run builds the site; tests/docs/test_reference.py checks "
                 "its generated pages)",
    r"^python -m venv|/tmp/venvX/|^export TECHNIC_DATA_DIR=/tmp/fresh-data":
        "a fresh virtualenv: the first-run figures in bench/",
    r"^python -m deployments\.(launch|local)":
        "a long-running server: tests/serve/test_edge_local.py and test_edge_serve.py",
    r"^python loadtests/|^python bench/": "a benchmark: minutes of load, run by hand",
    r"POLYGON_API_KEY=": "a paid provider's key: tests/data/test_polygon.py runs it on a stub",
    r"^technic data (init|update)|TECHNIC_UPDATE_AT=":
        "reaches Yahoo or Polygon: tests/cli/test_cli_init.py, tests/data/test_yahoo.py and "
        "test_update_schedule.py run it against a local server in Yahoo's wire format",
    r"^technic live|ALPACA_API_": "live bars: tests/live/test_feed_cli.py runs them on a session "
                                  "file and on a local server in Alpaca's wire format, "
                                  "tests/live/test_live_screen.py live screens on a demo store",
    r"s3://": "a cloud bucket: tests/data/test_store_uri.py runs it on a local S3 server",
    r"--index |Indexes in": "a store of index members (the sandbox holds the demo market): "
                            "tests/data/test_index_filter.py runs it",
}


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language and text."""

    path: Path
    line: int
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, in order."""
    text = path.read_text()
    found = []
    for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
        found.append(Block(path, text[: m.start()].count("\n") + 1, m.group(1), m.group(2)))
    return found


def not_run_reason(line: str) -> str | None:
    for pattern, why in NOT_RUN.items():
        if re.search(pattern, line.strip()):
            return why
    return None


def script(block: Block, port: int) -> str:
    """The block as a bash script: skipped lines become `:`, stated exit statuses are
    accepted, curl fails on HTTP errors and a streaming curl stops after two seconds."""
    out = ["set -euo pipefail"]
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        # a command continued with `\` or inside an open quote is one unit
        unit = [line]
        while (unit[-1].rstrip().endswith("\\") or _open_quote("\n".join(unit))) \
                and i + 1 < len(lines):
            i += 1
            unit.append(lines[i])
        i += 1
        command = "\n".join(unit)
        if not command.strip() or command.lstrip().startswith("#"):
            continue
        if not_run_reason(command):
            out.append(f"# not run here: {not_run_reason(command)}")
            continue
        command = command.replace(PORT_IN_DOCS, f"127.0.0.1:{port}")
        if re.match(r"\s*curl -N", command):
            command = command.replace("curl -N", "curl -sS -N --max-time 2", 1)
            command += " || [ $? -eq 28 ]"  # 28: the stream was still open after 2 s
        elif re.match(r"\s*curl ", command):
            command = command.replace("curl -s", "curl -sS --fail-with-body", 1)
        status = re.search(r"exit status (\d+)( when| if)?", command)
        if status:  # "exit status 3": exactly 3; "exit status 1 when ...": 0 or 1
            code, bare = status.group(1), command.split("#", 1)[0].rstrip()
            accept = f"[ $status -eq {code} ]" + (" || [ $status -eq 0 ]" if status.group(2)
                                                  else "")
            command = f"status=0; {bare} || status=$?; {accept}"
        out.append(command)
    return "\n".join(out) + "\n"


def _open_quote(text: str) -> bool:
    """Whether single quotes are left open (outside comments): a JSON body over lines."""
    code = "\n".join(line.split(" #", 1)[0] for line in text.splitlines())
    return code.count("'") % 2 == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sandbox:
    """A home with the demo market and the examples' input files, and an API on a port."""

    def __init__(self, template: Path, where: Path) -> None:
        self.home = where / "home"
        self.cwd = where / "work"
        self.cwd.mkdir(parents=True)
        # store files are written under new names and renamed into place: hard links are a
        # safe, instant copy
        shutil.copytree(template / "home", self.home, copy_function=os.link)
        for item in (template / "files").iterdir():
            target = self.cwd / item.name
            if item.is_dir():
                shutil.copytree(item, target)
            else:
                shutil.copy(item, target)

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items()
                if not k.startswith(("TECHNIC_", "XDG_"))}
        return {**keep, "HOME": str(self.home), "COLUMNS": "160",
                # the webhook examples name example.com: here it resolves to 127.0.0.1
                # (RESOLVER), where nothing listens, and loopback targets are allowed
                "TECHNIC_WEBHOOK_ALLOW_PRIVATE": "1",
                "WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"s" * 24).decode(),
                "PYTHONPATH": os.pathsep.join(filter(None, [
                    str(RESOLVER), str(ROOT), os.environ.get("PYTHONPATH")]))}

    def run(self, text: str, *, lang: str = "bash", timeout: float = 600) \
            -> subprocess.CompletedProcess[str]:
        argv = ["bash", "-c", text] if lang == "bash" else [sys.executable, "-c", text]
        return subprocess.run(argv, cwd=self.cwd, env=self.env(), capture_output=True,
                              text=True, timeout=timeout)


class Server:
    """The in-process API (uvicorn, no edge) over a sandbox, on a free port."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.port = free_port()
        self.log = open(sandbox.cwd.parent / "server.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "deployments.api.main:local_app",
             "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=sandbox.cwd, env=sandbox.env(), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the API exited: {Path(self.log.name).read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=5).status_code \
                        == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.close()
        raise RuntimeError("the API did not become ready")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def build_template(where: Path) -> Path:
    """The sandbox template: the demo market in home/.local/share/technic, and the input
    files the examples name, written from 60 of its symbols (enough to train models on)."""
    from technic_v4.data.demo import generate_demo_market
    from technic_v4.data.store import write_store

    market = generate_demo_market()  # the default demo market: the symbols the README names
    keep = np.zeros(len(market.symbols), dtype=bool)
    keep[::SUBSET_STEP] = True
    keep |= np.isin(market.symbols, NAMED_SYMBOLS)
    universe = market.universe[keep].reset_index(drop=True)
    fields = {f: getattr(market, f)[keep] for f in ("open", "high", "low", "close", "volume")}
    data = where / "home" / ".local" / "share" / "technic"
    write_store(data, sessions=market.sessions, universe=universe, source="synthetic",
                calendar=market.calendar, meta={"subset_of": "the demo market"}, **fields)
    files = where / "files"
    (files / "csv").mkdir(parents=True)
    symbols, dates = universe["symbol"].to_numpy(), market.sessions.strftime("%Y-%m-%d")
    listed = np.isfinite(fields["close"]).all(axis=1)
    frames = [pd.DataFrame({"symbol": symbols[i], "date": dates,
                            **{f: fields[f][i] for f in fields}})
              for i in np.flatnonzero(listed)[:60]]
    bars = pd.concat(frames, ignore_index=True)
    bars.to_csv(files / "bars.csv", index=False)
    bars.to_parquet(files / "bars.parquet", index=False)
    chosen = universe[universe["symbol"].isin(bars["symbol"].unique())]
    for name in ("universe.csv", "u.csv"):
        chosen.to_csv(files / name, index=False)
    # the next session after the store's last one, for `data append`
    last = bars[bars["date"] == bars["date"].max()].copy()
    last["date"] = "2026-11-02"
    for col in ("open", "high", "low", "close"):
        last[col] = (last[col] * 1.01).round(2)
    for name in ("today.csv", "new_day.csv"):
        last.to_csv(files / name, index=False)
    for symbol, rows in bars[bars["symbol"].isin(symbols[listed][:3])].groupby("symbol"):
        yahoo = rows.drop(columns="symbol").rename(columns=str.title)
        yahoo["Adj Close"] = yahoo["Close"]
        yahoo.to_csv(files / "csv" / f"{symbol}.csv", index=False)
    return where
