"""Consent: the account's SMS consent list, changed by keywords and by the consent API.

RingCentral keeps opt-outs per (sender number, recipient number): a later send from that number
to that contact is accepted and ends SendingFailed with SMS-RC-413, until the contact texts an
opt-in keyword or an opt-in is written through ``PATCH /restapi/v2/accounts/~/sms/consents``.
A record whose sender is ``"*"`` covers every number of the account. Keywords are matched on
the whole message, trimmed, in any case.

RingCentral's developer guide lists keywords only for High Volume SMS; the emulator uses those
plus STOPALL (the carriers' common list) for both kinds of number.

Every record is kept once it exists (an opt-in stays listed as ``OptIn``), with the time it
last changed, as ``GET …/sms/consents`` lists them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

OPT_OUT = "OptOut"
OPT_IN = "OptIn"
EVERY_NUMBER = "*"
SOURCES = ("Recipient", "Api", "Upstream", "Carrier")

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "SUBSCRIBE", "RESUME", "CONTINUE"})


def keyword(text: str) -> str | None:
    """``"OptOut"``, ``"OptIn"`` or None for an inbound text."""
    word = text.strip().upper()
    if word in OPT_OUT_WORDS:
        return OPT_OUT
    if word in OPT_IN_WORDS:
        return OPT_IN
    return None


@dataclass(frozen=True)
class ConsentEntry:
    """One record of an account's consent list."""

    account_id: str
    from_number: str  # a number of the account, or "*"
    to_number: str
    opt_status: str  # OptOut | OptIn
    source: str  # Recipient | Api | Upstream | Carrier
    modified_at: float

    @property
    def coverage(self) -> str:
        return "Account" if self.from_number == EVERY_NUMBER else "PhoneNumber"

    def to_json(self, iso) -> dict:
        return {
            "from": self.from_number,
            "to": self.to_number,
            "optStatus": self.opt_status,
            "source": self.source,
            "coverage": self.coverage,
            "lastModifiedTime": iso(self.modified_at),
        }


class OptOuts:
    """Every account's consent list, thread-safe: (account, from, to) -> ConsentEntry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, str], ConsentEntry] = {}

    def set(
        self,
        account_id: str,
        from_number: str,
        to_number: str,
        opt_status: str,
        source: str,
        at: float,
    ) -> ConsentEntry | None:
        """Record a state; the new entry, or None when the pair already had that state."""
        key = (account_id, from_number, to_number)
        with self._lock:
            current = self._entries.get(key)
            if current is not None and current.opt_status == opt_status:
                return None
            entry = ConsentEntry(account_id, from_number, to_number, opt_status, source, at)
            self._entries[key] = entry
            return entry

    def opted_out(self, from_number: str, to_number: str, account_id: str | None = None) -> bool:
        """Whether the pair is opted out: of its own record and the account's ``"*"`` record,
        the one changed last decides (a START to one number lifts an account-wide opt-out for
        that number; an account-wide opt-in lifts a number's)."""
        with self._lock:
            applying = [
                entry
                for (account, sender, to), entry in self._entries.items()
                if to == to_number
                and (
                    sender == from_number
                    or (sender == EVERY_NUMBER and account_id is not None and account == account_id)
                )
            ]
        if not applying:
            return False
        latest = max(applying, key=lambda e: (e.modified_at, e.from_number != EVERY_NUMBER))
        return latest.opt_status == OPT_OUT

    def entries(self, account_id: str) -> list[ConsentEntry]:
        """The account's records, oldest change first."""
        with self._lock:
            found = [e for e in self._entries.values() if e.account_id == account_id]
        return sorted(found, key=lambda e: (e.modified_at, e.from_number, e.to_number))

    def pairs(self) -> list[tuple[str, str, float]]:
        """The opted-out pairs of every account: (from, to, since)."""
        with self._lock:
            return [
                (e.from_number, e.to_number, e.modified_at)
                for e in self._entries.values()
                if e.opt_status == OPT_OUT
            ]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
