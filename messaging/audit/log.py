"""Writing an audit entry and knowing who acts (see the package docstring)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from messaging.core.addresses import client_ip
from messaging.models import SYSTEM, AuditAction, AuditEntry

# The request being answered, set by messaging.audit.middleware for its duration.
current_request: ContextVar = ContextVar("audit_request", default=None)
# The user a command or task acts for (`acting_as`), outside any request.
_acting_user: ContextVar = ContextVar("audit_acting_user", default=None)


@contextmanager
def acting_as(user) -> Iterator[None]:
    """Entries recorded inside the block name `user` as the actor (a management command
    run for someone); None means "system"."""
    token = _acting_user.set(user)
    try:
        yield
    finally:
        _acting_user.reset(token)


def _target_fields(target) -> dict:
    """A model instance, or a (type, id, label) tuple, as the entry's three target columns."""
    if target is None:
        return {}
    if isinstance(target, tuple):
        kind, ident, label = target
    else:
        kind, ident, label = target._meta.model_name, target.pk, str(target)
    return {
        "target_type": str(kind)[:40],
        "target_id": "" if ident is None else str(ident)[:64],
        "target_label": str(label)[:200],
    }


def _actor_fields() -> dict:
    request = current_request.get()
    user = _acting_user.get()
    fields: dict = {}
    if request is not None:
        request_user = getattr(request, "user", None)
        if user is None and request_user is not None and request_user.is_authenticated:
            user = request_user
        fields["ip"] = client_ip(request) or None
        # Read now, not when the request came in: the API authenticates inside its view.
        api_key = getattr(request, "api_key", None)
        if api_key is not None:
            fields["api_key_prefix"] = str(api_key.prefix)[:32]
            fields["api_key_name"] = str(api_key.name)[:100]
    fields["actor"] = user
    fields["actor_label"] = (user.email or user.get_username()) if user is not None else SYSTEM
    return fields


def _entry(action, team, target, details, actor: dict) -> AuditEntry:
    return AuditEntry(
        action=AuditAction(action),
        team_id=getattr(team, "pk", team),
        team_name=getattr(team, "name", "")[:100],
        details=details or {},
        **_target_fields(target),
        **actor,
    )


def record(
    action: AuditAction | str, *, team=None, target=None, details: dict | None = None
) -> AuditEntry:
    """Append one entry. Call it inside the transaction of the change it records, so the
    entry and the change commit or roll back together. `team` is a Team or its id; `target`
    a model instance or a (type, id, label) tuple; `details` a small JSON-able dict."""
    entry = _entry(action, team, target, details, _actor_fields())
    entry.save()
    return entry


def record_each(action: AuditAction | str, *, team, items) -> list[AuditEntry]:
    """One entry per `(target, details)` in `items`, all by the same actor, in one INSERT (a
    message sent separately to many people is many entries, not many statements)."""
    actor = _actor_fields()
    return AuditEntry.objects.bulk_create(
        [_entry(action, team, target, details, actor) for target, details in items]
    )
