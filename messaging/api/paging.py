"""Cursors of the API's lists: opaque strings over the keysets the pages already use."""

from __future__ import annotations

import base64
import json

from messaging.api.problems import Problem

MAX_ID = 2**63 - 1


def bad_cursor() -> Problem:
    return Problem(
        400,
        "The cursor is not valid; start again without one.",
        code="validation",
        errors={"cursor": ["Use the `next` value of an earlier page, unchanged."]},
    )


def encode_name_cursor(name: str, pk: int) -> str:
    raw = json.dumps([name, pk], ensure_ascii=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_name_cursor(value: str) -> tuple[str, int]:
    """(name, id) of a contacts cursor."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        name, pk = json.loads(raw)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise bad_cursor() from None
    if not isinstance(name, str) or "\x00" in name or not isinstance(pk, int):
        raise bad_cursor()
    if isinstance(pk, bool) or not 0 < pk <= MAX_ID:
        raise bad_cursor()
    return name, pk


def decode_id_cursor(value: str) -> int:
    """An id cursor (pages in id order, newest first)."""
    if not value.isascii() or not value.isdigit() or not 0 < int(value) <= MAX_ID:
        raise bad_cursor()
    return int(value)


def encode_pair_cursor(first: int, pk: int) -> str:
    """A cursor over (a position, id) order, such as a campaign report's rows."""
    return f"{first}.{pk}"


def decode_pair_cursor(value: str) -> tuple[int, int]:
    first, dot, pk = value.partition(".")
    parts = (first, pk)
    if not dot or not all(p.isascii() and p.isdigit() and int(p) <= MAX_ID for p in parts):
        raise bad_cursor()
    return int(first), int(pk)
