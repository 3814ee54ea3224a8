"""What a campaign will do before it starts: who gets a message, who does not and why, how many
SMS segments in all, how long it takes at the chosen senders' rate limits, and when it starts.

Counts and sums are computed by the database; only the first rows of each problem are listed
on the page (the report has them all). Recipients who opted out, and numbers that earlier
delivery reports in the team say cannot receive texts (a landline, an invalid mobile number),
are marked skipped by ``mark_unsendable``, when the campaign is created and again when it
starts; the outbox still asks the consent ledger when each message is sent.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, OuterRef, Subquery, Sum
from django.utils import timezone

from messaging.consent import checks as consent_checks
from messaging.consent import team_settings
from messaging.core.phones import format_number
from messaging.models import (
    Campaign,
    CampaignRecipient,
    Recipient,
    RecipientState,
    RecipientStatus,
    SkipKind,
)
from messaging.outbox import delivery_errors
from messaging.ringcentral import a2p, limits
from messaging.sending import ratelimit

# Numbers asked about per consent query.
CHUNK = 1000
# Rows of each problem listed on the pre-flight page.
LISTED = 50


def mark_unsendable(campaign: Campaign) -> int:
    """Mark waiting recipients who opted out of any chosen sender, or whose number is known not
    to take texts, as skipped with the reason; the number marked."""
    senders = list(campaign.senders.select_related("connection"))
    pending = CampaignRecipient.objects.filter(campaign=campaign, state=RecipientState.PENDING)
    marked = 0
    last_id = 0
    while True:
        chunk = list(
            pending.filter(pk__gt=last_id).order_by("pk").values_list("pk", "phone_number")[:CHUNK]
        )
        if not chunk:
            break
        last_id = chunk[-1][0]
        numbers = [number for _, number in chunk]
        reasons: dict[str, str] = {}
        for sender in senders:
            found = consent_checks.opted_out(
                campaign.team_id,
                numbers,
                from_number=sender.phone_number,
                account_id=sender.connection.account_id,
            )
            for number, record in found.items():
                reasons.setdefault(
                    number, consent_checks.explain(number, record, sender.phone_number)
                )
        for pk, number in chunk:
            if number in reasons:
                marked += pending.filter(pk=pk).update(
                    state=RecipientState.SKIPPED,
                    skip_kind=SkipKind.OPTED_OUT,
                    skip_reason=reasons[number],
                )
    marked += _mark_landlines(campaign)
    return marked


def _mark_landlines(campaign: Campaign) -> int:
    """Numbers whose latest report in the team said they cannot receive texts (one query to
    find them, and no delivery to them since)."""
    codes = delivery_errors.codes_of(delivery_errors.Kind.INVALID_NUMBER)
    failures = Recipient.objects.filter(
        message__team_id=campaign.team_id,
        phone_number=OuterRef("phone_number"),
        status__in=[RecipientStatus.DELIVERY_FAILED, RecipientStatus.SENDING_FAILED],
        error_code__in=codes,
    ).order_by("-updated_at")
    delivered = Recipient.objects.filter(
        message__team_id=campaign.team_id,
        phone_number=OuterRef("phone_number"),
        status=RecipientStatus.DELIVERED,
    ).order_by("-updated_at")
    found = (
        CampaignRecipient.objects.filter(campaign=campaign, state=RecipientState.PENDING)
        .annotate(
            failed_at=Subquery(failures.values("updated_at")[:1]),
            code=Subquery(failures.values("error_code")[:1]),
            delivered_at=Subquery(delivered.values("updated_at")[:1]),
        )
        .filter(failed_at__isnull=False)
        .values_list("pk", "phone_number", "code", "failed_at", "delivered_at")
    )
    marked = 0
    for pk, number, code, failed_at, delivered_at in found.iterator(chunk_size=CHUNK):
        if delivered_at is not None and delivered_at > failed_at:
            continue
        when = timezone.localtime(failed_at)
        marked += CampaignRecipient.objects.filter(pk=pk).update(
            state=RecipientState.SKIPPED,
            skip_kind=SkipKind.LANDLINE,
            skip_reason=(
                f"{format_number(number)} cannot receive texts: it is a landline or not a valid "
                f"mobile number (reported {when:%b} {when.day}, {code})."
            ),
        )
    return marked


# --- Rates ------------------------------------------------------------------------------------


def per_minute(campaign: Campaign) -> float:
    """Messages a minute the chosen senders can send together: each RingCentral user's send
    budget (Medium group) shared by their numbers, each number at most its own limit."""
    rates = ratelimit.configured_rates()
    user_rate = rates[limits.SEND_GROUP]
    number_rate = rates[limits.NUMBER_GROUP]
    by_user: dict[tuple[str, str], int] = defaultdict(int)
    for sender in campaign.senders.select_related("connection"):
        by_user[(sender.connection.account_id, sender.connection.extension_id)] += 1
    total = 0.0
    for numbers in by_user.values():
        user = user_rate.limit * 60.0 / user_rate.window
        each = number_rate.limit * 60.0 / number_rate.window
        total += min(user, each * numbers)
    return total


def duration(campaign: Campaign, messages: int) -> timedelta | None:
    rate = per_minute(campaign)
    if rate <= 0:
        return None
    return timedelta(seconds=math.ceil(messages * 60.0 / rate))


def describe_duration(span: timedelta | None) -> str:
    if span is None:
        return "unknown"
    seconds = int(span.total_seconds())
    if seconds < 60:
        return "less than a minute"
    hours, minutes = divmod(math.ceil(seconds / 60), 60)
    if not hours:
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    return f"about {hours} h {minutes:02d} min"


def high_volume_requests(campaign: Campaign) -> int:
    """How many batch requests the recipients to send take through High Volume SMS, within
    RingCentral's limits per request (``ringcentral.a2p.plan_batches``)."""
    rows = CampaignRecipient.objects.filter(
        campaign=campaign, state=RecipientState.PENDING, batch_status=""
    ).values_list("phone_number", "text")
    messages = [a2p.BatchMessage(to, text) for to, text in rows.iterator(chunk_size=CHUNK) if text]
    sender = campaign.senders.first()
    if not messages or sender is None:
        return 0
    try:
        return len(a2p.plan_batches(sender.phone_number, messages))
    except ValueError:  # a text over the limit: that recipient fails when the campaign runs
        return math.ceil(len(messages) / limits.A2P_MAX_MESSAGES_PER_BATCH)


