"""A screen is evaluated once before anything stores it, so it cannot fail later for a
reason known now.

`/v1/screens`, `/v1/watches`, `technic screen save` and `technic watch add` run the screen
at the newest session inside `evaluated_once(field)`: a ConfigError passes as it is (HTTP
422 naming its field); any other failure of the evaluation (a KeyError, a ValueError, ...
from the engine) is the screen's fault and becomes ConfigError(field, "... cannot be
evaluated: <what failed>"), 422, with nothing stored. What is not the screen's fault
(`INFRASTRUCTURE`: the store changed or cannot be read, memory, the OS) passes unchanged:
the same screen may work a moment later. The watcher classifies a watch's failure the
same way (`screen_fault`): the screen's fault marks that watch failed and the others go on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from technic_v4.data.store_fs import StoreError
from technic_v4.errors import ConfigError, StaleDataError

INFRASTRUCTURE: tuple[type[BaseException], ...] = (StaleDataError, StoreError, OSError,
                                                   MemoryError)
REASON_CHARS = 500


def screen_fault(exc: Exception, field: str) -> ConfigError | None:
    """`exc` as the ConfigError a screen's evaluation failure is, or None when it is not the
    screen's fault (INFRASTRUCTURE)."""
    if isinstance(exc, ConfigError):
        return exc
    if isinstance(exc, INFRASTRUCTURE):
        return None
    why = f"{type(exc).__name__}: {exc}"[:REASON_CHARS]
    return ConfigError(field, f"the screen cannot be evaluated: {why}")


@contextmanager
def evaluated_once(field: str) -> Iterator[None]:
    """Run a screen's trial evaluation: its failures as `screen_fault` says."""
    try:
        yield
    except Exception as exc:
        fault = screen_fault(exc, field)
        if fault is None or fault is exc:
            raise
        raise fault from exc
