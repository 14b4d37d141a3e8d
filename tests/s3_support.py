"""An S3 API server for the object-store tests: moto in its own process on 127.0.0.1
(`s3_server`; the `s3` fixture in conftest.py)."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from serve_support import free_port

BUCKET = "technic"
# werkzeug's request log line; it may colour the request text with ANSI codes (by status)
REQUEST = re.compile(r'"(?:\x1b\[[0-9;]*m)*(GET|PUT|POST|DELETE|HEAD) /([^ ?]*)')


@dataclass
class S3:
    port: int
    log: Path

    def uri(self, prefix: str, userinfo: str = "") -> str:
        return (f"s3://{userinfo}{BUCKET}/{prefix}?endpoint_override=127.0.0.1:{self.port}"
                "&scheme=http&region=us-east-1")

    def objects(self, prefix: str) -> list[str]:
        fs = pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{self.port}", scheme="http",
                               region="us-east-1")
        infos = fs.get_file_info(pafs.FileSelector(f"{BUCKET}/{prefix}/store",
                                                   allow_not_found=True))
        return sorted(i.base_name for i in infos)

    def requests(self) -> list[tuple[str, str]]:
        """(method, bucket/key) of every request the server has answered, in order. The server
        logs a request after answering it, so first a marker request is sent and awaited in
        the log: every request this process made before it is logged by then."""
        fs = pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{self.port}", scheme="http",
                               region="us-east-1")
        marker = f"{BUCKET}/_log_marker/{time.monotonic_ns()}"
        fs.get_file_info(marker)
        deadline = time.monotonic() + 10
        while marker not in self.log.read_text():
            assert time.monotonic() < deadline, f"{marker} never reached the server log"
            time.sleep(0.05)
        time.sleep(0.1)  # requests answered just before the marker, logged by other threads
        return [(m.group(1), m.group(2)) for m in map(REQUEST.search, self.log.read_text()
                                                      .splitlines()) if m and "_log_marker/"
                not in m.group(2)]


@contextlib.contextmanager
def s3_server(log: Path) -> Iterator[S3]:
    port = free_port()
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                 "-p", str(port)], stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"moto server exited:\n{log.read_text()}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "moto server did not start in 60 s"
                time.sleep(0.2)
        with pytest.MonkeyPatch.context() as mp:
            for k, v in {"AWS_ACCESS_KEY_ID": "technic-test", "AWS_SECRET_ACCESS_KEY":
                         "technic-test-secret", "AWS_DEFAULT_REGION": "us-east-1",
                         "AWS_EC2_METADATA_DISABLED": "true"}.items():
                mp.setenv(k, v)
            for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "TECHNIC_DATA_DIR"):
                mp.delenv(k, raising=False)
            pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http",
                              region="us-east-1", allow_bucket_creation=True).create_dir(BUCKET)
            yield S3(port, log)
    finally:
        proc.terminate()
        proc.wait(10)
