"""A provider's wire format served on 127.0.0.1 from a thread: the server, its URL and its
lifetime (`with Stub(...) as stub`), shared by the Yahoo and Polygon stubs; a subclass
answers each GET in `_handle(handler)`."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a request thread never holds the process open


class LoopbackStub:
    """Starts serving on `__enter__`, stops on `__exit__`; `_handle` answers a GET on a
    `server_class` (a subclass may quiet its error reports)."""

    server_class: type[ThreadingHTTPServer] = _Server

    def __init__(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                stub._handle(self)

        self.server = self.server_class(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
