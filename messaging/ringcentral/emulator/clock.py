"""Emulator time: a replaceable source of epoch seconds plus an offset that tests move forward."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime


class Clock:
    """``now() == base() + offset``.

    Replacing ``base`` resets the offset, so a test that installs a fake clock gets exactly the
    values it returns until it calls ``advance``.
    """

    def __init__(self, base: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._base = base
        self._offset = 0.0

    @property
    def base(self) -> Callable[[], float]:
        return self._base

    @base.setter
    def base(self, base: Callable[[], float]) -> None:
        with self._lock:
            self._base = base
            self._offset = 0.0

    def now(self) -> float:
        with self._lock:
            return float(self._base()) + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds


class Scheduler:
    """Actions due at emulator times; ``Emulator.tick`` runs those that are due, in due order.

    An action runs at the first tick at or after its time, so the clock may be past it then.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._heap: list[tuple[float, int, Callable[[], object]]] = []
        self._order = itertools.count()

    def at(self, when: float, action: Callable[[], object]) -> None:
        with self._lock:
            heapq.heappush(self._heap, (when, next(self._order), action))

    def pop_due(self, now: float) -> list[Callable[[], object]]:
        due = []
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                due.append(heapq.heappop(self._heap)[2])
        return due

    def __len__(self) -> int:
        with self._lock:
            return len(self._heap)

    def clear(self) -> None:
        with self._lock:
            self._heap.clear()


def iso(ts: float) -> str:
    """RingCentral's timestamp format: UTC, milliseconds, ``Z`` suffix."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> float:
    """Epoch seconds from an ISO 8601 date-time; a value without zone is taken as UTC.

    Raises ``ValueError`` for anything else.
    """
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
