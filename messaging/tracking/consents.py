"""RingCentral's SMS consent list, kept in the consent ledger (messaging/consent/).

Three ways in, one way out:

- `read_all(connection_id)`: every record of the account's list, once a link's numbers are
  read (receivers.py: in the linking request, and when someone syncs the numbers) and then every
  `CONSENT_SYNC_INTERVAL` seconds for links whose webhook does not work (`read_due`, by beat);
- `event_received(sub, payload)`: a verified consents notification (views.py), the changed
  records whole;
- `push(record_id)`: a change a team admin made by hand is written to RingCentral's list of
  every RingCentral account the team sends through, so the RingCentral app agrees.

A RingCentral record becomes a ledger record of the link's team (and of each team the link is
shared with) for that account (`account_id`) and number (`from` "*" stays "*", every number of
the account), source "RingCentral's consent list", changed at its `lastModifiedTime`. A record
for a number the team does not have is ignored and logged.
"""

from __future__ import annotations

import logging
from collections import Counter

from django.db.models import Q
from django.utils import timezone

from messaging.consent import ledger
from messaging.links.tokens import client_for
from messaging.models import (
    EVERY_NUMBER,
    ConnectionShare,
    ConsentRecord,
    ConsentSource,
    ConsentState,
    RingCentralConnection,
    SenderNumber,
    WebhookStatus,
    WebhookSubscription,
)
from messaging.ringcentral import consents as rc_consents
from messaging.ringcentral import errors, limits
from messaging.ringcentral import subscriptions as rc_subscriptions
from messaging.sending import ratelimit

log = logging.getLogger(__name__)

LIMITER_MAX_WAIT = 2.0


def _teams_of(connection) -> list[int]:
    shared = ConnectionShare.objects.filter(connection=connection).values_list("team_id", flat=True)
    return [connection.team_id, *shared]


def _numbers_of(connection) -> set[str]:
    """The numbers of the account the portal knows (every link of the account in the team)."""
    return set(
        SenderNumber.objects.filter(
            connection__team_id=connection.team_id,
            connection__account_id=connection.account_id,
        ).values_list("phone_number", flat=True)
    )


def apply(connection, records, *, now=None) -> Counter:
    """Record RingCentral's `records` for `connection`'s account in the ledger."""
    counts: Counter = Counter()
    now = now or timezone.now()
    known = _numbers_of(connection)
    teams = _teams_of(connection)
    # What the ledger holds for the account already: a whole read where little changed writes
    # nothing and asks one query, not one per record.
    held = {
        (team_id, sender, contact): (state, changed_at)
        for team_id, sender, contact, state, changed_at in ConsentRecord.objects.filter(
            team_id__in=teams, account_id=connection.account_id
        ).values_list("team_id", "from_number", "contact_number", "state", "changed_at")
    }
    missing: dict[int, list[ledger.NewRecord]] = {team_id: [] for team_id in teams}
    for record in records:
        if record.from_number != EVERY_NUMBER and record.from_number not in known:
            counts["unknown number"] += 1
            continue
        state = ConsentState.OPTED_OUT if record.opted_out else ConsentState.OPTED_IN
        at = min(record.changed_at or now, now)
        changed = False
        note = f"RingCentral: {record.source}" if record.source else ""
        for team_id in teams:
            key = (team_id, record.from_number, record.to_number)
            current = held.get(key)
            if current is None:
                held[key] = (state, at)  # a list naming one pair twice: the first one counts
                missing[team_id].append(
                    ledger.NewRecord(
                        record.to_number,
                        state,
                        ConsentSource.RINGCENTRAL,
                        account_id=connection.account_id,
                        from_number=record.from_number,
                        note=note,
                        at=at,
                    )
                )
                changed = True
                continue
            if current[0] == state or current[1] > at:
                continue  # the ledger would change nothing
            _, moved = ledger.record(
                team_id,
                record.to_number,
                state,
                ConsentSource.RINGCENTRAL,
                account_id=connection.account_id,
                from_number=record.from_number,
                note=note,
                at=at,
            )
            changed = changed or moved
        counts["changed" if changed else "unchanged"] += 1
    for team_id, new in missing.items():
        ledger.record_new(team_id, new)
    if counts["unknown number"]:
        log.info(
            "%d consent record(s) of connection %s name numbers the team does not have; ignored",
            counts["unknown number"],
            connection.pk,
        )
    return counts


