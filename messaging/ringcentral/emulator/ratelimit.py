"""User-level rate limits: a sliding window per key and group, with a penalty box.

Over the limit, the key is penalised for ``rate_penalty`` seconds, and every request made while
penalised restarts the penalty (RingCentral documents this; clients must stop, not probe).
Rejected requests do not enter the window.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from .config import EmulatorConfig


@dataclass(frozen=True)
class Decision:
    allowed: bool
    headers: dict[str, str]
    retry_after: int | None = None


class RateLimiter:
    def __init__(self, clock: Callable[[], float], config: Callable[[], EmulatorConfig]) -> None:
        self._clock = clock
        self._config = config
        self._lock = threading.Lock()
        self._windows: dict[tuple[Hashable, str], deque[float]] = {}
        self._penalty_until: dict[tuple[Hashable, str], float] = {}

    def check(self, key: Hashable, group: str) -> Decision:
        """Count one request for ``key`` in ``group`` and say whether it may proceed."""
        config = self._config()
        if not config.rate_limits_enabled:
            return Decision(True, {})
        limit = config.rate_limits[group]
        window = config.rate_window
        now = self._clock()
        slot = (key, group)
        with self._lock:
            hits = self._windows.setdefault(slot, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            penalised = self._penalty_until.get(slot, 0.0) > now
            if penalised or len(hits) >= limit:
                self._penalty_until[slot] = now + config.rate_penalty
                retry = max(1, math.ceil(config.rate_penalty))
                return Decision(False, self._headers(group, limit, 0, window), retry)
            hits.append(now)
            remaining = limit - len(hits)
        return Decision(True, self._headers(group, limit, remaining, window))

    @staticmethod
    def _headers(group: str, limit: int, remaining: int, window: float) -> dict[str, str]:
        # RingCentral's own example uses the lower-case group name.
        return {
            "X-Rate-Limit-Group": group.lower(),
            "X-Rate-Limit-Limit": str(limit),
            "X-Rate-Limit-Remaining": str(remaining),
            "X-Rate-Limit-Window": str(int(window)),
        }

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
            self._penalty_until.clear()
