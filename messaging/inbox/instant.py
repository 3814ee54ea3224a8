"""Instant-message webhook deliveries: a received message in the body, stored at once.

The webhook endpoint (messaging/tracking/views.py) verifies the delivery; tracking hands the
instant ones to `receive` (registered in MessagingConfig.ready). Storing takes a few queries, so
the endpoint still answers RingCentral within its time; a sync is asked for as well, which
brings anything the webhook missed and confirms what it brought.
"""

from __future__ import annotations

import logging

from messaging.inbox.storing import store_record
from messaging.inbox.sync import request_sync, sync_is_possible
from messaging.models import MessageSource, RingCentralConnection
from messaging.ringcentral import errors
from messaging.ringcentral.records import parse_message

log = logging.getLogger(__name__)


def receive(connection_id: int, body) -> str:
    """Store the message of one verified instant delivery; returns what happened."""
    connection = (
        RingCentralConnection.objects.select_related("team").filter(pk=connection_id).first()
    )
    if connection is None:
        return "no connection"
    request_sync(connection_id)
    try:
        record = parse_message(body)
    except errors.UnexpectedResponse:
        log.warning("Instant delivery for connection %s carried no message", connection_id)
        return "no message"
    if record.direction and record.direction != "Inbound":
        return "not inbound"
    stored = store_record(connection, record, source=MessageSource.WEBHOOK)
    return "stored" if stored.created else (stored.skipped or "known")


def changes_announced(connection_id: int) -> bool:
    """A verified notification that the connection's messages changed: sync them now, which
    brings every change in one request (tracking reads them itself when this answers False)."""
    if not sync_is_possible(connection_id):
        return False
    return request_sync(connection_id)
