"""Running a High Volume SMS campaign: its recipients sent in batches, then their results read.

A campaign whose one sender has the ``A2PSmsSender`` feature (``campaign.uses_high_volume``)
makes no outbox messages. ``send`` (in a worker: the feed task after Start, and every feed
round while recipients wait) hands every waiting recipient to ``high_volume.send_batches``;
``follow`` (beat) reads each batch's results with ``high_volume.read_results`` until every
recipient is final, and ends the campaign.

Why nothing is sent twice: recipients are claimed before any request, in a committed
transaction under the campaign's row lock (``batch_status`` "sending"), and only pending,
unclaimed recipients are ever claimed. A task retried after a crash finds them claimed and
sends nothing; claimed recipients whose request got no answer are not sent again either
(``UNANSWERED_AFTER``): they are reported as unknown, with the reason.
Why none is lost: after the answer each one is in a batch (its id stored), rejected with
RingCentral's reason, or handed back to pending when no request carried it.

Once a batch is sent RingCentral processes it on its own: the campaign can then no longer be
paused or canceled (``batch_sent``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from messaging.campaigns import high_volume, preflight, signals
from messaging.consent import team_settings
from messaging.models import (
    Campaign,
    CampaignRecipient,
    CampaignStatus,
    ConnectionStatus,
    MessageStatus,
    RecipientState,
    RingCentralConnection,
)
from messaging.outbox import delivery_errors
from messaging.ringcentral import a2p, errors, limits

log = logging.getLogger(__name__)

# Recipients per statement.
CHUNK = 1000
# A recipient claimed for a request whose answer was not stored (the worker stopped meanwhile).
SENDING = "sending"
# Claimed this long ago without an answer: the request may have reached RingCentral.
UNANSWERED_AFTER = timedelta(minutes=10)
# RingCentral's messageStatus in the outbox's words.
STATUS_OF = {
    "Queued": MessageStatus.QUEUED,
    "Sent": MessageStatus.SENT,
    "Delivered": MessageStatus.DELIVERED,
    "DeliveryFailed": MessageStatus.DELIVERY_FAILED,
    "SendingFailed": MessageStatus.SENDING_FAILED,
}
# Still on their way: the campaign is done once no recipient is in these.
UNSETTLED = [SENDING, MessageStatus.QUEUED, MessageStatus.SENT]
FAILED = [MessageStatus.FAILED, MessageStatus.DELIVERY_FAILED, MessageStatus.SENDING_FAILED]

REFUSED_AFTER_SENDING = (
    "RingCentral is processing this campaign's batch: it sends every message in it by itself, "
    "and a batch cannot be paused or canceled once it is sent. Follow the progress here; the "
    "report lists each recipient's result."
)


def batch_sent(campaign: Campaign) -> bool:
    """Whether a request carried (or may have carried) some of the campaign's recipients."""
    return CampaignRecipient.objects.filter(campaign=campaign).exclude(batch_status="").exists()


# --- Sending ----------------------------------------------------------------------------------


def send(campaign_id: int, *, now: datetime | None = None) -> int:
    """Send the campaign's waiting recipients (a running, due High Volume campaign); the number
    of recipients a request carried."""
    now = now or timezone.now()
    campaign = Campaign.objects.filter(
        pk=campaign_id, status=CampaignStatus.RUNNING, uses_high_volume=True
    ).first()
    if campaign is None or (campaign.start_at and campaign.start_at > now):
        return 0
    sender = campaign.senders.select_related("connection").first()
    if sender is None:
        return 0
    connection = sender.connection
    if connection.status not in RingCentralConnection.USABLE_STATUSES:
        status = ConnectionStatus(connection.status).label.lower()
        stop(
            campaign,
            f"Stopped: the RingCentral link of {sender.phone_number} is {status}.",
            "Reconnect RingCentral (or ask the person who linked it to), then resume the campaign.",
        )
        return 0
    if not CampaignRecipient.objects.filter(
        campaign=campaign, state=RecipientState.PENDING, batch_status=""
    ).exists():
        finish_if_done(campaign, now=now)
        return 0
    # Who opted out (or turned out to be a landline) since the pre-flight is skipped now.
    preflight.mark_unsendable(campaign)
    claimed = _claim(campaign, sender.phone_number, now)
    if not claimed:
        finish_if_done(campaign, now=now)
        return 0
    items = [(str(pk), to, text) for pk, to, text in claimed]
    try:
        result = high_volume.send_batches(
            connection, sender.phone_number, items, team_id=campaign.team_id
        )
    except errors.RingCentralError as exc:
        # Raised before any request (the link's token could not be had): nothing was sent.
        _unclaim([pk for pk, _, _ in claimed])
        if not exc.retryable:
            stop(campaign, f"Stopped: {exc.reason}", exc.fix)
        return 0
    except high_volume.OptedOutRecipients:
        # Opted out between the check and the request: nothing was sent; they are marked skipped
        # and the others go in the next round.
        _unclaim([pk for pk, _, _ in claimed])
        preflight.mark_unsendable(campaign)
        return 0
    except high_volume.HighVolumeError as refused:
        _unclaim([pk for pk, _, _ in claimed])
        stop(campaign, f"Stopped: {refused}", "Change the list or the text, then resume.")
        return 0
    return _store(campaign, sender.phone_number, result, now)


