"""What happens to a `RingCentralConnection` over its life: link, share, sync numbers, disconnect.

Views and tasks call these; permission checks are the caller's job
(messaging/teams/permissions.py). Linking and disconnecting send the signals in
messaging/links/signals.py, so that other rooms (webhook subscriptions) follow the link
without this room knowing them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from messaging import audit
from messaging.links import signals, tokens
from messaging.models import (
    AuditAction,
    ConnectionShare,
    ConnectionStatus,
    RingCentralConnection,
    Role,
    SenderNumber,
    Team,
)
from messaging.ringcentral import errors, oauth
from messaging.ringcentral.client import ExtensionInfo, RingCentralClient

log = logging.getLogger(__name__)


def visible_to(queryset, user, membership):
    """Connections of `queryset` the user may see: their own and shared ones; admins see all."""
    if membership.can(Role.ADMIN):
        return queryset
    return queryset.filter(Q(linked_by=user) | Q(shared_with_team=True))


def brought_into(team):
    """Links of other teams that their linking user lets ``team`` use (ConnectionShare)."""
    return RingCentralConnection.objects.filter(shares__team=team)


def usable_for(user, team):
    """The usable links ``user`` may send from in ``team``: the team's own that are theirs or
    shared with the team, and those brought into the team."""
    own = Q(team=team) & (Q(linked_by=user) | Q(shared_with_team=True))
    brought_in = Exists(ConnectionShare.objects.filter(connection=OuterRef("pk"), team=team))
    return RingCentralConnection.objects.filter(
        own | brought_in, status__in=RingCentralConnection.USABLE_STATUSES
    )


def bring_into(connection, team, user) -> bool:
    """Let ``team`` use ``connection`` without linking RingCentral again; False if it already
    can. The caller checks that ``user`` linked it and may send in ``team``."""
    if connection.team_id == team.pk:
        return False
    with transaction.atomic():
        _, created = ConnectionShare.objects.get_or_create(
            connection=connection, team=team, defaults={"shared_by": user}
        )
        if created:
            audit.record(AuditAction.RINGCENTRAL_BROUGHT, team=team, target=connection)
    return created


def teams_to_bring_into(connection, user):
    """Teams of ``user`` (sender or above) that could use ``connection`` but do not yet."""
    return (
        Team.objects.filter(
            memberships__user=user,
            memberships__role__in=[r for r in Role.values if Role.at_least(r, Role.SENDER)],
        )
        .exclude(pk=connection.team_id)
        .exclude(connection_shares__connection=connection)
        .order_by("name")
    )


@dataclass(frozen=True)
class TeamHealth:
    """What every page needs to know about the current team's links (banner, dashboard)."""

    broken: list
    usable_in_team: bool
    usable_for_user: bool


def team_health(user, membership) -> TeamHealth:
    team = membership.team
    team_qs = RingCentralConnection.objects.filter(team_id=membership.team_id)
    mine = visible_to(team_qs, user, membership) | brought_into(team)
    usable = RingCentralConnection.USABLE_STATUSES
    return TeamHealth(
        broken=list(
            mine.filter(status=ConnectionStatus.BROKEN).select_related("linked_by").distinct()
        ),
        usable_in_team=(team_qs | brought_into(team)).filter(status__in=usable).exists(),
        usable_for_user=usable_for(user, team).exists(),
    )


def link(team, user, token_set: oauth.TokenSet, *, origin: str = ""):
    """Create or update the team's connection for the RingCentral user the tokens belong to.

    Reads the extension and account with the new token, then stores everything in one
    transaction. Linking an extension the team already has (even a broken or disconnected
    one) updates that row: new tokens, status `linked`, the linking user becomes its owner,
    the sharing choice is kept. The session that row held before is revoked at RingCentral
    afterwards (best effort), since RingCentral caps parallel sessions per user.
    `origin` is the address the request linking it reached the portal at, for links in emails
    about it later. Returns `(connection, created)`.
    """
    reader = RingCentralClient.for_access_token(token_set.access_token)
    extension: ExtensionInfo = reader.get_extension()
    account = reader.get_account()

    for attempt in (1, 2):
        try:
            with transaction.atomic():
                connection = (
                    RingCentralConnection.objects.select_for_update()
                    .filter(team=team, account_id=account.id, extension_id=extension.id)
                    .first()
                )
                created = connection is None
                if created:
                    connection = RingCentralConnection(
                        team=team, account_id=account.id, extension_id=extension.id
                    )
                previous_refresh_token = "" if created else connection.refresh_token
                connection.linked_by = user
                if origin:
                    connection.origin = origin[:200]
                connection.extension_name = extension.name[:200]
                connection.extension_number = extension.extension_number[:32]
                connection.company_name = extension.company[:200]
                tokens.store_tokens(connection, token_set)
                connection.status = ConnectionStatus.LINKED
                connection.last_error = ""
                connection.disconnected_at = None
                connection.save()
                audit.record(
                    AuditAction.RINGCENTRAL_LINKED,
                    team=team,
                    target=connection,
                    details={"account": account.id, "extension": extension.id},
                )
            break
        except IntegrityError:
            # Another request linked the same extension into the same team between our read
            # and our insert; the second pass finds that row and updates it.
            if attempt == 2:
                raise

    if previous_refresh_token and previous_refresh_token != token_set.refresh_token:
        _revoke_quietly(connection.pk, previous_refresh_token)
    log.info(
        "RingCentral connection %s %s by user %s",
        connection.pk,
        "created" if created else "re-linked",
        user.pk,
    )
    signals.connection_linked.send(sender=RingCentralConnection, connection_id=connection.pk)
    return connection, created


