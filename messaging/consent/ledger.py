"""Writing the consent ledger: every source (RingCentral's consent list, delivery reports,
keywords, a person, an import) records a state through `record`, which keeps the history."""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging.consent.signals import consent_changed
from messaging.models import EVERY_NUMBER, ConsentChange, ConsentRecord, ConsentSource, ConsentState


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
    ConsentChange.objects.create(
        record=current,
        state=current.state,
        source=current.source,
        changed_at=current.changed_at,
        changed_by_id=current.changed_by_id,
        note=current.note,
    )
