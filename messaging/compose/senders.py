"""Which numbers a member may send from, and why a number cannot send a given message."""

from __future__ import annotations

import re

from django.db.models import Q

from messaging.compose.recipients import parse_recipients
from messaging.core.phones import format_number
from messaging.links.connections import usable_for
from messaging.models import OutboundMessage, SenderNumber


def sender_numbers(user, team):
    """Active numbers of the usable connections ``user`` may send from in ``team``: the team's
    own links that are theirs or shared with the team, and links a member brought into the team
    (ConnectionShare). Fax numbers are included so that `sender_refusal` can say why they
    cannot send; the compose page leaves out every number that cannot text."""
    return (
        SenderNumber.objects.filter(connection__in=usable_for(user, team))
        # Fax numbers are never active senders (the schema says so).
        .filter(Q(active=True) | Q(is_fax=True))
        .select_related("connection")
        .order_by("phone_number", "pk")
    )


def last_used(user, team, numbers) -> SenderNumber | None:
    """Of ``numbers``, the one ``user`` sent their latest message in ``team`` from."""
    by_id = {number.pk: number for number in numbers}
    latest = (
        OutboundMessage.objects.filter(team=team, created_by=user, sender_number_id__in=by_id)
        .order_by("-created_at")
        .values_list("sender_number_id", flat=True)
        .first()
    )
    return by_id.get(latest)


def sender_refusal(number: SenderNumber, *, with_files: bool) -> str | None:
    """Why ``number`` cannot send this message, or None when it can."""
    shown = format_number(number.phone_number)
    if number.is_fax:
        return f"{shown} is a fax number: RingCentral sends no text messages from fax numbers."
    if with_files and not number.can_mms:
        if number.is_toll_free:
            return (
                f"{shown} is toll-free: RingCentral sends no MMS (messages with files) from "
                "toll-free numbers. Choose a number that can send MMS, or remove the files."
            )
        return (
            f"{shown} is not enabled for MMS (messages with files) in RingCentral. Choose a "
            "number that can send MMS, or remove the files."
        )
    if not number.can_sms:
        return f"{shown} is not enabled for text messages in RingCentral. Choose another number."
    return None


def sender_note(number: SenderNumber) -> str:
    """A short label suffix for the sender list (which offers only numbers that can text):
    what the number cannot do."""
    if number.is_toll_free:
        return "toll-free: text only, no files"
    if not number.can_mms:
        return "text only, no files"
    return ""


def find_sender(user, team, value) -> SenderNumber | None:
    """The sender number ``value`` names (a SenderNumber, its id, or its phone number as typed)
    among those ``user`` may use in ``team``; None when it is none of them."""
    numbers = sender_numbers(user, team)
    if isinstance(value, SenderNumber):
        return numbers.filter(pk=value.pk).first()
    text = str(value or "").strip()
    if not text:
        return None
    # ASCII digits only ("²".isdigit() is true), and few enough for a database integer.
    if re.fullmatch(r"[0-9]{1,18}", text):
        found = numbers.filter(pk=int(text)).first()
        if found is not None:
            return found
    parsed = parse_recipients(text)
    if len(parsed.numbers) != 1:
        return None
    candidates = list(numbers.filter(phone_number=parsed.numbers[0]))
    # The same line may be reachable through two links; prefer the user's own.
    candidates.sort(key=lambda n: n.connection.linked_by_id != user.pk)
    return candidates[0] if candidates else None