def _claim(campaign: Campaign, from_number: str, now: datetime) -> list[tuple[int, str, str]]:
    """Mark the waiting recipients as being sent, committed before any request; their texts
    as they will be sent (with the team's opt-out line for a first message)."""
    with transaction.atomic():
        locked = (
            Campaign.objects.select_for_update()
            .filter(pk=campaign.pk, status=CampaignStatus.RUNNING)
            .first()
        )
        if locked is None:
            return []
        waiting = CampaignRecipient.objects.filter(
            campaign=campaign, state=RecipientState.PENDING, batch_status=""
        )
        rows = list(waiting.order_by("position", "pk").values_list("pk", "phone_number", "text"))
        rows = _with_opt_out_line(campaign, from_number, rows)
        too_long = {pk for pk, _, text in rows if limits.utf16_units(text) > limits.MAX_TEXT_UNITS}
        for chunk in _chunks(list(too_long)):
            CampaignRecipient.objects.filter(pk__in=chunk).update(
                state=RecipientState.RELEASED,
                released_at=now,
                batch_status=MessageStatus.FAILED,
                error_reason=(
                    f"Not sent: the merged text is longer than {limits.MAX_TEXT_UNITS:,} "
                    "characters (emoji count as 2), High Volume SMS's limit."
                ),
                error_fix="Shorten the text or the merge values, and send it again.",
                final_at=now,
            )
        rows = [row for row in rows if row[0] not in too_long]
        for chunk in _chunks([pk for pk, _, _ in rows]):
            CampaignRecipient.objects.filter(pk__in=chunk).update(
                state=RecipientState.RELEASED, released_at=now, batch_status=SENDING
            )
    return rows


def _chunks(values: list, size: int = CHUNK):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _with_opt_out_line(campaign: Campaign, from_number: str, rows: list) -> list:
    """The team's opt-out line appended to the texts of recipients never texted from this
    number before (by the outbox or an earlier High Volume batch), as the feeder does; the
    recipient's stored text becomes what is sent, for the report."""
    suffix = team_settings.opt_out_suffix(campaign.team_id)
    line = suffix.strip()
    if not line:
        return rows
    found = []
    for chunk in _chunks(rows):
        numbers = [to for _, to, _ in chunk]
        first = team_settings.first_contacts(campaign.team_id, from_number, numbers)
        first -= set(
            CampaignRecipient.objects.filter(
                campaign__team_id=campaign.team_id,
                campaign__senders__phone_number=from_number,
                phone_number__in=numbers,
            )
            .exclude(batch_id="")
            .values_list("phone_number", flat=True)
        )
        changed = []
        for pk, to, text in chunk:
            if to in first and not text.rstrip().endswith(line):
                text += suffix
                changed.append(CampaignRecipient(pk=pk, text=text))
            found.append((pk, to, text))
        CampaignRecipient.objects.bulk_update(changed, ["text"])
    return found


def _unclaim(pks) -> None:
    for chunk in _chunks(list(pks)):
        CampaignRecipient.objects.filter(pk__in=chunk, batch_status=SENDING).update(
            state=RecipientState.PENDING, released_at=None, batch_status=""
        )


