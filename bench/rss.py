"""The peak of a memory reading while a block of work runs, for the memory benchmarks."""

from __future__ import annotations

import threading
from collections.abc import Callable


class PeakRss:
    """`with PeakRss(read) as rss: ...` samples `read()` (MB) every `every` s in a thread
    until the block ends; `rss.idle` is the reading at entry, `rss.peak` the largest seen."""

    def __init__(self, read: Callable[[], float], every: float = 0.2):
        self.read, self.every = read, every
        self.idle = self.peak = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(self.every):
            self.peak = max(self.peak, self.read())

    def __enter__(self) -> PeakRss:
        self.idle = self.peak = self.read()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self.read())
