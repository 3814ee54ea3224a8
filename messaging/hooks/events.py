"""Events for outgoing webhooks: what each one says and what brings it.

The rooms below announce changes through signals (connected in `MessagingConfig.ready`):

    outbox.signals.message_status_changed   -> message.sent, message.delivered, message.failed
    inbox.signals.message_received          -> message.received
    inbox.signals.conversation_assigned     -> conversation.assigned
    consent.signals.consent_changed         -> contact.opted_out
    campaign_finished(campaign)             -> campaign.finished (called by the campaigns room)

Some of these are on the send path, so each receiver first asks `endpoints.events_of` (one
cache read) whether the team has an endpoint for the event, and does nothing else when not.
The payload is read and the deliveries created after the change commits, never inside it.

Every payload is `{"type": …, "timestamp": ISO 8601, "data": {…}}`; the fields of `data` per
type are listed in the README ("Outgoing webhooks").
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from messaging.hooks import delivery, endpoints, tasks
from messaging.models import (
    TEST_EVENT,
    ConsentState,
    Conversation,
    ConversationMessage,
    HookEvent,
    MessageStatus,
    OutboundMessage,
    WebhookDelivery,
    WebhookEndpoint,
)

log = logging.getLogger(__name__)

_STATUS_EVENTS = {
    MessageStatus.SENT: HookEvent.MESSAGE_SENT,
    MessageStatus.DELIVERED: HookEvent.MESSAGE_DELIVERED,
    MessageStatus.FAILED: HookEvent.MESSAGE_FAILED,
    MessageStatus.DELIVERY_FAILED: HookEvent.MESSAGE_FAILED,
    MessageStatus.SENDING_FAILED: HookEvent.MESSAGE_FAILED,
}


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def envelope(event_type: str, data: dict) -> dict:
    return {"type": str(event_type), "timestamp": _iso(timezone.now()), "data": data}


def publish(team_id: int, event_type: str, data: dict) -> list[WebhookDelivery]:
    """One delivery per enabled endpoint of the team that picked `event_type`, handed to a
    worker after commit."""
    targets = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(team_id=team_id, is_active=True)
        if event_type in endpoint.events
    ]
    if not targets:
        return []
    payload = envelope(event_type, data)
    with transaction.atomic():
        created = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(
                endpoint=endpoint,
                event_id=delivery.new_event_id(),
                event_type=event_type,
                payload=payload,
            )
            for endpoint in targets
        )
        tasks.send_soon(d.pk for d in created)
    return created


def send_test(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A `webhook.test` event for this endpoint alone (the "Send test event" button)."""
    data = {"endpoint_id": endpoint.pk, "message": "A test event from mmsportal."}
    with transaction.atomic():
        test = WebhookDelivery.objects.create(
            endpoint=endpoint,
            event_id=delivery.new_event_id(),
            event_type=TEST_EVENT,
            payload=envelope(TEST_EVENT, data),
        )
        tasks.send_soon([test.pk])
    return test


def redeliver(found: WebhookDelivery) -> None:
    with transaction.atomic():
        delivery.redeliver(found)
        tasks.send_soon([found.pk])


def _after_commit(team_id: int, event_type: str, build, *, send_path: bool = False) -> None:
    """Publish `build()`'s data once the change commits, when the team listens for it.

    A team known (from the cache) to have no endpoint for the event costs nothing more. When
    the cache does not know (expired, or just invalidated), the table is read at once, or, on
    the send path (`send_path`), only after the commit, so that sending a message never waits
    for it inside its own statements."""
    known = endpoints.cached_events_of(team_id) if send_path else endpoints.events_of(team_id)
    if known is not None and event_type not in known:
        return

    def run():
        if event_type not in endpoints.events_of(team_id):
            return
        data = build()
        if data is not None:
            publish(team_id, event_type, data)

    transaction.on_commit(run, robust=True)


# Payloads ----------------------------------------------------------------------------------


def message_data(message_id: int) -> dict | None:
    message = (
        OutboundMessage.objects.select_related("created_by")
        .prefetch_related("recipients")
        .filter(pk=message_id)
        .first()
    )
    if message is None:
        return None
    return {
        "message_id": message.pk,
        "status": message.status,
        "from": message.from_number,
        "to": [r.phone_number for r in message.recipients.all()],
        "recipients": [
            {
                "number": r.phone_number,
                "status": r.status,
                "error_code": r.error_code,
                "reason": r.error_reason,
            }
            for r in message.recipients.all()
        ],
        "error_code": message.error_code,
        "reason": message.error_reason,
        "ringcentral_message_id": message.rc_message_id or None,
        "created_by": message.created_by.email if message.created_by else None,
        "created_at": _iso(message.created_at),
        "sent_at": _iso(message.sent_at),
    }


def received_data(entry_id: int) -> dict | None:
    entry = ConversationMessage.objects.filter(pk=entry_id).first()
    if entry is None:
        return None
    return {
        "conversation_id": entry.conversation_id,
        "message_id": entry.pk,
        "from": entry.from_number,
        "to": list(entry.to_numbers),
        "text": entry.text,
        "file_count": entry.file_count,
        "received_at": _iso(entry.at),
        "ringcentral_message_id": entry.rc_message_id,
    }


def assigned_data(conversation_id: int, by_email: str | None) -> dict | None:
    conversation = (
        Conversation.objects.select_related("assignee").filter(pk=conversation_id).first()
    )
    if conversation is None:
        return None
    assignee = conversation.assignee
    return {
        "conversation_id": conversation.pk,
        "contact_numbers": list(conversation.contact_numbers),
        "team_number": conversation.team_number,
        "assignee": {"id": assignee.pk, "email": assignee.email} if assignee else None,
        "assigned_by": by_email,
    }


# Receivers ---------------------------------------------------------------------------------


def on_message_status_changed(sender, message_id, team_id, status, **kwargs) -> None:
    event_type = _STATUS_EVENTS.get(status)
    if event_type is not None:
        _after_commit(team_id, event_type, lambda: message_data(message_id), send_path=True)


def on_message_received(sender, message, conversation, **kwargs) -> None:
    _after_commit(
        conversation.team_id, HookEvent.MESSAGE_RECEIVED, lambda: received_data(message.pk)
    )


def on_conversation_assigned(sender, conversation, by=None, **kwargs) -> None:
    by_email = getattr(by, "email", None)
    _after_commit(
        conversation.team_id,
        HookEvent.CONVERSATION_ASSIGNED,
        lambda: assigned_data(conversation.pk, by_email),
    )


def on_consent_changed(sender, record, **kwargs) -> None:
    if record.state != ConsentState.OPTED_OUT:
        return
    data = {
        "number": record.contact_number,
        "from_number": None if record.from_number == "*" else record.from_number,
        "source": record.source,
        "changed_at": _iso(record.changed_at),
        "note": record.note,
    }
    _after_commit(record.team_id, HookEvent.CONTACT_OPTED_OUT, lambda: data)


def campaign_finished(campaign) -> None:
    """campaign.finished for `campaign` (the campaigns room calls or signals this)."""
    data = {
        "campaign_id": campaign.pk,
        "name": getattr(campaign, "name", ""),
        "status": getattr(campaign, "status", "finished"),
        "finished_at": _iso(getattr(campaign, "finished_at", None) or timezone.now()),
    }
    _after_commit(campaign.team_id, HookEvent.CAMPAIGN_FINISHED, lambda: data)


def on_campaign_finished(sender, campaign, **kwargs) -> None:
    """For `messaging.campaigns.signals.campaign_finished` (connected in MessagingConfig.ready)."""
    campaign_finished(campaign)
