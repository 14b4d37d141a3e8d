"""Serve technic without Ray: HAProxy (the edge) on the public port, uvicorn on loopback behind it.

    python -m deployments.local [--host H] [--port P] [--no-edge]

The in-process app (`deployments.api.main:local_app`: the same routes as the Serve ingress,
the scan in this process) with the same edge as `deployments.launch` (deployments/edge.py):
HAProxy on --host (127.0.0.1) and --port (else $PORT, else 8000); uvicorn on
127.0.0.1:<TECHNIC_BACKEND_PORT, or a free port>, believing X-Forwarded-For only from
127.0.0.1 (the edge, which overwrites it). The edge bounds a request to
TECHNIC_REQUEST_TIMEOUT_S (504; uvicorn has no request timeout of its own). If HAProxy dies,
uvicorn is stopped and this exits with 1. `--no-edge` (local development) runs uvicorn on the
public address, says it is UNGUARDED, and believes X-Forwarded-For from nobody but
TECHNIC_TRUSTED_PROXIES. `uvicorn --factory deployments.api.main:local_app` still works and is
as unguarded.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

KEEP_ALIVE_S = 30  # above HAProxy's idle backend-connection purge (5 s): no reuse race


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=None, help="default: $PORT, else 8000")
    ap.add_argument("--no-edge", action="store_true",
                    help="uvicorn on the public address, no HAProxy: UNGUARDED, development only")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    log = logging.getLogger("technic.local")

    import uvicorn

    from deployments.edge import (
        Edge,
        EdgeConfig,
        EdgeError,
        backend_port,
        find_haproxy,
        unguarded_warning,
    )
    from technic_v4.settings import Settings

    settings = Settings()
    port = args.port or settings.port or 8000

    def config(host: str, port: int, forwarded_allow_ips: str) -> uvicorn.Config:
        return uvicorn.Config("deployments.api.main:local_app", factory=True, host=host,
                              port=port, proxy_headers=True,
                              forwarded_allow_ips=forwarded_allow_ips,
                              timeout_keep_alive=KEEP_ALIVE_S, access_log=False)

    if args.no_edge:
        log.warning(unguarded_warning(args.host, port))
        uvicorn.Server(config(args.host, port, ",".join(settings.trusted_networks()))).run()
        return 0
    try:
        internal = backend_port(settings)
        edge = Edge(EdgeConfig.from_settings(settings, host=args.host, port=port,
                                             backend_port=internal,
                                             server_timeout_s=settings.request_timeout_s),
                    find_haproxy(settings))
        edge.start()
    except EdgeError as exc:
        print(f"technic: {exc}", file=sys.stderr)
        return 2
    server = uvicorn.Server(config("127.0.0.1", internal, "127.0.0.1"))
    died: list[int] = []

    def edge_died(code: int) -> None:
        died.append(code)
        server.should_exit = True

    edge.watch(edge_died)
    # uvicorn re-raises SIGTERM after its shutdown; this handler turns it into an exception,
    # so the edge is stopped below instead of the process ending on the spot
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        edge.stop()
    if died:
        log.error("technic: the edge (HAProxy) exited with code %s; stopped", died[0])
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
