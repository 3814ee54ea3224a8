"""Running a campaign: start, pause, resume, cancel, and the feeder that paces it.

The feeder (``feed``, run by beat every few seconds and at once on start and resume) never
floods the send queue. For each sender number it releases only as many recipients as the
shared rate limiter can grant before the next short window ends
(``CAMPAIGN_RELEASE_WINDOW_SECONDS``: what is free now and what frees by then,
``ratelimit.usage_after``), minus the messages already waiting to be sent for that RingCentral
user and that number; while one of the user's own messages (not
a campaign's) waits, only what is free right now. So the queue in front of a person's direct
message or reply is at most one short window long, whatever the size of the campaign,
and no campaign message released later takes a slot before it: it goes ahead at the next free
slot. Numbers share their user's budget (the Medium group), each at
most its own (50 per minute). Each released recipient becomes an OutboundMessage created the
way compose creates one and handed to the outbox (``states.enqueue``), so the consent check at
send time, the limiter, retries and delivery tracking all apply.

Why nothing is released twice: releasing happens under a lock of the campaign's row, moving
recipients from ``pending`` to ``released`` in the transaction that creates their messages.
Why nothing is lost: a recipient is either still pending (released by a later feed), released
with its message in the outbox (whose state machine owns it from there), skipped or canceled.

A campaign stops itself (status ``stopped``, with the reason and what to do) when a carrier
reports its daily cap (``SMS-CAR-450/451/452``), after a run of failures in a row
(``CAMPAIGN_STOP_AFTER_FAILURES``), or when the RingCentral link of a sender stops working.
Resuming it starts again where it stopped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from messaging.campaigns import batches, preflight, signals
from messaging.consent import quiet_hours, team_settings
from messaging.models import (
    Attachment,
    Campaign,
    CampaignRecipient,
    CampaignStatus,
    ConnectionStatus,
    ConversationMessage,
    Direction,
    MessageStatus,
    OutboundMessage,
    Recipient,
    RecipientState,
    RingCentralConnection,
)
from messaging.outbox import delivery_errors, states
from messaging.outbox import signals as outbox_signals
from messaging.ringcentral import limits
from messaging.sending import ratelimit

log = logging.getLogger(__name__)

# Messages that are still to be sent: they count against the room the feeder may fill.
WAITING_STATUSES = [MessageStatus.QUEUED, MessageStatus.RETRY_WAIT, MessageStatus.SENDING]
# Still on their way: a campaign is done once none of its messages is in these.
UNSETTLED_STATUSES = [*WAITING_STATUSES, MessageStatus.UNKNOWN]
FAILED_STATUSES = [
    MessageStatus.FAILED,
    MessageStatus.SENDING_FAILED,
    MessageStatus.DELIVERY_FAILED,
]
# Messages created per statement when releasing, and at most per campaign in one round (one
# transaction; every message's hand-off waits for its commit).
RELEASE_CHUNK = 500
MAX_PER_ROUND = 2000
CAP_CODES = delivery_errors.codes_of(delivery_errors.Kind.CARRIER_LIMIT)


class CampaignRefused(Exception):
    """A person's action on a campaign cannot be done now; ``str(error)`` says why."""


# Hooks --------------------------------------------------------------------------------------------

_feed_soon = None


def register_feed_soon(function) -> None:
    """The tasks module registers how to feed a campaign in a worker (after a commit)."""
    global _feed_soon
    _feed_soon = function


def _after_commit_feed(campaign_id: int) -> None:
    if _feed_soon is not None:
        transaction.on_commit(lambda: _feed_soon(campaign_id), robust=True)


def _announce(campaign_id: int) -> None:
    signals.announce_finished(campaign_id)


# People's actions ---------------------------------------------------------------------------------


