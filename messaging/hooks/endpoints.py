"""A team's webhook endpoints: every change to them, who may make it, and which events a team
listens to (asked on the send path, so answered from the cache).

Only team admins change endpoints. The signing secret (`whsec_` and 24 random bytes in
base64, as Standard Webhooks describes) is returned once by `create` and `rotate_secret`
and otherwise only ever stored encrypted.
"""

from __future__ import annotations

import base64
import secrets

from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import transaction

from messaging import audit
from messaging.models import AuditAction, HookEvent, Role, WebhookEndpoint

# The per-team set of subscribed events. A change deletes it from the cache; with a cache
# shared by every process (CACHE_URL) that is at once, with the in-process default the other
# processes see it when their copy expires, within a minute.
_CACHE_KEY = "hooks:events:{team_id}"
_CACHE_SECONDS = 60


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def require_admin(membership) -> None:
    if not membership.can(Role.ADMIN):
        raise PermissionDenied("Webhooks are managed by the team's admins.")


def cached_events_of(team_id: int) -> frozenset[str] | None:
    """`events_of` from the cache alone: None when it is not known there (no query)."""
    found = cache.get(_CACHE_KEY.format(team_id=team_id))
    return None if found is None else frozenset(found)


def events_of(team_id: int) -> frozenset[str]:
    """The event types some enabled endpoint of the team picked (one cache read when known)."""
    key = _CACHE_KEY.format(team_id=team_id)
    found = cache.get(key)
    if found is None:
        found = set()
        for events in WebhookEndpoint.objects.filter(team_id=team_id, is_active=True).values_list(
            "events", flat=True
        ):
            found.update(events)
        found = sorted(found)
        cache.set(key, found, _CACHE_SECONDS)
    return frozenset(found)


def forget(team_id: int) -> None:
    """An endpoint of the team changed: the next `events_of` reads the table again (after the
    change commits, so no reader caches what is about to be rolled back or not yet written)."""
    key = _CACHE_KEY.format(team_id=team_id)
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))


def _target(endpoint: WebhookEndpoint) -> tuple:
    return ("webhookendpoint", endpoint.pk, endpoint.url)


def create(membership, *, url: str, description: str, events: list[str]):
    """A new endpoint and its secret (shown to the admin once)."""
    require_admin(membership)
    events = [HookEvent(e).value for e in events]
    secret = new_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint(
            team=membership.team,
            url=url,
            description=description,
            events=events,
            created_by=membership.user,
        )
        endpoint.secret = secret
        endpoint.save()
        audit.record(
            AuditAction.WEBHOOK_CREATED,
            team=membership.team,
            target=_target(endpoint),
            details={"events": ", ".join(events)},
        )
        forget(membership.team_id)
    return endpoint, secret


def rotate_secret(membership, endpoint: WebhookEndpoint) -> str:
    require_admin(membership)
    secret = new_secret()
    with transaction.atomic():
        endpoint.secret = secret
        endpoint.save(update_fields=["secret_ciphertext", "updated_at"])
        audit.record(
            AuditAction.WEBHOOK_SECRET_ROTATED, team=membership.team, target=_target(endpoint)
        )
    return secret


def set_active(membership, endpoint: WebhookEndpoint, active: bool) -> None:
    require_admin(membership)
    with transaction.atomic():
        endpoint.is_active = active
        endpoint.disabled_reason = "" if active else "Disabled by a team admin."
        endpoint.failing_since = None
        endpoint.save(update_fields=["is_active", "disabled_reason", "failing_since", "updated_at"])
        audit.record(
            AuditAction.WEBHOOK_CHANGED,
            team=membership.team,
            target=_target(endpoint),
            details={"enabled": active},
        )
        forget(membership.team_id)


def delete(membership, endpoint: WebhookEndpoint) -> None:
    require_admin(membership)
    with transaction.atomic():
        audit.record(AuditAction.WEBHOOK_REVOKED, team=membership.team, target=_target(endpoint))
        endpoint.delete()
        forget(membership.team_id)
