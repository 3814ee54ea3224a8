"""What arrived on the wire, for assertions: one immutable entry per request, thread-safe.

Outcomes:
    ``accepted``        the request was answered with 2xx/3xx (``message_id`` set for sends)
    ``rejected``        answered with an error (``error_code`` set)
    ``rate_limited``    answered 429 by the rate limiter or a ``rate_limit`` fault
    ``dropped_before``  socket closed without storing or answering (fault)
    ``dropped_after``   message stored, then socket closed without answering (fault)
    ``stalled``         the client went away during a ``stall`` fault; nothing was stored
A stall that runs to its end keeps the outcome of the answer it finally wrote, with
``fault == "stall"``.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from .multipart import header_value

REDACTED = "[redacted]"

# Form fields whose values are credentials; the journal keeps the name, never the value.
SECRET_FORM_FIELDS = frozenset(
    {"code", "code_verifier", "refresh_token", "client_secret", "client_assertion", "token"}
)


def redact_headers(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Headers as received; the credential part of ``Authorization`` is replaced."""
    result: dict[str, str] = {}
    for name, value in pairs:
        if name.lower() == "authorization":
            scheme = value.split(" ", 1)[0] if value else ""
            value = f"{scheme} {REDACTED}".strip()
        result[name] = value
    return result


def redact_form(form: dict[str, list[str]]) -> dict[str, list[str]]:
    return {
        name: [REDACTED] * len(values) if name in SECRET_FORM_FIELDS else list(values)
        for name, values in form.items()
    }


@dataclass(frozen=True)
class PartRecord:
    """One multipart part: its headers as sent, byte size and sha256 of its body."""

    headers: dict[str, str]
    size: int
    sha256: str

    def header(self, name: str) -> str | None:
        return header_value(self.headers.items(), name)


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    time: float
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    content_type: str | None
    body_size: int
    status: int | None
    outcome: str
    error_code: str | None = None
    message_id: int | None = None
    fault: str | None = None
    json: Any = None
    form: dict[str, list[str]] | None = None
    parts: tuple[PartRecord, ...] | None = None
    parse_error: str | None = None
    extension_id: int | None = None
    client_id: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def header(self, name: str) -> str | None:
        return header_value(self.headers.items(), name)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["parts"] = None if self.parts is None else [asdict(p) for p in self.parts]
        data["notes"] = list(self.notes)
        return data


class Journal:
    """Entries in arrival order; the oldest are forgotten beyond ``max_entries``."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._entries: list[JournalEntry] = []
        self._seq = 0
        self.max_entries = max_entries

    def next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def add(self, entry: JournalEntry) -> None:
        """Insert ``entry`` by ``seq``, replacing an entry with the same ``seq`` (a correction)."""
        with self._lock:
            index = len(self._entries)
            while index and self._entries[index - 1].seq > entry.seq:
                index -= 1
            if index and self._entries[index - 1].seq == entry.seq:
                self._entries[index - 1] = entry
            else:
                self._entries.insert(index, entry)
            if len(self._entries) > self.max_entries:
                del self._entries[: len(self._entries) - self.max_entries]

    def entries(self, path_contains: str | None = None) -> list[JournalEntry]:
        with self._lock:
            items = list(self._entries)
        if path_contains is not None:
            items = [e for e in items if path_contains in e.path]
        return items

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