def start(campaign: Campaign, *, now: datetime | None = None) -> None:
    """Start a campaign that is not started yet; the feeder releases its first messages (or,
    through High Volume SMS, a worker sends its batches: messaging/campaigns/batches.py)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status != CampaignStatus.DRAFT:
            raise CampaignRefused(f"This campaign is {locked.get_status_display().lower()}.")
        preflight.mark_unsendable(locked)
        if not CampaignRecipient.objects.filter(
            campaign=locked, state=RecipientState.PENDING
        ).exists():
            raise CampaignRefused("No recipient is left to send to: every one is skipped.")
        Campaign.objects.filter(pk=locked.pk).update(
            status=CampaignStatus.RUNNING, started_at=now, resumed_at=now
        )
        _after_commit_feed(locked.pk)
    campaign.refresh_from_db()


def pause(campaign: Campaign) -> None:
    if campaign.uses_high_volume and batches.batch_sent(campaign):
        raise CampaignRefused(batches.REFUSED_AFTER_SENDING)
    with transaction.atomic():
        won = Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.RUNNING).update(
            status=CampaignStatus.PAUSED
        )
    campaign.refresh_from_db()
    if not won:
        raise CampaignRefused(
            f"Only a running campaign can be paused; this one is {_state(campaign)}."
        )


def resume(campaign: Campaign, *, now: datetime | None = None) -> None:
    now = now or timezone.now()
    with transaction.atomic():
        won = Campaign.objects.filter(
            pk=campaign.pk, status__in=[CampaignStatus.PAUSED, CampaignStatus.STOPPED]
        ).update(status=CampaignStatus.RUNNING, stop_reason="", stop_fix="", resumed_at=now)
        if won:
            _after_commit_feed(campaign.pk)
    campaign.refresh_from_db()
    if not won:
        raise CampaignRefused(
            f"Only a paused or stopped campaign can be resumed; this one is {_state(campaign)}."
        )


def cancel(campaign: Campaign, *, now: datetime | None = None) -> int:
    """Cancel what is not sent yet: recipients not released, and released messages no worker
    has claimed (through the outbox's state machine). Returns the messages canceled."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status in (CampaignStatus.CANCELED, CampaignStatus.DONE):
            raise CampaignRefused(f"This campaign is {_state(locked)} already.")
        if (
            locked.uses_high_volume
            and batches.batch_sent(locked)
            and not CampaignRecipient.objects.filter(
                campaign=locked, state=RecipientState.PENDING
            ).exists()
        ):
            # Only recipients no batch carried (after a stop) can still be canceled.
            raise CampaignRefused(batches.REFUSED_AFTER_SENDING)
        Campaign.objects.filter(pk=locked.pk).update(
            status=CampaignStatus.CANCELED, finished_at=now
        )
        CampaignRecipient.objects.filter(campaign=locked, state=RecipientState.PENDING).update(
            state=RecipientState.CANCELED
        )
        waiting = OutboundMessage.objects.filter(
            campaign_recipient__campaign=locked,
            status__in=[MessageStatus.QUEUED, MessageStatus.RETRY_WAIT],
        ).only("pk")
        canceled = sum(1 for message in waiting if states.cancel(message))
        _announce(locked.pk)
    campaign.refresh_from_db()
    return canceled


def _state(campaign: Campaign) -> str:
    return campaign.get_status_display().lower()


# The feeder ---------------------------------------------------------------------------------------


def feed(now: datetime | None = None) -> int:
    """Release the next messages of every running campaign that is due; the number released."""
    now = now or timezone.now()
    due = Campaign.objects.filter(status=CampaignStatus.RUNNING).filter(
        Q(start_at__isnull=True) | Q(start_at__lte=now)
    )
    released = 0
    for campaign_id in due.values_list("pk", flat=True):
        try:
            released += feed_campaign(campaign_id, now=now)
        except Exception:
            log.exception("Feeding campaign %s failed; the next round tries again", campaign_id)
    return released


def feed_campaign(campaign_id: int, *, now: datetime | None = None) -> int:
    now = now or timezone.now()
    campaign = Campaign.objects.filter(pk=campaign_id, status=CampaignStatus.RUNNING).first()
    if campaign is None or (campaign.start_at and campaign.start_at > now):
        return 0
    if campaign.uses_high_volume:
        return batches.send(campaign_id, now=now)
    if stop_if_needed(campaign, now=now):
        return 0
    # The limiter is asked outside any transaction (its database backend locks rows).
    plan = room_by_number(campaign)
    with transaction.atomic():
        locked = (
            Campaign.objects.select_for_update()
            .filter(pk=campaign_id, status=CampaignStatus.RUNNING)
            .first()
        )
        if locked is None:
            return 0
        released = release(locked, plan, now=now)
    finish_if_done(campaign, now=now)
    return released


@dataclass(frozen=True)
class Room:
    """What one key may grant: now, and by the end of the next short window."""

    free: int  # budget not used in its current window
    soon: int  # what it can grant before the next short window ends (free now, and freed by then)


def key_room(limiter, key: ratelimit.LimitKey) -> Room:
    window = settings.CAMPAIGN_RELEASE_WINDOW_SECONDS
    if not limiter.enabled:
        rate = ratelimit.configured_rates()[key.group]
        return Room(free=rate.limit, soon=rate.limit)
    limit = limiter.current_limit(key)
    return Room(
        free=max(0, limit - limiter.usage(key)),
        soon=max(0, limit - limiter.usage_after(key, window)),
    )


def room_by_number(campaign: Campaign) -> dict:
    """For each usable sender number of the campaign, how many recipients to release now."""
    limiter = ratelimit.get_limiter()
    senders = list(
        campaign.senders.select_related("connection").filter(
            connection__status__in=RingCentralConnection.USABLE_STATUSES
        )
    )
    plan = {}
    user_left: dict[int, int] = {}
    for sender in senders:
        connection = sender.connection
        if connection.pk not in user_left:
            room = key_room(limiter, ratelimit.key_for(connection, limits.SEND_GROUP))
            waiting = OutboundMessage.objects.filter(
                connection__account_id=connection.account_id,
                connection__extension_id=connection.extension_id,
                status__in=WAITING_STATUSES,
            )
            if waiting.filter(campaign_recipient__isnull=True).exists():
                # A person's own message is waiting: only budget free right now, after every
                # waiting message, may be used; the next slot that frees is that message's.
                user_left[connection.pk] = room.free - waiting.count()
            else:
                user_left[connection.pk] = room.soon - waiting.count()
        number_room = key_room(limiter, ratelimit.LimitKey.for_number(sender.phone_number))
        waiting_here = OutboundMessage.objects.filter(
            from_number=sender.phone_number, status__in=WAITING_STATUSES
        ).count()
        count = min(user_left[connection.pk], number_room.soon - waiting_here)
        if count > 0:
            plan[sender] = count
            user_left[connection.pk] -= count
    return plan


def release(campaign: Campaign, plan: dict, *, now: datetime) -> int:
    """Create the messages of the next recipients, ``plan[sender]`` of them from each sender
    (inside the caller's transaction, the campaign's row locked), RELEASE_CHUNK at a time."""
    files = list(campaign.files.all())
    suffix = team_settings.opt_out_suffix(campaign.team_id)
    released = 0
    for sender, count in plan.items():
        count = min(count, MAX_PER_ROUND - released)
        while count > 0:
            made = _release_chunk(campaign, sender, min(count, RELEASE_CHUNK), files, suffix, now)
            if not made:
                return released
            released += made
            count -= made
    return released


def _release_chunk(campaign, sender, count: int, files, suffix: str, now: datetime) -> int:
    batch = list(
        CampaignRecipient.objects.filter(campaign=campaign, state=RecipientState.PENDING)
        .order_by("position", "pk")
        .only("pk", "phone_number", "text")[:count]
    )
    if not batch:
        return 0
    numbers = [r.phone_number for r in batch]
    first = (
        team_settings.first_contacts(campaign.team_id, sender.phone_number, numbers)
        if suffix
        else set()
    )
    held = _held_until(campaign.team_id, numbers, now)
    messages = OutboundMessage.objects.bulk_create(
        [
            OutboundMessage(
                team_id=campaign.team_id,
                connection_id=sender.connection_id,
                sender_number=sender,
                from_number=sender.phone_number,
                created_by_id=campaign.created_by_id,
                text=_with_suffix(r.text, suffix, r.phone_number in first),
                created_at=now,
                # Quiet hours hold an automated send in the outbox until they end.
                next_attempt_at=held.get(r.phone_number),
            )
            for r in batch
        ]
    )
    Recipient.objects.bulk_create(
        Recipient(message=m, phone_number=r.phone_number)
        for m, r in zip(messages, batch, strict=True)
    )
    if files:
        Attachment.objects.bulk_create(_attachment(m, f) for m in messages for f in files)
    for message, recipient in zip(messages, batch, strict=True):
        recipient.message = message
        recipient.state = RecipientState.RELEASED
        recipient.released_at = now
    CampaignRecipient.objects.bulk_update(batch, ["message", "state", "released_at"])
    outbox_signals.messages_created.send(sender=OutboundMessage, messages=messages)
    states.enqueue([m.pk for m in messages])
    return len(batch)


def _held_until(team_id: int, numbers: list[str], now: datetime) -> dict[str, datetime]:
    """For numbers inside the team's quiet hours now (in their contact's time zone, else the
    team's), when the quiet hours end."""
    found = team_settings.settings_for(team_id)
    if not found.quiet_hours_enabled:
        return {}
    zones = quiet_hours.contact_zones(team_id, numbers)
    held = {}
    for number in numbers:
        window = quiet_hours.window_for(team_id, number, team_settings=found, zones=zones)
        if window is not None and window.contains(now):
            held[number] = window.ends_after(now)
    return held


def _with_suffix(text: str, suffix: str, first: bool) -> str:
    line = suffix.strip()
    if not first or not line or text.rstrip().endswith(line):
        return text
    return text + suffix


def _attachment(message: OutboundMessage, file) -> Attachment:
    attachment = Attachment(
        message=message,
        position=file.position,
        original_name=file.original_name,
        content_type=file.content_type,
        size=file.size,
        sha256=file.sha256,
        original_content_type=file.original_content_type,
        was_converted=file.was_converted,
        metadata_removed=file.metadata_removed,
        width=file.width,
        height=file.height,
        original_size=file.original_size,
        was_resized=file.was_resized,
    )
    # The bytes are stored once, shared by every message of the campaign.
    attachment.file.name = file.file.name
    attachment.thumbnail.name = file.thumbnail.name or ""
    return attachment


# Ending -------------------------------------------------------------------------------------------


def stop_if_needed(campaign: Campaign, *, now: datetime) -> bool:
    """Stop ``campaign`` if a carrier cap, a run of failures or a broken link says so."""
    found = _reason_to_stop(campaign)
    if found is None:
        return False
    reason, fix = found
    with transaction.atomic():
        won = Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.RUNNING).update(
            status=CampaignStatus.STOPPED, stop_reason=reason, stop_fix=fix
        )
        if won:
            _announce(campaign.pk)
    return True


