"""`store_read`: a store that cannot be read is a StoreError, wherever it is read.

The reader raises StoreError for a missing or unreadable manifest; a data file it opens but
pyarrow cannot parse (corrupt, truncated: `ArrowInvalid`) or an I/O error would otherwise
reach the client as a 500. Wrapped here, every such failure answers 503 + Retry-After with the
reason (deployments/api/errors.py), in-process and on the Serve replicas alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pyarrow as pa

from technic_v4.data.store_fs import StoreError

STORE_READ_ERRORS = (pa.ArrowException, OSError)
T = TypeVar("T")


def store_read(what: str, read: Callable[[], T]) -> T:
    """`read()`, with a store it cannot parse or open raised as StoreError naming `what`."""
    try:
        return read()
    except StoreError:
        raise
    except STORE_READ_ERRORS as exc:
        raise StoreError(f"{what} failed: {type(exc).__name__}: {exc}") from exc
