"""Helpers for the delivery-tracking tests: a linked RingCentral user on the emulator, messages
sent to it over HTTP and recorded by the outbox, and one clock for both sides.

Messages are sent the way the send pipeline does it (claim, POST /sms to the emulator, record
the acceptance), so the emulator holds real records to be read back.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from messaging.links import connections
from messaging.links.tokens import client_for
from messaging.models import OutboundMessage, SenderNumber
from messaging.outbox import states as outbox
from tests.factories import make_message
from tests.rc_fixtures import NUMBER_SMS_MMS, journal, link_directly

STORE = "/message-store/"
# Aligned to every step of the tracking schedule (6 h), so expected check times are round.
GRID = 6 * 3600


class Timeline:
    """The emulator's clock frozen at `t0` and moved only by `at()`; `at()` also returns the
    same moment as a datetime for the portal's side (`now=` arguments)."""

    def __init__(self, emu, t0: float | None = None):
        self.emu = emu
        self.t0 = t0 if t0 is not None else math.ceil(time.time() / GRID) * GRID
        self.offset = 0.0
        emu.clock = lambda: self.t0

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.t0, UTC)

    def at(self, seconds: float) -> datetime:
        if seconds > self.offset:
            self.emu.advance(seconds - self.offset)
            self.offset = seconds
        return self.start + timedelta(seconds=seconds)


def link_sender(emulator, team, user, extension):
    """A linked connection with its numbers synced; returns (connection, SMS+MMS number)."""
    connection = link_directly(emulator, team, user, extension)
    connections.sync_numbers(connection)
    return connection, SenderNumber.objects.get(connection=connection, phone_number=NUMBER_SMS_MMS)


def send(emulator, number, user, to, *, text="Your appointment is tomorrow at 10.", timeline=None):
    """Send one message (one POST /sms, a group if several numbers) and record it as accepted.

    With a `timeline`, the message's `sent_at` is the timeline's current moment (the moment the
    emulator stored it), so the portal's and the emulator's ages agree exactly.
    """
    message = make_message(number, user, to=tuple(to), text=text)
    claimed, attempt = outbox.claim(message.pk)
    # Through the client so that an access token the emulator's clock has expired is refreshed.
    body = client_for(number.connection)._json(
        "POST",
        "/restapi/v1.0/account/~/extension/~/sms",
        json={
            "from": {"phoneNumber": number.phone_number},
            "to": [{"phoneNumber": n} for n in to],
            "text": text,
        },
    )
    accepted = outbox.Accepted(
        rc_message_id=str(body["id"]),
        conversation_id=body["conversation"]["id"],
        recipient_statuses={r["phoneNumber"]: r["messageStatus"] for r in body["to"]},
    )
    assert outbox.record_success(claimed, attempt, accepted)
    if timeline is not None:
        OutboundMessage.objects.filter(pk=message.pk).update(
            sent_at=timeline.start + timedelta(seconds=timeline.offset)
        )
    message.refresh_from_db()
    return message


def store_reads(emu) -> list:
    """Answered GETs of the message store (bulk or single reads), in order. A 401 that made the
    client refresh its token and ask again is not a read."""
    return [
        e
        for e in journal(emu, STORE)
        if e.method == "GET" and "/content/" not in e.path and e.status != 401
    ]


def ids_in(entry) -> list[str]:
    return entry.path.rsplit("/", 1)[-1].split(",")


@pytest.fixture
def fresh_limits():
    """The shared rate limiter keeps its state in Redis when the broker is Redis; every emulator
    uses the same account and extension ids, so earlier tests' grants would count here."""
    url = settings.CELERY_BROKER_URL or ""
    if url.startswith(("redis://", "rediss://")):
        from messaging.sending.ratelimit import RedisRateLimiter, _redis_client

        client = _redis_client(url)
        keys = list(client.scan_iter(match=f"{RedisRateLimiter.DEFAULT_PREFIX}*", count=1000))
        if keys:
            client.delete(*keys)
    yield