def _reason_to_stop(campaign: Campaign) -> tuple[str, str] | None:
    since = campaign.resumed_at or campaign.started_at
    messages = OutboundMessage.objects.filter(campaign_recipient__campaign=campaign)
    if since is not None:
        messages = messages.filter(campaign_recipient__released_at__gte=since)
    capped = (
        Recipient.objects.filter(message__in=messages, error_code__in=CAP_CODES)
        .values_list("error_code", flat=True)
        .first()
    )
    if capped:
        explained = delivery_errors.explain(capped)
        return (
            f"Stopped: {explained.reason} ({capped})",
            f"{explained.fix} Resume the campaign then: it continues with the recipients "
            "not sent yet.",
        )
    broken = (
        campaign.senders.exclude(connection__status__in=RingCentralConnection.USABLE_STATUSES)
        .select_related("connection")
        .first()
    )
    if broken is not None:
        status = ConnectionStatus(broken.connection.status).label.lower()
        return (
            f"Stopped: the RingCentral link of {broken.phone_number} is {status}.",
            "Reconnect RingCentral (or ask the person who linked it to), then resume the campaign.",
        )
    run = settings.CAMPAIGN_STOP_AFTER_FAILURES
    latest = list(
        messages.exclude(status__in=UNSETTLED_STATUSES)
        .order_by("-updated_at", "-pk")
        .values_list("status", flat=True)[:run]
    )
    if run and len(latest) == run and all(status in FAILED_STATUSES for status in latest):
        return (
            f"Stopped: the last {run} messages all failed.",
            "Open the report to see why they failed, fix the cause (the text, the sender "
            "number, the list), then resume the campaign.",
        )
    return None


