"""Outbox folders, message search, and what each status means to a person: the one place each
is defined.

The outbox list, its counts, the dashboard and the admin (folder filter, search) all read this
module, so a message is in the same folder, and found by the same search, everywhere.

Folders (a message is in every folder whose rule it meets; only "needs attention" overlaps):

    scheduled        scheduled (waiting for its time), held (its time passed long ago)
    queued           queued, retry_wait
    sending          sending
    sent             sent (accepted by RingCentral, no delivery report yet)
    delivered        delivered
    failed           failed, sending_failed, delivery_failed
    needs attention  unknown, no_receipt, held, and any message still on its way (queued,
                     retry_wait, sending, sent) whose RingCentral connection can no longer be used
                     (broken or disconnected): nothing moves it forward until someone acts.
    canceled         canceled
    all              every message
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import phonenumbers
from django.conf import settings
from django.db import connections
from django.db.models import Q
from phonenumbers import PhoneNumberFormat

from messaging.models import (
    FINAL_STATUSES,
    ConnectionStatus,
    MessageStatus,
    Recipient,
    RecipientStatus,
    RingCentralConnection,
)

# A connection in one of these can send nothing and poll nothing.
UNUSABLE_CONNECTION_STATUSES = (ConnectionStatus.BROKEN, ConnectionStatus.DISCONNECTED)
# Statuses that still wait on the connection to move forward.
ON_THE_WAY_STATUSES = (
    MessageStatus.QUEUED,
    MessageStatus.RETRY_WAIT,
    MessageStatus.SENDING,
    MessageStatus.SENT,
)

ALL = "all"


@dataclass(frozen=True)
class Folder:
    key: str
    label: str
    statuses: tuple[str, ...]
    # Also holds messages on their way whose connection cannot be used any more.
    includes_stalled: bool = False


FOLDERS: tuple[Folder, ...] = (
    Folder("scheduled", "Scheduled", (MessageStatus.SCHEDULED, MessageStatus.HELD)),
    Folder("queued", "Queued", (MessageStatus.QUEUED, MessageStatus.RETRY_WAIT)),
    Folder("sending", "Sending", (MessageStatus.SENDING,)),
    Folder("sent", "Sent", (MessageStatus.SENT,)),
    Folder("delivered", "Delivered", (MessageStatus.DELIVERED,)),
    Folder(
        "failed",
        "Failed",
        (MessageStatus.FAILED, MessageStatus.SENDING_FAILED, MessageStatus.DELIVERY_FAILED),
    ),
    Folder(
        "attention",
        "Needs attention",
        (MessageStatus.UNKNOWN, MessageStatus.NO_RECEIPT, MessageStatus.HELD),
        includes_stalled=True,
    ),
    Folder("canceled", "Canceled", (MessageStatus.CANCELED,)),
)
BY_KEY = {folder.key: folder for folder in FOLDERS}


def get_folder(key: str | None) -> Folder | None:
    """The folder named `key`, or None for "all" and for names that are not folders."""
    return BY_KEY.get(key or "")


def stalled_connection_ids(team_id: int) -> list[int]:
    """The connections the team sends through (its own and those brought in from its members'
    other teams) that can no longer send; few rows, one query on a small table."""
    return list(
        RingCentralConnection.objects.filter(status__in=UNUSABLE_CONNECTION_STATUSES)
        .filter(Q(team_id=team_id) | Q(shares__team_id=team_id))
        .values_list("pk", flat=True)
        .distinct()
    )


def folder_q(folder: Folder, stalled_ids: Iterable[int] | None = None) -> Q:
    """A filter on OutboundMessage selecting `folder`.

    With `stalled_ids` (from `stalled_connection_ids`, for one team) the stalled part is a plain
    `connection_id IN (…)`, which lets the database use the team/status indexes; without it the
    rule joins the connection's status, which is what the admin needs across teams. Both select
    the same rows.
    """
    q = Q(status__in=folder.statuses)
    if folder.includes_stalled:
        if stalled_ids is None:
            q |= Q(
                status__in=ON_THE_WAY_STATUSES,
                connection__status__in=UNUSABLE_CONNECTION_STATUSES,
            )
        else:
            stalled_ids = list(stalled_ids)
            if stalled_ids:
                q |= Q(status__in=ON_THE_WAY_STATUSES, connection_id__in=stalled_ids)
    return q


# Above this, a folder's count on the outbox page reads "1,000+": counting further would read
# every row of a big team's history on every page view, for a number nobody acts on.
COUNT_CAP = 1_000


def folder_counts(messages, stalled_ids: list[int], cap: int = COUNT_CAP) -> dict[str, int]:
    """Messages per folder (and under ALL) of `messages`, each count stopping at `cap + 1`, so
    "more than cap" can be shown (`count_label`).

    One query of one scalar subquery per folder (and ALL), each reading at most `cap + 1`
    entries of the (team, status, created_at) index, so its cost does not grow with the team's
    history. `messages` must be a plain queryset of one team's messages.
    """
    scoped = [(ALL, messages)]
    scoped += [(f.key, messages.filter(folder_q(f, stalled_ids))) for f in FOLDERS]
    parts, params = [], []
    for _, queryset in scoped:
        # Selecting only `status` lets the database answer from the index alone.
        sql, sql_params = queryset.order_by().values("status")[: cap + 1].query.sql_with_params()
        # The SQL is Django's own compilation; every value in it is a bound parameter.
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) AS capped)")  # noqa: S608
        params.extend(sql_params)
    with connections[messages.db].cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)
        row = cursor.fetchone()
    return {key: int(n) for (key, _), n in zip(scoped, row, strict=True)}


def count_label(count: int, cap: int = COUNT_CAP) -> str:
    return f"{cap:,}+" if count > cap else f"{count:,}"


# Search -------------------------------------------------------------------------------------

# What people type for a phone number: digits and the usual punctuation, nothing else.
_NUMBERISH = re.compile(r"^[\d\s()+.\-/]+$")
MAX_SEARCH_LENGTH = 100


def search_q(term: str) -> Q | None:
    """A filter on OutboundMessage for what someone typed in a search box, or None if blank.

    A term made only of digits and phone punctuation is a phone number and matches recipients:
    its digits as the end of a stored E.164 number (so "555-0111", "(650) 555-0111" and
    "+1 650 555 0111" all find +16505550111), and, when it parses as a full number in the
    default region, that exact number (so a UK "07700 900123" finds +447700900123). Anything
    else matches inside the message text, case-insensitively.

    Numbers do not also search the text: a substring match over the text reads every message of
    the team, while the recipients' numbers narrow the search to a few messages first.
    """
    # PostgreSQL refuses NUL in a query parameter (an error, not "no match"); no message has it.
    term = (term or "").replace("\x00", "").strip()[:MAX_SEARCH_LENGTH]
    if not term:
        return None
    digits = re.sub(r"\D", "", term)
    if not (digits and _NUMBERISH.match(term)):
        return Q(text__icontains=term)
    numbers = Q(phone_number__endswith=digits)
    try:
        parsed = phonenumbers.parse(term, settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_possible_number(parsed):
        numbers |= Q(phone_number=phonenumbers.format_number(parsed, PhoneNumberFormat.E164))
    return Q(pk__in=Recipient.objects.filter(numbers).values("message_id"))


# What a status means ------------------------------------------------------------------------

# Badge colour per status: "ok" done well, "warn" someone may need to look, "bad" it failed,
# "" still moving.
_TONE = {
    MessageStatus.DELIVERED: "ok",
    MessageStatus.SENT: "",
    MessageStatus.UNKNOWN: "warn",
    MessageStatus.NO_RECEIPT: "warn",
    MessageStatus.RETRY_WAIT: "warn",
    MessageStatus.FAILED: "bad",
    MessageStatus.SENDING_FAILED: "bad",
    MessageStatus.DELIVERY_FAILED: "bad",
    MessageStatus.CANCELED: "",
    MessageStatus.HELD: "warn",
    RecipientStatus.QUEUED: "",
    RecipientStatus.OPTED_OUT: "bad",
}


def tone(status: str) -> str:
    return _TONE.get(status, "")


def badge_class(status: str) -> str:
    """CSS classes of the badge showing `status` (message or recipient status)."""
    t = tone(status)
    return f"badge badge-{t}" if t else "badge"


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES


# Plain words for each status: what it means and, when the message did not get through and the
# provider gave no reason, what to do.
MEANING = {
    MessageStatus.QUEUED: "Waiting for a worker to send it to RingCentral.",
    MessageStatus.RETRY_WAIT: "RingCentral could not take it just now; it will be tried again "
    "automatically.",
    MessageStatus.SENDING: "Being handed to RingCentral right now.",
    MessageStatus.SENT: "Accepted by RingCentral. That is not delivery yet: the carrier has not "
    "reported that the phone received it.",
    MessageStatus.DELIVERED: "Delivered: the carrier reported that the phone received it.",
    MessageStatus.DELIVERY_FAILED: "RingCentral accepted it, but the carrier could not deliver "
    "it to the phone.",
    MessageStatus.SENDING_FAILED: "RingCentral accepted it, but could not pass it on to the "
    "carrier.",
    MessageStatus.NO_RECEIPT: "RingCentral accepted it, but no delivery report came back in "
    "time, so nobody knows whether it arrived.",
    MessageStatus.FAILED: "RingCentral did not accept it, so it was not sent.",
    MessageStatus.UNKNOWN: "The connection to RingCentral dropped while sending. We are checking "
    "with RingCentral whether it arrived before doing anything else; it will not be sent twice.",
    MessageStatus.CANCELED: "Canceled before it was sent. Nothing went out.",
    MessageStatus.SCHEDULED: "Waiting for the time it was scheduled for; it can still be "
    "changed or canceled. During the team's quiet hours it waits until they end.",
    MessageStatus.HELD: "Held: its scheduled time passed long ago while the portal was not "
    "sending, so it was not sent late on its own. Send it now, or cancel it.",
}

DEFAULT_FIX = {
    MessageStatus.DELIVERY_FAILED: "Check that the number is right and can receive texts, then "
    "send it again.",
    MessageStatus.SENDING_FAILED: "Send it again; if it keeps failing, check the sending number "
    "in RingCentral.",
    MessageStatus.NO_RECEIPT: "Ask the recipient whether it arrived before sending it again.",
    MessageStatus.FAILED: "Correct what the reason says, then retry or send it again.",
}

STALLED_FIX = (
    "The RingCentral account this message is sent from is no longer linked. Link it again on "
    "the RingCentral page; the message then carries on."
)
