"""Scripted failures, consumed one matching request at a time in the order they were injected.

Kinds:
    ``status``       answer ``status`` with RingCentral's error JSON (503 on a send: MSG-290)
    ``stall``        wait ``seconds`` (real time) before answering; a send is stored only if the
                     client is still there when the wait ends
    ``drop_before``  read the request, then close the socket: nothing stored, nothing answered
    ``drop_after``   process the request (a send is stored), then close without answering
    ``rate_limit``   answer 429 CMN-301; with ``retry_after`` a ``Retry-After`` header, without it
                     none (and never ``X-Rate-Limit-*``: it imitates a limit above the user level)
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Any

KINDS = ("status", "stall", "drop_before", "drop_after", "rate_limit")


@dataclass
class Fault:
    kind: str
    path_contains: str | None = None
    count: int = 1
    status: int = 503
    seconds: float = 5.0
    retry_after: int | None = None
    error_code: str | None = None
    method: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")
        if not isinstance(self.count, int) or self.count < 1:
            raise ValueError("count must be a positive integer")
        if self.kind == "status" and not 400 <= self.status <= 599:
            raise ValueError("a status fault needs a 4xx or 5xx status")
        if self.seconds < 0:
            raise ValueError("seconds must not be negative")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("retry_after must not be negative")
        if self.method is not None:
            self.method = self.method.upper()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        if "kind" not in data:
            raise ValueError("kind is required")
        return cls(**data)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return self.path_contains is None or self.path_contains in path


class FaultBook:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[list[Any]] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._pending.append([fault, fault.count])

    def take(self, method: str, path: str) -> Fault | None:
        """The first pending fault matching the request, with one of its uses consumed."""
        with self._lock:
            for slot in self._pending:
                fault, remaining = slot
                if fault.matches(method, path):
                    if remaining <= 1:
                        self._pending.remove(slot)
                    else:
                        slot[1] = remaining - 1
                    return fault
        return None

    def pending(self) -> list[tuple[Fault, int]]:
        with self._lock:
            return [(fault, remaining) for fault, remaining in self._pending]

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
