"""Per-host request slots, so no outlet ever sees more than a few requests from us at once."""

from __future__ import annotations

import threading
from collections import defaultdict
from functools import lru_cache
from urllib.parse import urlsplit


@lru_cache(maxsize=8192)  # feed URLs repeat every poll, and urlsplit is not cheap
def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


class HostSlots:
    """At most ``per_host`` holders per host name; thread-safe."""

    def __init__(self, per_host: int):
        self.per_host = per_host
        self._held: dict[str, int] = defaultdict(int)
        self._changed = threading.Condition()

    def try_acquire(self, host: str) -> bool:
        with self._changed:
            if self._held[host] >= self.per_host:
                return False
            self._held[host] += 1
            return True

    def acquire(self, host: str, timeout: float) -> bool:
        with self._changed:
            if not self._changed.wait_for(lambda: self._held[host] < self.per_host, timeout):
                return False
            self._held[host] += 1
            return True

    def release(self, host: str) -> None:
        with self._changed:
            self._held[host] -= 1
            if self._held[host] <= 0:
                del self._held[host]
            self._changed.notify_all()
