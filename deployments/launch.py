"""`serve run serve_config.yaml`, on a Ray started small: no dashboard, bounded object store.

    python -m deployments.launch [serve_config.yaml] [--host H] [--port P]

Why not plain `serve run`: it starts Ray with the dashboard (~1 GB RSS) and cannot override
the config's host/port, and Render gives the port in $PORT. This starts Ray itself
(`include_dashboard=False`, object store TECHNIC_OBJECT_STORE_MB, default 256 MB), writes the
config with http_options.host/port replaced (--port, else $PORT, else the file's), then runs
Serve's own `serve run` command in this process, which finds Ray initialised and uses it.
RAY_AUTH_MODE defaults to "disabled" here (a single-machine server; put it behind
TECHNIC_API_KEYS); set it yourself to manage Ray's token. SIGTERM shuts Serve and Ray down.
"""

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path

import yaml

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "serve_config.yaml"


def _config_with(path: Path, host: str | None, port: int | None) -> Path:
    config = yaml.safe_load(path.read_text())
    http = config.setdefault("http_options", {})
    if host:
        http["host"] = host
    if port:
        http["port"] = port
    fd, out = tempfile.mkstemp(prefix="technic-serve-", suffix=".yaml")
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)
    return Path(out)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # `serve run` shuts Serve down on Ctrl-C; SIGTERM does the same


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", nargs="?", default=str(DEFAULT_CONFIG))
    ap.add_argument("--host", default=None, help="default: the config's http_options.host")
    ap.add_argument("--port", type=int, default=None, help="default: $PORT, else the config's")
    ap.add_argument("--num-cpus", type=int, default=None, help="default: all cores")
    args = ap.parse_args(argv)
    port = args.port or (int(os.environ["PORT"]) if os.environ.get("PORT") else None)
    config = _config_with(Path(args.config), args.host, port)

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import ray
    from ray.serve.scripts import run

    store_mb = int(os.environ.get("TECHNIC_OBJECT_STORE_MB", "256"))
    ray.init(include_dashboard=False, num_cpus=args.num_cpus,
             object_store_memory=store_mb << 20, namespace="serve")
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        run.main([str(config)], prog_name="serve run", standalone_mode=False)
    except KeyboardInterrupt:
        pass
    finally:
        config.unlink(missing_ok=True)
        ray.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