@dataclass(frozen=True)
class SyncResult:
    added: int = 0
    updated: int = 0
    deactivated: int = 0

    @property
    def changed(self) -> int:
        return self.added + self.updated + self.deactivated


def sync_numbers(connection) -> SyncResult:
    """Bring the connection's SenderNumbers in line with RingCentral's phone-number list.

    New numbers are added; known ones get fresh labels, types, features and flags; a number
    that is gone or can no longer send SMS/MMS stays with `active=False` (history refers to
    it), and one that is gone loses its features. A High Volume number (`A2PSmsSender` without
    `SmsSender`) is kept inactive, since it sends no single texts; campaigns find it by its
    features.
    Raises `errors.RingCentralError` (nothing is changed then).
    """
    records = tokens.client_for(connection).list_numbers()
    now = timezone.now()
    added = updated = deactivated = 0
    with transaction.atomic():
        existing = {
            n.phone_number: n
            for n in SenderNumber.objects.select_for_update().filter(connection=connection)
        }
        seen = set()
        for record in records:
            seen.add(record.phone_number)
            values = {
                "rc_id": record.id[:32],
                "label": record.label[:200],
                "usage_type": record.usage_type[:40],
                "payment_type": record.payment_type[:40],
                "number_type": record.type[:20],
                "features": sorted(record.features),
                "can_sms": record.can_sms,
                "can_mms": record.can_mms,
                "is_toll_free": record.is_toll_free,
                "is_fax": record.is_fax,
                "active": record.can_sms or record.can_mms,
            }
            number = existing.get(record.phone_number)
            if number is None:
                SenderNumber.objects.create(
                    connection=connection,
                    phone_number=record.phone_number,
                    synced_at=now,
                    **values,
                )
                added += 1
                continue
            changed = any(getattr(number, key) != value for key, value in values.items())
            if number.active and not values["active"]:
                deactivated += 1
            elif changed:
                updated += 1
            for key, value in values.items():
                setattr(number, key, value)
            number.synced_at = now
            number.save()
        for phone_number, number in existing.items():
            if phone_number in seen:
                continue
            if number.active:
                deactivated += 1
            elif not number.features:
                continue
            # RingCentral lists it no more, so it has no features now; a High Volume number
            # (inactive for single texts, told apart by its features) stops being one too.
            number.active = False
            number.features = []
            number.synced_at = now
            number.save(update_fields=["active", "features", "synced_at"])
        RingCentralConnection.objects.filter(pk=connection.pk).update(numbers_synced_at=now)
        signals.numbers_synced.send(sender=RingCentralConnection, connection_id=connection.pk)
    connection.numbers_synced_at = now
    return SyncResult(added=added, updated=updated, deactivated=deactivated)


def set_shared(connection, shared: bool) -> None:
    with transaction.atomic():
        RingCentralConnection.objects.filter(pk=connection.pk).update(
            shared_with_team=shared, updated_at=timezone.now()
        )
        action = AuditAction.RINGCENTRAL_SHARED if shared else AuditAction.RINGCENTRAL_UNSHARED
        audit.record(action, team=connection.team, target=connection)
    connection.shared_with_team = shared


def disconnect(connection) -> None:
    """Revoke at RingCentral (failure logged and ignored), delete the tokens, keep the row.

    The row stays with status `disconnected` because messages sent through it refer to it;
    its numbers become inactive. Linking the same extension again revives it.
    """
    # While the token still works: RingCentral would otherwise keep notifying us.
    signals.connection_disconnecting.send(sender=RingCentralConnection, connection=connection)
    with transaction.atomic():
        locked = RingCentralConnection.objects.select_for_update().get(pk=connection.pk)
        token = locked.refresh_token or locked.access_token
        locked.access_token = ""
        locked.refresh_token = ""
        locked.access_expires_at = None
        locked.refresh_expires_at = None
        locked.status = ConnectionStatus.DISCONNECTED
        locked.last_error = ""
        locked.disconnected_at = timezone.now()
        locked.save()
        locked.numbers.filter(active=True).update(active=False)
        audit.record(AuditAction.RINGCENTRAL_UNLINKED, team=locked.team, target=locked)
    _revoke_quietly(connection.pk, token)
    connection.refresh_from_db()


def _revoke_quietly(connection_id: int, token: str) -> None:
    # RingCentral asks clients not to retry a failed revoke; the session then simply expires.
    try:
        oauth.revoke(token)
    except errors.RingCentralError as exc:
        log.warning("Revoking RingCentral session of connection %s failed: %s", connection_id, exc)