# --- The page ---------------------------------------------------------------------------------


@dataclass
class Summary:
    total: int
    to_send: int
    skipped: dict[str, int]
    listed: dict[str, list[CampaignRecipient]]
    segments: int
    per_minute: float
    duration: timedelta | None
    starts_at: datetime | None
    zone: str
    # Through High Volume SMS: the batch requests it takes (RingCentral then works the batches
    # through at its own pace, which it does not document: no duration is estimated).
    high_volume: bool = False
    requests: int = 0

    @property
    def duration_text(self) -> str:
        return describe_duration(self.duration)

    def count(self, kind: str) -> int:
        return self.skipped.get(kind, 0)


def summary(campaign: Campaign) -> Summary:
    """The pre-flight numbers of ``campaign`` (a few queries, whatever its size)."""
    rows = CampaignRecipient.objects.filter(campaign=campaign)
    by_state = dict(rows.values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
    skipped = dict(
        rows.filter(state=RecipientState.SKIPPED)
        .values_list("skip_kind")
        .annotate(n=Count("pk"))
        .values_list("skip_kind", "n")
    )
    listed = {
        kind: list(
            rows.filter(state=RecipientState.SKIPPED, skip_kind=kind)
            .order_by("position")
            .only("position", "phone_number", "name", "skip_reason")[:LISTED]
        )
        for kind in SkipKind.values
        if skipped.get(kind)
    }
    to_send = by_state.get(RecipientState.PENDING, 0) + by_state.get(RecipientState.RELEASED, 0)
    segments = rows.exclude(state=RecipientState.SKIPPED).aggregate(n=Sum("segments"))["n"] or 0
    zone = team_settings.zone_of(team_settings.settings_for(campaign.team_id))
    if campaign.uses_high_volume:
        return Summary(
            total=sum(by_state.values()),
            to_send=to_send,
            skipped=skipped,
            listed=listed,
            segments=segments,
            per_minute=0.0,
            duration=None,
            starts_at=campaign.start_at,
            zone=str(zone),
            high_volume=True,
            requests=high_volume_requests(campaign),
        )
    return Summary(
        total=sum(by_state.values()),
        to_send=to_send,
        skipped=skipped,
        listed=listed,
        segments=segments,
        per_minute=per_minute(campaign),
        duration=duration(campaign, to_send),
        starts_at=campaign.start_at,
        zone=str(zone),
    )