def finish_if_done(campaign: Campaign, *, now: datetime) -> bool:
    """A running campaign with nobody left to release and nothing still on its way is done."""
    if CampaignRecipient.objects.filter(campaign=campaign, state=RecipientState.PENDING).exists():
        return False
    if OutboundMessage.objects.filter(
        campaign_recipient__campaign=campaign, status__in=UNSETTLED_STATUSES
    ).exists():
        return False
    with transaction.atomic():
        won = Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.RUNNING).update(
            status=CampaignStatus.DONE, finished_at=now
        )
        if won:
            _announce(campaign.pk)
    return bool(won)


# Progress -----------------------------------------------------------------------------------------


@dataclass
class Progress:
    status: str
    status_label: str
    total: int
    skipped: int
    waiting: int  # not released yet
    queued: int
    sent: int
    delivered: int
    failed: int
    canceled: int
    replied: int
    eta_seconds: int | None
    stop_reason: str
    stop_fix: str
    # High Volume SMS: a batch was sent, so RingCentral sends it whatever happens here.
    batch_sent: bool = False

    @property
    def finished(self) -> bool:
        return self.status in (CampaignStatus.DONE, CampaignStatus.CANCELED)

    @property
    def percent(self) -> int:
        to_send = self.total - self.skipped
        if to_send <= 0:
            return 100
        return min(100, round(100 * (to_send - self.waiting - self.queued) / to_send))

    def as_json(self) -> dict:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data.update(
            finished=self.finished,
            percent=self.percent,
            eta=preflight.describe_duration(timedelta(seconds=self.eta_seconds))
            if self.eta_seconds
            else "",
        )
        return data


