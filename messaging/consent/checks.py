"""Asking the ledger before sending: which of these numbers may not be texted from here?

The records that apply to a send from team number F through RingCentral account A to contact
number T are the team's own (account blank) and account A's, for F itself or for every number
("*"). Of those, the latest change wins: a STOP to F followed by a START to F opts back in, and
a person opting a contact back in by hand lifts an older opt-out from any source.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from messaging.core.phones import format_number
from messaging.models import EVERY_NUMBER, ConsentRecord, ConsentSource, ConsentState

# Numbers per query: a 10,000-recipient send asks ten times.
CHUNK = 1000


def opted_out(
    team_id: int, numbers: Iterable[str], *, from_number: str, account_id: str = ""
) -> dict[str, ConsentRecord]:
    """The numbers among `numbers` that are opted out for a send from `from_number` through
    `account_id` in the team, each with the record that says so."""
    wanted = sorted({number for number in numbers if number})
    latest: dict[str, ConsentRecord] = {}
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        records = ConsentRecord.objects.filter(
            team_id=team_id,
            account_id__in=sorted({"", account_id or ""}),
            from_number__in=[from_number, EVERY_NUMBER],
            contact_number__in=chunk,
        ).only(
            "contact_number", "state", "source", "changed_at", "from_number", "account_id", "note"
        )
        for found in records:
            known = latest.get(found.contact_number)
            if known is None or (found.changed_at, found.pk) > (known.changed_at, known.pk):
                latest[found.contact_number] = found
    return {
        number: found for number, found in latest.items() if found.state == ConsentState.OPTED_OUT
    }


def state_of(team_id: int, number: str) -> list[ConsentRecord]:
    """Every record the team holds for one contact number, latest change first (the contact
    page and the admin show them with their history)."""
    return list(
        ConsentRecord.objects.filter(team_id=team_id, contact_number=number).order_by(
            "-changed_at", "-pk"
        )
    )


# --- Refusals, as people read them ---------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """A recipient who may not be texted from a number, with the record that says so and the
    sentence shown to the sender."""

    number: str
    record: ConsentRecord
    message: str


def refusals(
    team_id: int,
    numbers: Sequence[str],
    *,
    from_number: str,
    account_id: str = "",
    names_for: Callable[[int, list[str]], dict[str, str]] | None = None,
) -> list[Refusal]:
    """The opted-out numbers among `numbers`, in their order, each explained. `names_for`
    (the address book's, from rooms above) names the contacts in the sentences."""
    found = opted_out(team_id, numbers, from_number=from_number, account_id=account_id)
    names = names_for(team_id, list(found)) if names_for and found else {}
    return [
        Refusal(
            number,
            found[number],
            explain(number, found[number], from_number, name=names.get(number, "")),
        )
        for number in dict.fromkeys(numbers)
        if number in found
    ]


def refused_at_send(message) -> list[Refusal]:
    """The recipients of an outbox message that opted out since it was queued: asked right
    before the message is posted. A message with any refusal is not posted (a group message
    cannot leave a member out; a separate message has one recipient)."""
    numbers = [r.phone_number for r in message.recipients.all()]
    if not any_opted_out(message.team_id, numbers):
        return []
    return refusals(
        message.team_id,
        numbers,
        from_number=message.from_number,
        account_id=message.connection.account_id,
    )


def any_opted_out(team_id: int, numbers: Sequence[str]) -> bool:
    """Has the team any opt-out at all, in any scope, for one of `numbers`? Asked by every send
    before the full check: nearly always no, and then the answer is one indexed probe in SQL
    written here rather than a query the ORM builds per send (the send path is counted in
    fractions of a millisecond, docs/benchmarks.md "Sending")."""
    numbers = list(dict.fromkeys(numbers))
    if not numbers:
        return False
    if len(numbers) > CHUNK:
        return True  # the full check reads them chunk by chunk
    table = connection.ops.quote_name(ConsentRecord._meta.db_table)
    placeholders = ", ".join(["%s"] * len(numbers))
    # Only the table's quoted name and placeholders are formatted in; values go as parameters.
    sql = f"SELECT 1 FROM {table} WHERE team_id = %s AND state = %s"  # noqa: S608
    sql += f" AND contact_number IN ({placeholders}) LIMIT 1"
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [team_id, ConsentState.OPTED_OUT.value, *numbers],
        )
        return cursor.fetchone() is not None


def explain(number: str, record: ConsentRecord, from_number: str, *, name: str = "") -> str:
    """ "Pat Doe (+1 650-555-0150) opted out of texts from +1 650-555-0100 on 2026-12-01
    (replied STOP).\""""
    if record.from_number == EVERY_NUMBER:
        sender = "any number of this RingCentral account"
        if not record.account_id:
            sender = "any of the team's numbers"
    else:
        sender = format_number(record.from_number or from_number)
    day = timezone.localdate(record.changed_at).isoformat()
    return f"{_who(number, name)} opted out of texts from {sender} on {day} ({_why(record)})."


def _who(number: str, name: str = "") -> str:
    """Who a number is, for a sentence: "Pat Doe (+1 650-555-0150)", or the number alone."""
    return f"{name} ({format_number(number)})" if name else format_number(number)


def _why(record: ConsentRecord) -> str:
    note = (record.note or "").strip()
    if record.source == ConsentSource.KEYWORD:
        return (note[:1].lower() + note[1:]) if note else "texted an opt-out keyword"
    if record.source == ConsentSource.RINGCENTRAL:
        return "on RingCentral's opt-out list"
    if record.source == ConsentSource.DELIVERY_REPORT:
        return f"RingCentral refused a message to them{': ' + note if note else ''}"
    if record.source == ConsentSource.IMPORT:
        return f"imported{': ' + note if note else ''}"
    return f"set by hand{': ' + note if note else ''}"
