"""Compile numba's kernels before a scan needs them, and tell whether its cache is cold.

A scan's first run on a machine compiles every indicator kernel (about 10 s); numba caches
the compiled code next to the package (`__pycache__`), or in ~/.cache/numba when the package
folder is not writable. `warm_kernels` fills that cache by running the kernels on a tiny
Panel of the scan's array types, whole or in one of two shares (so two processes compile at
once: technic_v4/cli/firstrun.py starts them); `cold_kernel_cache` reads numba's cache index
of exactly the kernels a scan calls (`scan_kernels`), so the CLI can say it is compiling.
"""

from __future__ import annotations

import sys
from typing import Any


def prepare_numba() -> None:
    """numba's one-time set-up of its typing and target registries (~0.4 s, otherwise paid by
    the first kernel loaded from the cache)."""
    try:
        from numba.core.registry import cpu_target

        cpu_target.typing_context.refresh()
        cpu_target.target_context.refresh()
    except Exception:  # noqa: BLE001  (an internal that moved: the first load pays, as usual)
        pass


def warm_kernels(part: int = 0, parts: int = 1) -> None:
    """Compile (or load from numba's cache) the kernels a scan calls, by running them on a tiny
    Panel of the scan's array types (float64, C order; one row listing late and one with a
    gap, so the engine's packing runs too): all of them (parts=1), or one of two shares, so
    two processes compile at once (technic_v4/cli/firstrun.py).

    Share 0 runs the indicator stage for a third of the scan's indicator kernels plus the
    engine's layout kernels and the quality gate; share 1 calls the other two thirds directly.
    Each top-level kernel belongs to exactly one share, and share 1 saves only its own
    kernels to numba's cache (every other dispatcher's cache is switched off in that process),
    so no cache file is ever written by both: a kernel loaded from the cache carries its
    callees' code, which share 1 compiles in memory only."""
    from dataclasses import replace

    import numpy as np
    import pandas as pd

    from technic_v4.data.panel import panel_from_arrays
    from technic_v4.data.quality import check_panel
    from technic_v4.indicators import compute_indicators
    from technic_v4.indicators.registry import resolve

    n, t = 6, 260
    rng = np.random.default_rng(0)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, (n, t)), axis=1))
    close[1, :40] = np.nan
    close[2, 100:103] = np.nan
    volume = np.where(np.isfinite(close), 1e6, np.nan)
    panel = panel_from_arrays([f"W{i}" for i in range(n)], pd.bdate_range("2020-01-01",
                                                                          periods=t),
                              open=close, high=close * 1.01, low=close * 0.99, close=close,
                              volume=volume)
    panel = replace(panel, meta={"missing_sessions": []})  # no calendar needed
    if parts == 1:
        compute_indicators(panel)
        check_panel(panel)
        return
    specs, _ = resolve(None)
    kernels = sorted({id(s.kernel): s.kernel for s in specs}.values(),
                     key=lambda k: getattr(k, "__name__", repr(k)))
    mine = {id(k) for i, k in enumerate(kernels) if (i % 3 != 0) == (part == 1)}
    if part == 0:
        compute_indicators(panel, [o for s in specs if id(s.kernel) in mine for o in s.outputs])
        check_panel(panel)
        return
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    for name, module in list(sys.modules.items()):
        if name.startswith("technic_v4.") and module is not None:
            for obj in list(vars(module).values()):
                if isinstance(obj, Dispatcher) and id(obj) not in mine:
                    obj._cache = NullCache()  # type: ignore[attr-defined]
    arrays = {f: np.ascontiguousarray(getattr(panel, f)) for f in
              ("open", "high", "low", "close", "volume")}
    for spec in specs:
        if id(spec.kernel) in mine and all(f in arrays for f in spec.inputs):
            spec.run(arrays, 1)


def scan_kernels() -> list[Any]:
    """The numba dispatchers every scan calls at top level: the kernels of the scan's
    indicator outputs (the registry), the engine's bar layout and the quality gate's."""
    from technic_v4.data import quality
    from technic_v4.indicators import engine
    from technic_v4.indicators.registry import resolve

    specs, _ = resolve(None)
    found: list[Any] = [spec.kernel for spec in specs]
    found += [getattr(engine, "bar_layout", None), quality._check_rows, quality._median_ratio]
    return list({id(k): k for k in found if k is not None}.values())


def cold_kernel_cache() -> tuple[int, str]:
    """(how many of the scan's kernels (`scan_kernels`) have no compiled code in numba's
    on-disk cache, where that cache is); (0, "") when all are warm or the cache cannot be
    inspected (numba's private layout: checked, never trusted). A kernel's cache is cold when
    its index file is missing, written by another numba version or built from other source
    (numba's own freshness rules), as on the first run on a machine or after an upgrade."""
    cold, where = 0, ""
    try:
        kernels = scan_kernels()
    except Exception:  # noqa: BLE001  (a refactored engine: say nothing rather than guess)
        return 0, ""
    for kernel in kernels:
        cache_file = getattr(getattr(kernel, "_cache", None), "_cache_file", None)
        if cache_file is None:
            continue
        try:
            warm = bool(cache_file._load_index())
        except Exception:  # noqa: BLE001  (an unreadable index: numba recompiles)
            warm = False
        if not warm:
            cold += 1
            where = where or str(getattr(cache_file, "_cache_path", ""))
    return cold, where