def progress(campaign: Campaign) -> Progress:
    rows = CampaignRecipient.objects.filter(campaign=campaign)
    by_state = dict(rows.values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
    if campaign.uses_high_volume:
        return _high_volume_progress(campaign, by_state)
    by_status = dict(
        rows.filter(state=RecipientState.RELEASED)
        .values_list("message__status")
        .annotate(n=Count("pk"))
        .values_list("message__status", "n")
    )
    inbound = ConversationMessage.objects.filter(
        conversation=OuterRef("message__conversation_message__conversation"),
        direction=Direction.INBOUND,
        at__gt=OuterRef("message__sent_at"),
    )
    replied = (
        rows.filter(state=RecipientState.RELEASED, message__sent_at__isnull=False)
        .filter(Exists(inbound))
        .count()
    )
    waiting = by_state.get(RecipientState.PENDING, 0)
    queued = sum(by_status.get(s, 0) for s in UNSETTLED_STATUSES)
    eta = None
    if campaign.status == CampaignStatus.RUNNING and waiting + queued:
        span = preflight.duration(campaign, waiting + queued)
        eta = int(span.total_seconds()) if span is not None else None
    return Progress(
        status=campaign.status,
        status_label=campaign.get_status_display(),
        total=sum(by_state.values()),
        skipped=by_state.get(RecipientState.SKIPPED, 0),
        waiting=waiting,
        queued=queued,
        sent=by_status.get(MessageStatus.SENT, 0) + by_status.get(MessageStatus.NO_RECEIPT, 0),
        delivered=by_status.get(MessageStatus.DELIVERED, 0),
        failed=sum(by_status.get(s, 0) for s in FAILED_STATUSES),
        canceled=by_status.get(MessageStatus.CANCELED, 0)
        + by_state.get(RecipientState.CANCELED, 0),
        replied=replied,
        eta_seconds=eta,
        stop_reason=campaign.stop_reason,
        stop_fix=campaign.stop_fix,
    )


def _high_volume_progress(campaign: Campaign, by_state: dict) -> Progress:
    """Recipients of a High Volume campaign have no outbox message: their batch results count.
    RingCentral processes a batch at its own pace, so no ETA is given."""
    found = batches.counts(campaign)
    return Progress(
        status=campaign.status,
        status_label=campaign.get_status_display(),
        total=sum(by_state.values()),
        skipped=by_state.get(RecipientState.SKIPPED, 0),
        waiting=by_state.get(RecipientState.PENDING, 0),
        queued=found["queued"],
        sent=found["sent"],
        delivered=found["delivered"],
        failed=found["failed"],
        canceled=by_state.get(RecipientState.CANCELED, 0),
        replied=0,
        eta_seconds=None,
        stop_reason=campaign.stop_reason,
        stop_fix=campaign.stop_fix,
        batch_sent=found["queued"] + found["sent"] + found["delivered"] + found["failed"] > 0,
    )
