"""Opt-outs by keyword: a contact who texts STOP to a number is opted out for that pair.

RingCentral keeps opt-outs per (sender number, recipient number): a later send from that number
to that contact is accepted and ends SendingFailed with SMS-RC-413, until the contact texts an
opt-in keyword. Keywords are matched on the whole message, trimmed, in any case.

RingCentral's developer guide lists keywords only for High Volume SMS; the emulator uses those
plus STOPALL (the carriers' common list) for both kinds of number.
"""

from __future__ import annotations

import threading

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "SUBSCRIBE", "RESUME", "CONTINUE"})


def keyword(text: str) -> str | None:
    """``"OptOut"``, ``"OptIn"`` or None for an inbound text."""
    word = text.strip().upper()
    if word in OPT_OUT_WORDS:
        return "OptOut"
    if word in OPT_IN_WORDS:
        return "OptIn"
    return None


class OptOuts:
    """The opted-out pairs, thread-safe: (our number, the contact's number) -> since when."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pairs: dict[tuple[str, str], float] = {}

    def opt_out(self, from_number: str, to_number: str, at: float) -> None:
        with self._lock:
            self._pairs.setdefault((from_number, to_number), at)

    def opt_in(self, from_number: str, to_number: str) -> None:
        with self._lock:
            self._pairs.pop((from_number, to_number), None)

    def opted_out(self, from_number: str, to_number: str) -> bool:
        with self._lock:
            return (from_number, to_number) in self._pairs

    def pairs(self) -> list[tuple[str, str, float]]:
        with self._lock:
            return [(f, t, at) for (f, t), at in self._pairs.items()]

    def clear(self) -> None:
        with self._lock:
            self._pairs.clear()
