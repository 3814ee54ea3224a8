"""Settling sends whose outcome is unknown, from RingCentral's message store.

A message is `unknown` when its request may have reached RingCentral but no answer came back
(the connection dropped after the body went out, or the worker died mid-send). It is never sent
again blindly: `reconcile_all` lists each RingCentral user's outbound messages since the
earliest such attempt and looks for each unknown message among them (`match_sent`); found, it
is `sent`; still missing after a grace period, it is queued again (messaging/outbox/states.py
`reconcile` decides).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from messaging.links.tokens import client_for
from messaging.models import OutboundMessage
from messaging.outbox import states
from messaging.ringcentral import errors, limits
from messaging.ringcentral.records import MessageRecord
from messaging.sending import ratelimit

log = logging.getLogger(__name__)


def reconcile_all() -> dict[str, int]:
    """Settle every unknown outcome that can be settled now; counts by resulting status.

    One listing per RingCentral user covers all of its unknown messages: one Light-group grant
    from the shared limiter per listing (more than one page is rare), and a user whose budget
    is used up waits for the next run. Each message is matched to a record no other message has.
    """
    counts: Counter[str] = Counter()
    by_connection = defaultdict(list)
    for message in states.unknown_messages():
        by_connection[message.connection_id].append(message)
    if not by_connection:
        return {}
    limiter = ratelimit.get_limiter()
    for group in by_connection.values():
        connection = group[0].connection
        key = ratelimit.key_for(connection, limits.READ_GROUP)
        if limiter.try_acquire([key]) > 0:
            counts["waiting"] += len(group)
            continue
        since = min(search_start(m) for m in group)
        try:
            records = list(client_for(connection).sent_since(since))
        except errors.RateLimited as exc:
            limiter.pause(key, exc.retry_after)
            counts["waiting"] += len(group)
            continue
        except errors.RingCentralError as exc:
            log.warning("Reconciling for connection %s failed: %s", connection.pk, exc)
            counts["error"] += len(group)
            continue
        taken = set(
            OutboundMessage.objects.filter(
                connection=connection, rc_message_id__in=[r.id for r in records]
            ).values_list("rc_message_id", flat=True)
        )
        for message in group:
            found = match_sent(message, records, exclude_ids=taken)
            if found is not None:
                taken.add(found.id)
            status = states.reconcile(message, states.Accepted.of(found) if found else None)
            counts[str(status)] += 1
    return dict(counts)


def reconcile_margin() -> timedelta:
    """How far before an attempt the message store is searched: RingCentral's clock and ours
    differ, and it stamps the message when it stores it."""
    return timedelta(seconds=settings.OUTBOX_RECONCILE_MARGIN)


def search_start(message) -> datetime:
    """Where the message store is searched from for `message`."""
    return (message.sending_since or message.created_at) - reconcile_margin()


def match_sent(message, records, *, exclude_ids=frozenset()) -> MessageRecord | None:
    """The record among `records` that is `message`: same sender, the same recipients as a set,
    the same text and as many files (MmsAttachment entries), created no earlier than
    `search_start(message)`; ids in `exclude_ids` are skipped. Of several, the earliest: later
    ones are the user's own repeats of the same text.
    """
    wanted = _Fingerprint.of_message(message)
    since = search_start(message)
    matches = [
        record
        for record in records
        if record.id not in exclude_ids
        and (record.created_at is None or record.created_at >= since)
        and wanted.matches(record)
    ]
    if not matches:
        return None
    return min(matches, key=lambda r: (r.created_at is None, r.created_at or since, r.id))


@dataclass(frozen=True)
class _Fingerprint:
    """What identifies a message in the store when its id is not known."""

    from_number: str
    recipients: frozenset[str]
    text: str
    attachment_count: int

    @classmethod
    def of_message(cls, message) -> _Fingerprint:
        return cls(
            from_number=message.from_number,
            recipients=frozenset(message.recipients.values_list("phone_number", flat=True)),
            text=_normal_text(message.text),
            attachment_count=message.attachments.count(),
        )

    def matches(self, record: MessageRecord) -> bool:
        return (
            record.from_number == self.from_number
            and frozenset(record.recipient_statuses) == self.recipients
            and _normal_text(record.text) == self.text
            and len(record.files) == self.attachment_count
        )


def _normal_text(text: str) -> str:
    # Line endings and surrounding blanks are the only differences a store could introduce.
    return (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()
