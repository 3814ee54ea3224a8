"""Emulator time: a replaceable source of epoch seconds plus an offset that tests move forward."""

from __future__ import annotations

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