def _store(
    campaign: Campaign, from_number: str, result: high_volume.SendResult, now: datetime
) -> int:
    """Write what RingCentral answered: each recipient's batch, the rejected ones with their
    reason, and the ones no request carried back to pending (or unknown, see below)."""
    carried = 0
    with transaction.atomic():
        for batch in result.batches:
            pks = [int(key) for key in batch.recipients.values()]
            carried += len(pks)
            for chunk in _chunks(pks):
                CampaignRecipient.objects.filter(pk__in=chunk).update(
                    batch_id=batch.batch_id, batch_status=MessageStatus.QUEUED
                )
        for rejected in result.rejected:
            carried += 1
            CampaignRecipient.objects.filter(pk=int(rejected.recipient_key)).update(
                batch_status=MessageStatus.FAILED,
                error_code=rejected.code[:40],
                error_reason=rejected.reason,
                error_fix=rejected.fix,
                final_at=now,
            )
        unsent = [int(item.recipient_key) for item in result.unsent]
        if _may_have_reached(result.error) and unsent:
            # The request that got no answer may have made a batch at RingCentral: its
            # recipients are never sent again; those after it were in no request.
            planned = a2p.plan_batches(
                from_number, [a2p.BatchMessage(item.to, item.text) for item in result.unsent]
            )
            _mark_unknown(unsent[: len(planned[0])], now)
            unsent = unsent[len(planned[0]) :]
        _unclaim(unsent)
    error = result.error
    if error is not None and not error.retryable:
        code = f" ({error.code})" if error.code else ""
        stop(
            campaign,
            f"Stopped: a batch request failed: {error.reason}{code}",
            f"{error.fix} Recipients in batches already sent are not sent again; resume the "
            "campaign to send the others.",
        )
    elif error is not None or result.retry_after:
        log.info("High Volume campaign %s: the rest waits for the next round", campaign.pk)
    return carried


def _may_have_reached(error: errors.RingCentralError | None) -> bool:
    """Whether a failed request may still have made its batch at RingCentral."""
    if isinstance(error, errors.NetworkError):
        return error.request_sent is not False
    return isinstance(error, errors.OutcomeUnknown | errors.UnexpectedResponse)


def _mark_unknown(pks, now: datetime) -> None:
    for chunk in _chunks(list(pks)):
        _mark_chunk_unknown(chunk, now)


def _mark_chunk_unknown(pks: list, now: datetime) -> None:
    CampaignRecipient.objects.filter(pk__in=pks).update(
        batch_status=MessageStatus.UNKNOWN,
        error_reason=(
            "The request that carried this recipient got no answer: RingCentral may have sent "
            "it. It is not sent again, so that nobody gets the text twice."
        ),
        error_fix="Check with the recipient, or send them a message yourself.",
        final_at=now,
    )


# --- Following the batches ----------------------------------------------------------------------


def follow(now: datetime | None = None) -> int:
    """Read the results of every batch still on its way and end the campaigns that are done;
    the recipients whose state changed."""
    now = now or timezone.now()
    stale = CampaignRecipient.objects.filter(
        batch_status=SENDING, released_at__lt=now - UNANSWERED_AFTER
    ).values_list("pk", flat=True)
    _mark_unknown(list(stale), now)
    campaign_ids = set(
        CampaignRecipient.objects.filter(
            campaign__uses_high_volume=True,
            batch_status__in=[MessageStatus.QUEUED, MessageStatus.SENT],
        )
        .values_list("campaign_id", flat=True)
        .distinct()
    )
    campaign_ids |= set(
        Campaign.objects.filter(uses_high_volume=True, status=CampaignStatus.RUNNING).values_list(
            "pk", flat=True
        )
    )
    changed = 0
    for campaign_id in sorted(campaign_ids):
        try:
            changed += follow_campaign(campaign_id, now=now)
        except Exception:
            log.exception(
                "Reading campaign %s's batches failed; the next round tries again", campaign_id
            )
    return changed


def follow_campaign(campaign_id: int, *, now: datetime) -> int:
    campaign = Campaign.objects.get(pk=campaign_id)
    sender = campaign.senders.select_related("connection").first()
    changed = 0
    open_batches = (
        CampaignRecipient.objects.filter(
            campaign=campaign, batch_status__in=[MessageStatus.QUEUED, MessageStatus.SENT]
        )
        .values_list("batch_id", flat=True)
        .distinct()
    )
    for batch_id in sorted(set(open_batches)):
        if sender is None or sender.connection.status not in RingCentralConnection.USABLE_STATUSES:
            break
        changed += _read_batch(campaign, sender.connection, batch_id, now)
    finish_if_done(campaign, now=now)
    return changed


