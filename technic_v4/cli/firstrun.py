"""The first run's kernel compile: two background processes that fill numba's cache.

On a first run (a local data dir without a store: the demo market is about to be built) a
`technic scan` starts compiling its kernels in two other processes, before it imports the
engine, so the compile overlaps the imports and the demo build and uses both cores
(`technic_v4.indicators.warmup.warm_kernels` does the compiling). This module decides from the
arguments and the environment alone, importing neither numba nor the engine; the scan waits
for the processes before its indicator stage (technic_v4/cli/scan.py `Progress`).
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from pathlib import Path

_WARMING: list[subprocess.Popen[bytes]] | None = None  # the processes compiling the kernels


def processes() -> list[subprocess.Popen[bytes]] | None:
    """The compile processes this run started, if any."""
    return _WARMING

def start_warming(args: list[str], root: Path | None = None) -> None:
    """On a first run (a local data dir without a store: the demo market is about to be built)
    start compiling the scan's kernels now, in two processes that share the work
    (`warm_kernels`), before this one imports the engine, so the compile overlaps the imports
    and the demo build and uses both cores. A cheap guess from the arguments and the
    environment (the scan's own checks decide everything else): a wrong guess costs two
    processes' start-up, nothing more; a process still running when this one exits is
    stopped."""
    global _WARMING
    if _WARMING is not None or "--help" in args:
        return
    data_dir = None if root is None else str(root)
    for i, arg in enumerate(args if root is None else []):
        if arg == "--data-dir" and i + 1 < len(args):
            data_dir = args[i + 1]
        elif arg.startswith("--data-dir="):
            data_dir = arg.split("=", 1)[1]
    data_dir = data_dir or next((v for k, v in os.environ.items()
                                 if k.upper() == "TECHNIC_DATA_DIR" and v), None)
    if data_dir is not None and ("://" in data_dir or data_dir.startswith("file:")):
        return  # an object store is never filled with the demo market automatically
    if data_dir is None:
        import platformdirs

        data_dir = platformdirs.user_data_dir("technic")
    if (Path(data_dir).expanduser() / "store" / "manifest.json").exists() or (
            root is None and _probably_warm()):
        return
    try:
        _WARMING = [subprocess.Popen(
            [sys.executable, "-c", f"from technic_v4.indicators.warmup import warm_kernels; "
             f"warm_kernels({part}, 2)"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for part in (0, 1)]
    except OSError:
        return
    atexit.register(stop_warming)


def _probably_warm() -> bool:
    """Whether numba's cache holds the engine's layout kernel, newer than its source: a hint,
    read without importing numba, that the kernels need no compiling (the scan's `Progress`
    checks properly, and starts the compile itself when the hint was wrong)."""
    import hashlib

    import technic_v4

    source = Path(os.path.abspath(technic_v4.__file__)).parent / "indicators" / "engine.py"
    sub = f"indicators_{hashlib.sha1(str(source.parent).encode()).hexdigest()}"
    user_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "numba"
    places = [source.parent / "__pycache__", user_cache / sub]
    if os.environ.get("NUMBA_CACHE_DIR"):
        places.insert(0, Path(os.environ["NUMBA_CACHE_DIR"]) / sub)
    try:
        built = source.stat().st_mtime
        return any(index.stat().st_mtime >= built for place in places
                   for index in place.glob("engine.bar_layout-*.nbi"))
    except OSError:
        return False


def stop_warming() -> None:
    """Stop the compile processes still running (at exit, or before a fast exit)."""
    for proc in _WARMING or []:
        if proc.poll() is None:
            proc.terminate()
            proc.wait()
