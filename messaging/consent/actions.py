"""Changes a person makes on the Consent pages, and who may make them (team admins)."""

from django.core.exceptions import PermissionDenied
from django.db.models import Q

from messaging.consent import ledger
from messaging.models import (
    EVERY_NUMBER,
    ConsentRecord,
    ConsentSource,
    ConsentState,
    Role,
    TeamMessagingSettings,
)

# Shown on the Consent page: the latest opt-outs first.
PAGE_SIZE = 200


def _require_admin(membership) -> None:
    if not membership.can(Role.ADMIN):
        raise PermissionDenied("Changing consent needs the admin role.")


def set_by_hand(membership, number: str, *, opted_out: bool, note: str = ""):
    """A team admin opts `number` out of texts from every team number, or back in (which lifts
    any older opt-out, from any source). Written to RingCentral's consent list after commit
    (messaging/tracking/receivers.py). Returns (record, changed)."""
    _require_admin(membership)
    return ledger.record(
        membership.team,
        number,
        ConsentState.OPTED_OUT if opted_out else ConsentState.OPTED_IN,
        ConsentSource.MANUAL,
        by=membership.user,
        note=note,
    )


def save_settings(membership, form) -> TeamMessagingSettings:
    """Save a valid settings form (two admins saving at once: the later one wins, no error)."""
    _require_admin(membership)
    fields = {name: form.cleaned_data[name] for name in form.Meta.fields}
    found, _ = TeamMessagingSettings.objects.update_or_create(
        team=membership.team, defaults={**fields, "updated_by": membership.user}
    )
    return found


def opted_out_records(team, query: str = "") -> list[ConsentRecord]:
    """The team's opt-outs in force, latest first: records that say "opted out" and that no
    later opt-in covering them lifted (a contact opted out towards several numbers shows once
    per number). Two queries."""
    records = ConsentRecord.objects.filter(team=team, state=ConsentState.OPTED_OUT)
    digits = "".join(ch for ch in query if ch.isdigit())[:15]
    if digits:
        records = records.filter(Q(contact_number__contains=digits))
    found = list(records.select_related("changed_by").order_by("-changed_at", "-pk")[:PAGE_SIZE])
    opt_ins = ConsentRecord.objects.filter(
        team=team,
        state=ConsentState.OPTED_IN,
        contact_number__in={r.contact_number for r in found},
    ).only("account_id", "from_number", "contact_number", "changed_at")
    lifting: dict[str, list[ConsentRecord]] = {}
    for opt_in in opt_ins:
        lifting.setdefault(opt_in.contact_number, []).append(opt_in)
    return [r for r in found if not any(_lifts(i, r) for i in lifting.get(r.contact_number, ()))]


def _lifts(opt_in: ConsentRecord, opt_out: ConsentRecord) -> bool:
    covers_account = opt_in.account_id in ("", opt_out.account_id)
    covers_number = opt_in.from_number in (EVERY_NUMBER, opt_out.from_number)
    return covers_account and covers_number and opt_in.changed_at > opt_out.changed_at