def _read_batch(campaign, connection, batch_id: str, now: datetime) -> int:
    rows = {
        to: pk
        for pk, to in CampaignRecipient.objects.filter(
            campaign=campaign, batch_id=batch_id
        ).values_list("pk", "phone_number")
    }
    try:
        report = high_volume.read_results(
            connection, batch_id, {to: str(pk) for to, pk in rows.items()}
        )
    except (high_volume.LimiterBusy, errors.RingCentralError) as exc:
        log.info("Batch %s of campaign %s not read this round: %s", batch_id, campaign.pk, exc)
        return 0
    changed = 0
    seen = set()
    with transaction.atomic():
        for result in report.results:
            pk = rows.get(result.to)
            if pk is None:
                continue
            seen.add(pk)
            status = STATUS_OF.get(result.status, MessageStatus.QUEUED)
            changed += (
                CampaignRecipient.objects.filter(pk=pk)
                .exclude(batch_status=status)
                .update(
                    batch_status=status,
                    error_code=result.error_code[:40],
                    error_reason=result.reason,
                    error_fix=result.fix,
                    final_at=now if result.final else None,
                )
            )
        # Sent, and the carrier never confirmed: given up on as the outbox gives up on a message.
        changed += CampaignRecipient.objects.filter(
            campaign=campaign,
            batch_id=batch_id,
            batch_status=MessageStatus.SENT,
            released_at__lt=now - timedelta(seconds=settings.TRACKING_GIVE_UP_AFTER),
        ).update(
            batch_status=MessageStatus.NO_RECEIPT,
            error_reason=delivery_errors.NO_RECEIPT_REASON,
            final_at=now,
        )
        if report.done:
            # A recipient the batch accepted but RingCentral lists no message for.
            explained = delivery_errors.explain("", "SendingFailed")
            changed += (
                CampaignRecipient.objects.filter(campaign=campaign, batch_id=batch_id)
                .exclude(pk__in=seen)
                .filter(batch_status__in=[MessageStatus.QUEUED, MessageStatus.SENT])
                .update(
                    batch_status=MessageStatus.SENDING_FAILED,
                    error_reason=f"RingCentral reported no result for it. {explained.reason}",
                    error_fix=explained.fix,
                    final_at=now,
                )
            )
    return changed


# --- Ending and progress --------------------------------------------------------------------------


def stop(campaign: Campaign, reason: str, fix: str) -> bool:
    with transaction.atomic():
        won = Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.RUNNING).update(
            status=CampaignStatus.STOPPED, stop_reason=reason, stop_fix=fix
        )
        if won:
            signals.announce_finished(campaign.pk)
    return bool(won)


def finish_if_done(campaign: Campaign, *, now: datetime) -> bool:
    """A running campaign with nobody waiting and every recipient's result final is done."""
    rows = CampaignRecipient.objects.filter(campaign=campaign)
    if rows.filter(state=RecipientState.PENDING).exists():
        return False
    if rows.filter(batch_status__in=UNSETTLED).exists():
        return False
    with transaction.atomic():
        won = Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.RUNNING).update(
            status=CampaignStatus.DONE, finished_at=now
        )
        if won:
            signals.announce_finished(campaign.pk)
    return bool(won)


def counts(campaign: Campaign) -> dict[str, int]:
    """The recipients by outcome: queued (claimed or in a batch not processed yet), sent,
    delivered, failed, unknown."""
    by_status = dict(
        CampaignRecipient.objects.filter(campaign=campaign)
        .exclude(batch_status="")
        .values_list("batch_status")
        .annotate(n=Count("pk"))
        .values_list("batch_status", "n")
    )
    return {
        "queued": by_status.get(SENDING, 0) + by_status.get(MessageStatus.QUEUED, 0),
        "sent": by_status.get(MessageStatus.SENT, 0) + by_status.get(MessageStatus.NO_RECEIPT, 0),
        "delivered": by_status.get(MessageStatus.DELIVERED, 0),
        "failed": sum(by_status.get(s, 0) for s in FAILED)
        + by_status.get(MessageStatus.UNKNOWN, 0),
    }
