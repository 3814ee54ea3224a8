"""Team API keys: made and revoked by team admins (the keys page, `manage.py create_api_key`),
and the key of a request found again.

A key is `mp_live_` followed by 32 random bytes in URL-safe base64. Only its SHA-256 digest is
stored: the secret is random and long, so a fast unsalted digest cannot be reversed or guessed
(no dictionary applies, unlike a password), and it lets a request's key be found with one
indexed lookup instead of a slow password hash on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from messaging import audit
from messaging.models import ApiKey, AuditAction, Membership, Role

KEY_PREFIX = "mp_live_"
# Characters of the key kept in clear to recognise it on the keys page (prefix + 8).
SHOWN = len(KEY_PREFIX) + 8
# The last-used time is written at most this often per key, so most requests write nothing.
LAST_USED_EVERY = timedelta(minutes=1)
ROLES = (Role.VIEWER, Role.SENDER, Role.ADMIN)


class KeyRefused(ValueError):
    """The key cannot be made or revoked; `str(error)` says why, `field` which input."""

    def __init__(self, message: str, field: str = "role"):
        self.field = field
        super().__init__(message)


@dataclass
class NewKey:
    api_key: ApiKey
    secret: str  # shown once, never stored


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def create_key(membership: Membership, *, name: str, role: str = Role.SENDER) -> NewKey:
    """A new key of the member's team acting with `role` as them. Team admins only; the role
    at most the maker's own (an owner's keys are admins at most)."""
    if not membership.can(Role.ADMIN):
        raise KeyRefused("Only team admins make API keys.")
    if role not in ROLES:
        raise KeyRefused("Choose the key's role: viewer, sender or admin.")
    if not membership.can(role):
        raise KeyRefused(f"A key's role cannot be above your own ({membership.role}).")
    name = " ".join((name or "").split())[:100]
    if not name or "\x00" in name:
        raise KeyRefused("Give the key a name, such as the system that will use it.", "name")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            team=membership.team,
            created_by=membership.user,
            name=name,
            prefix=secret[:SHOWN],
            key_hash=digest(secret),
            role=role,
        )
        audit.record(
            AuditAction.API_KEY_CREATED,
            team=membership.team,
            target=("apikey", api_key.pk, f"{name} ({api_key.prefix}…)"),
            details={"role": role},
        )
    return NewKey(api_key, secret)


def revoke_key(membership: Membership, api_key: ApiKey) -> bool:
    """Revoke a key of the member's team (admins only); False if it was revoked already."""
    if not membership.can(Role.ADMIN) or api_key.team_id != membership.team_id:
        raise KeyRefused("Only the team's admins revoke its API keys.")
    now = timezone.now()
    with transaction.atomic():
        revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=now, revoked_by=membership.user
        )
        if revoked:
            api_key.revoked_at, api_key.revoked_by = now, membership.user
            audit.record(
                AuditAction.API_KEY_REVOKED,
                team=membership.team,
                target=("apikey", api_key.pk, f"{api_key.name} ({api_key.prefix}…)"),
            )
    return bool(revoked)


def team_keys(team):
    return ApiKey.objects.filter(team=team).select_related("created_by", "revoked_by")


def effective_role(key_role: str, member_role: str) -> str:
    """A key never does more than its maker may do now (a maker demoted since, demotes it)."""
    return key_role if Role.rank(key_role) <= Role.rank(member_role) else member_role


def find_key(secret: str) -> tuple[ApiKey, Membership] | None:
    """The active key and its acting membership (role: the key's, capped by its maker's), or
    None for a key that is unknown, revoked, or whose maker left the team."""
    if not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        return None
    maker_role = Membership.objects.filter(
        team_id=OuterRef("team_id"), user_id=OuterRef("created_by_id")
    ).values("role")[:1]
    # One query: the key, its team, its maker and the maker's role in the team now.
    api_key = (
        ApiKey.objects.select_related("team", "created_by")
        .annotate(member_role=Subquery(maker_role))
        .filter(key_hash=digest(secret), revoked_at__isnull=True)
        .first()
    )
    if api_key is None or not api_key.created_by.is_active:
        return None
    member_role = api_key.member_role
    if member_role is None:  # the maker left the team
        return None
    acting = Membership(
        team=api_key.team,
        user=api_key.created_by,
        role=effective_role(api_key.role, member_role),
    )
    return api_key, acting


def touch(api_key: ApiKey) -> None:
    """Record that the key was used, at most once a minute per key."""
    now = timezone.now()
    if api_key.last_used_at is not None and now - api_key.last_used_at < LAST_USED_EVERY:
        return
    ApiKey.objects.filter(pk=api_key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_EVERY)
    ).update(last_used_at=now)
    api_key.last_used_at = now