def read_all(connection_id: int) -> dict[str, int]:
    """Read the account's whole consent list into the ledger."""
    connection = RingCentralConnection.objects.filter(pk=connection_id).first()
    if connection is None or not connection.is_usable:
        return {"skipped": 1}
    limiter = ratelimit.get_limiter()
    key = ratelimit.key_for(connection, limits.READ_GROUP)
    if limiter.acquire([key], max_wait=LIMITER_MAX_WAIT) > 0:
        return {"deferred": 1}
    try:
        records = list(client_for(connection).all_consents())
    except errors.RingCentralError as exc:
        log.warning("Reading the consent list of connection %s failed: %s", connection_id, exc)
        return {"failed": 1}
    return dict(apply(connection, records))


def read_due() -> dict[str, int]:
    """`read_all` for every usable link whose webhook does not deliver consent events (one
    link per RingCentral account and team is enough: the list is the account's)."""
    with_events = [
        connection_id
        for connection_id, filters in WebhookSubscription.objects.filter(
            status=WebhookStatus.ACTIVE
        ).values_list("connection_id", "event_filters")
        if rc_subscriptions.CONSENTS_FILTER in (filters or [])
    ]
    usable = RingCentralConnection.objects.filter(
        status__in=RingCentralConnection.USABLE_STATUSES
    ).exclude(pk__in=with_events)
    seen, counts = set(), Counter()
    for connection in usable.order_by("pk"):
        scope = (connection.team_id, connection.account_id)
        if scope in seen:
            continue
        seen.add(scope)
        counts.update(read_all(connection.pk))
    return dict(counts)


def event_received(sub: WebhookSubscription, payload: dict) -> str:
    """A verified consents notification for `sub`: its records go into the ledger. Answers
    "no records" when the body holds none."""
    WebhookSubscription.objects.filter(pk=sub.pk).update(last_delivery_at=timezone.now())
    records, unreadable = rc_consents.parse_event(payload.get("body"))
    if unreadable:
        log.info("Consent notification with %d unreadable record(s); ignored", unreadable)
    if not records:
        return "no records"
    connection = RingCentralConnection.objects.get(pk=sub.connection_id)
    apply(connection, records)
    return "ok"


def push(record_id: int) -> dict[str, int]:
    """Write a change made by hand to RingCentral's consent list of each account the team
    sends through. An opt-in also lifts the account's opt-outs of that contact for single
    numbers, so that RingCentral lets texts through again as the portal does."""
    record = ConsentRecord.objects.filter(pk=record_id).first()
    if record is None or record.source != ConsentSource.MANUAL:
        return {"skipped": 1}
    shared = ConnectionShare.objects.filter(team_id=record.team_id).values_list(
        "connection_id", flat=True
    )
    links = RingCentralConnection.objects.filter(
        Q(team_id=record.team_id) | Q(pk__in=list(shared)),
        status__in=RingCentralConnection.USABLE_STATUSES,
    ).order_by("pk")
    counts: Counter = Counter()
    done = set()
    for connection in links:
        if connection.account_id in done:
            continue
        done.add(connection.account_id)
        updates = [
            rc_consents.ConsentUpdate(record.from_number, record.contact_number, record.opted_out)
        ]
        if not record.opted_out:
            singles = ConsentRecord.objects.filter(
                team_id=record.team_id,
                account_id=connection.account_id,
                contact_number=record.contact_number,
                state=ConsentState.OPTED_OUT,
            ).exclude(from_number=EVERY_NUMBER)
            updates += [
                rc_consents.ConsentUpdate(single.from_number, record.contact_number, False)
                for single in singles
            ]
        try:
            failed = client_for(connection).update_consents(updates)
        except errors.RingCentralError as exc:
            log.warning(
                "Writing consent to RingCentral via connection %s failed: %s", connection.pk, exc
            )
            counts["failed"] += 1
            continue
        for _, reason in failed:
            log.warning(
                "RingCentral refused a consent record (connection %s): %s", connection.pk, reason
            )
        counts["refused" if failed else "written"] += 1
    return dict(counts)
