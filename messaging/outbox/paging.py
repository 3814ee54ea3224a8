"""Pages of messages, newest first, addressed by a keyset cursor (stable while rows arrive)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Q

from messaging.models import OutboundMessage

PAGE_SIZE = 50
# The largest id a (64-bit) primary key can hold; bigger numbers name nothing.
MAX_ID = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class BadCursor(ValueError):
    """A page link that was edited or is not ours."""


def encode_cursor(message: OutboundMessage) -> str:
    """The position just past `message` in (created_at, id) order, exact to the microsecond."""
    return f"{(message.created_at - _EPOCH) // _MICROSECOND}.{message.pk}"


def decode_cursor(value: str) -> tuple[datetime, int]:
    try:
        micros, pk = value.split(".")
        created_at, pk = _EPOCH + int(micros) * _MICROSECOND, int(pk)
    except (ValueError, OverflowError):
        raise BadCursor(value) from None
    if not 0 < pk <= MAX_ID:
        raise BadCursor(value)
    return created_at, pk


@dataclass
class Page:
    rows: list
    older: str | None  # cursor for the next (older) page, None on the last one
    newer: str | None  # cursor for the previous (newer) page, None on the first one


def keyset_page(queryset, *, after: str | None = None, before: str | None = None) -> Page:
    """One page of `queryset`, newest first, after (older than) or before (newer than) a cursor.

    The redundant `created_at <=` / `>=` bound lets the database seek straight into the
    (team, …, created_at) indexes; the OR breaks ties between messages created in the same
    microsecond by id, so each row is on exactly one page.
    """
    if before:
        created_at, pk = decode_cursor(before)
        rows = list(
            queryset.filter(created_at__gte=created_at)
            .filter(Q(created_at__gt=created_at) | Q(created_at=created_at, pk__gt=pk))
            .order_by("created_at", "pk")[: PAGE_SIZE + 1]
        )
        more_newer = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE][::-1]
        return Page(
            rows=rows,
            older=encode_cursor(rows[-1]) if rows else None,
            newer=encode_cursor(rows[0]) if rows and more_newer else None,
        )
    if after:
        created_at, pk = decode_cursor(after)
        queryset = queryset.filter(created_at__lte=created_at).filter(
            Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk)
        )
    rows = list(queryset.order_by("-created_at", "-pk")[: PAGE_SIZE + 1])
    more_older = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return Page(
        rows=rows,
        older=encode_cursor(rows[-1]) if rows and more_older else None,
        newer=encode_cursor(rows[0]) if rows and after else None,
    )


def newer_than(queryset, cursor: str, limit: int = PAGE_SIZE) -> list:
    """Up to `limit` rows of `queryset` newer than `cursor`, newest first (what arrived above
    the top row of a page)."""
    created_at, pk = decode_cursor(cursor)
    newer = queryset.filter(created_at__gte=created_at).filter(
        Q(created_at__gt=created_at) | Q(created_at=created_at, pk__gt=pk)
    )
    return list(newer.order_by("-created_at", "-pk")[:limit])
