"""Asking the ledger before sending: which of these numbers may not be texted from here?

The records that apply to a send from team number F through RingCentral account A to contact
number T are the team's own (account blank) and account A's, for F itself or for every number
("*"). Of those, the latest change wins: a STOP to F followed by a START to F opts back in, and
a person opting a contact back in by hand lifts an older opt-out from any source.
"""

from collections.abc import Iterable

from messaging.models import EVERY_NUMBER, ConsentRecord, ConsentState

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
        ).only("contact_number", "state", "source", "changed_at", "from_number", "note")
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
