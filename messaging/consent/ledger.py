"""Writing the consent ledger: every source (RingCentral's consent list, delivery reports,
keywords, a person, an import) records a state through `record`, which keeps the history."""

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging import audit
from messaging.consent.signals import consent_changed
from messaging.models import (
    EVERY_NUMBER,
    AuditAction,
    ConsentChange,
    ConsentRecord,
    ConsentSource,
    ConsentState,
)


def record(
    team,
    contact_number: str,
    state: ConsentState,
    source: ConsentSource,
    *,
    account_id: str = "",
    from_number: str = EVERY_NUMBER,
    by=None,
    note: str = "",
    at: datetime | None = None,
) -> tuple[ConsentRecord, bool]:
    """Set the state of `contact_number` towards (`account_id`, `from_number`) in `team`.

    Returns the record and whether its state changed. A change older than the record's last
    one is ignored (RingCentral's list and its events may arrive out of order), and recording
    the state a record already has changes nothing and adds no history."""
    at = at or timezone.now()
    team_id = getattr(team, "pk", team)
    scope = {
        "team_id": team_id,
        "account_id": account_id or "",
        "from_number": from_number or EVERY_NUMBER,
        "contact_number": contact_number,
    }
    by_id = getattr(by, "pk", by)
    with transaction.atomic():
        current = ConsentRecord.objects.select_for_update().filter(**scope).first()
        if current is None:
            try:
                with transaction.atomic():
                    current = ConsentRecord.objects.create(
                        **scope,
                        state=state,
                        source=source,
                        changed_at=at,
                        changed_by_id=by_id,
                        note=note[:200],
                    )
            except IntegrityError:
                # Another writer created it meanwhile: fall through to the update below.
                current = ConsentRecord.objects.select_for_update().get(**scope)
            else:
                _remember(current)
                return current, True
        if current.state == state or current.changed_at > at:
            return current, False
        current.state = state
        current.source = source
        current.changed_at = at
        current.changed_by_id = by_id
        current.note = note[:200]
        current.save(update_fields=["state", "source", "changed_at", "changed_by", "note"])
        _remember(current)
        return current, True


def _remember(current: ConsentRecord) -> None:
    consent_changed.send(sender=ConsentRecord, record=current)
    audit.record(
        AuditAction.CONSENT_OPTED_OUT if current.opted_out else AuditAction.CONSENT_OPTED_IN,
        team=current.team_id,
        target=("number", current.contact_number, current.contact_number),
        details={"from": current.from_number, "source": current.source, "note": current.note},
    )
    ConsentChange.objects.create(
        record=current,
        state=current.state,
        source=current.source,
        changed_at=current.changed_at,
        changed_by_id=current.changed_by_id,
        note=current.note,
    )


@dataclass(frozen=True)
class NewRecord:
    """A record for `record_new`: a scope the ledger holds nothing for yet."""

    contact_number: str
    state: ConsentState
    source: ConsentSource
    account_id: str = ""
    from_number: str = EVERY_NUMBER
    note: str = ""
    at: datetime | None = None


BULK = 1000


def record_new(team, records: list[NewRecord]) -> int:
    """Create many records the caller found missing (a whole consent list read for the first
    time), each with its first history line, in a few statements per thousand. When another
    writer created one of them meanwhile, that batch is recorded one by one through `record`
    instead. Returns how many records were created or changed."""
    team_id = getattr(team, "pk", team)
    now = timezone.now()
    done = 0
    for start in range(0, len(records), BULK):
        batch = records[start : start + BULK]
        rows = [
            ConsentRecord(
                team_id=team_id,
                account_id=r.account_id or "",
                from_number=r.from_number or EVERY_NUMBER,
                contact_number=r.contact_number,
                state=r.state,
                source=r.source,
                changed_at=r.at or now,
                note=r.note[:200],
            )
            for r in batch
        ]
        try:
            with transaction.atomic():
                created = ConsentRecord.objects.bulk_create(rows)
                ConsentChange.objects.bulk_create(
                    ConsentChange(
                        record=row,
                        state=row.state,
                        source=row.source,
                        changed_at=row.changed_at,
                        note=row.note,
                    )
                    for row in created
                )
                for row in created:
                    consent_changed.send(sender=ConsentRecord, record=row)
            done += len(created)
        except IntegrityError:
            for r in batch:
                _, changed = record(
                    team_id,
                    r.contact_number,
                    r.state,
                    r.source,
                    account_id=r.account_id,
                    from_number=r.from_number,
                    note=r.note,
                    at=r.at,
                )
                done += changed
    return done
