"""Team operations: creating teams, resolving the current team, and membership changes.

Views call these functions; they hold the rules (a personal team per user, exactly one owner,
who may grant which role, who may leave). Which team a request may touch at all is decided by
messaging/teams/permissions.py; the rules here judge one member acting on another inside that team.
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import Http404
from django.utils import timezone
from django.utils.text import slugify

from messaging import audit
from messaging.models import AuditAction, Membership, Role, Team

# Where the session remembers the team the user switched to (read by middleware.py).
SESSION_KEY = "current_team_id"

# Words that sit beside /teams/<slug>/ in the URL map; a team with such a slug would be hidden.
RESERVED_SLUGS = frozenset({"new", "switch"})


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "team"
    slug, n = base, 1
    while slug in RESERVED_SLUGS or Team.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def team_creation_refusal(user) -> str | None:
    """Why ``user`` may not create another team (sign-up is open, and each team may hold
    uploads: teams without end would be storage without end), or None."""
    owned = Membership.objects.filter(user=user, role=Role.OWNER, team__is_personal=False)
    count = owned.count()
    if count >= settings.TEAMS_PER_USER:
        return (
            f"You own {count} teams, the most one person may own on this portal. Hand one of "
            "them over to another member (Transfer ownership) before creating another."
        )
    return None


def create_team(owner, name: str, *, personal: bool = False) -> Team:
    for _ in range(5):
        try:
            with transaction.atomic():
                team = Team.objects.create(name=name, slug=_unique_slug(name), is_personal=personal)
                Membership.objects.create(team=team, user=owner, role=Role.OWNER)
                return team
        except IntegrityError:
            continue  # another request took the slug between the check and the insert
    raise RuntimeError("Could not find a free slug for the team")


def personal_team_name(user) -> str:
    return f"{(user.email or user.get_username()).split('@')[0]}'s team"


def ensure_personal_team(user) -> Team:
    team = Team.objects.filter(
        is_personal=True, memberships__user=user, memberships__role=Role.OWNER
    ).first()
    return team or create_team(user, personal_team_name(user), personal=True)


def current_membership(user, team_id=None) -> Membership:
    """The team the user works in: the one chosen this session, else the last one they switched
    to, else their personal team (created on first need for users made outside sign-up)."""
    memberships = Membership.objects.select_related("team").filter(user=user)
    if team_id is not None:
        chosen = memberships.filter(team_id=team_id).first()
        if chosen:
            return chosen
    latest = memberships.order_by(
        F("last_selected_at").desc(nulls_last=True), "-team__is_personal", "joined_at"
    ).first()
    if latest:
        return latest
    team = ensure_personal_team(user)
    return memberships.get(team=team)


def switch_team(request, membership: Membership) -> None:
    request.session[SESSION_KEY] = membership.team_id
    Membership.objects.filter(pk=membership.pk).update(last_selected_at=timezone.now())


# --- Membership rules -------------------------------------------------------------------------
# Each `*_refusal` function answers "why not?" (a sentence for the 403 page) or None when the
# change is allowed. Pages use them to decide which controls to show; the mutators below ask
# them again under a lock, so a stale page can never get a refused change through.


class TeamRuleError(PermissionDenied):
    """A role rule refused a change. The message is shown to the user on the 403 page."""


# Ownership moves only through transfer_ownership, never through an invitation or a role change.
GRANTABLE_ROLES = (Role.ADMIN, Role.SENDER, Role.VIEWER)


def grantable_roles(actor: Membership) -> list[str]:
    """The roles `actor` may give to others (by invitation or role change)."""
    if actor.role == Role.OWNER:
        return list(GRANTABLE_ROLES)
    if actor.role == Role.ADMIN:
        return [Role.SENDER, Role.VIEWER]
    return []


def invite_refusal(actor: Membership, role: str | None = None) -> str | None:
    if not actor.can(Role.ADMIN):
        return "Only the team's owner and admins can invite people."
    if actor.team.is_personal:
        return (
            "A personal team is yours alone, so nobody can be invited to it. "
            "Create a team to work with others."
        )
    if role == Role.OWNER:
        return "An invitation can't make someone the owner; the owner can transfer ownership."
    if role == Role.ADMIN and actor.role != Role.OWNER:
        return "Only the team's owner can invite admins."
    return None


def role_change_refusal(
    actor: Membership, target: Membership, new_role: str | None = None
) -> str | None:
    if not actor.can(Role.ADMIN):
        return "Only the team's owner and admins can change roles."
    if target.role == Role.OWNER:
        return "Nobody can change the owner's role. The owner can transfer ownership instead."
    if new_role == Role.OWNER:
        return "Ownership is handed over with “Transfer ownership”, not by changing a role."
    if actor.role != Role.OWNER and Role.ADMIN in (target.role, new_role):
        return "Only the team's owner can grant or remove the admin role."
    return None


def removal_refusal(actor: Membership, target: Membership) -> str | None:
    if target.pk == actor.pk:
        return "To leave the team yourself, use “Leave team”."
    if not actor.can(Role.ADMIN):
        return "Only the team's owner and admins can remove members."
    if target.role == Role.OWNER:
        return "Nobody can remove the team's owner."
    if target.role == Role.ADMIN and actor.role != Role.OWNER:
        return "Only the team's owner can remove an admin."
    return None


def leave_refusal(membership: Membership) -> str | None:
    if membership.team.is_personal:
        return "A personal team can't be left: it is where your own work lives."
    if membership.role == Role.OWNER:
        return (
            "You own this team, so you can't leave it yet. Transfer ownership to another "
            "member first; you will then be an admin and can leave."
        )
    return None


def transfer_refusal(actor: Membership, target: Membership | None = None) -> str | None:
    if actor.role != Role.OWNER:
        return "Only the team's owner can transfer ownership."
    if actor.team.is_personal:
        return "A personal team can't be handed over to someone else."
    if target is not None and target.pk == actor.pk:
        return "You already own this team. Choose another member."
    return None


def refuse_if(reason: str | None) -> None:
    if reason:
        raise TeamRuleError(reason)


def _lock_team(team: Team) -> Team:
    """Serialises every membership change of one team, so two admins acting at once are each
    judged against the other's result (e.g. two demotions cannot leave a stale role behind)."""
    return Team.objects.select_for_update().get(pk=team.pk)


def reload_locked(membership: Membership) -> Membership:
    """Re-reads a membership inside the lock: the role on the page may be out of date."""
    fresh = (
        Membership.objects.select_for_update()
        .select_related("team", "user")
        .filter(pk=membership.pk)
        .first()
    )
    if fresh is None:
        raise Http404("That person is no longer a member of this team.")
    return fresh


def rename_team(actor: Membership, name: str) -> Team:
    """Renames the team; its slug (and so every URL of it) stays as it was."""
    if not actor.can(Role.ADMIN):
        raise TeamRuleError("Only the team's owner and admins can rename it.")
    Team.objects.filter(pk=actor.team_id).update(name=name)
    actor.team.name = name
    return actor.team


def change_role(actor: Membership, target: Membership, new_role: str) -> Membership:
    with transaction.atomic():
        _lock_team(actor.team)
        actor, target = reload_locked(actor), reload_locked(target)
        refuse_if(role_change_refusal(actor, target, new_role))
        audit.record(
            AuditAction.MEMBER_ROLE_CHANGED,
            team=actor.team,
            target=("user", target.user_id, target.user.email),
            details={"from": target.role, "to": new_role},
        )
        target.role = new_role
        target.save(update_fields=["role"])
    return target


def remove_member(actor: Membership, target: Membership) -> None:
    with transaction.atomic():
        _lock_team(actor.team)
        actor, target = reload_locked(actor), reload_locked(target)
        refuse_if(removal_refusal(actor, target))
        audit.record(
            AuditAction.MEMBER_REMOVED,
            team=actor.team,
            target=("user", target.user_id, target.user.email),
            details={"role": target.role},
        )
        target.delete()


def leave_team(membership: Membership) -> None:
    with transaction.atomic():
        _lock_team(membership.team)
        membership = reload_locked(membership)
        refuse_if(leave_refusal(membership))
        audit.record(
            AuditAction.MEMBER_REMOVED,
            team=membership.team,
            target=("user", membership.user_id, membership.user.email),
            details={"role": membership.role, "left": True},
        )
        membership.delete()


def transfer_ownership(actor: Membership, target: Membership) -> None:
    """Makes `target` the owner and `actor` (the owner until now) an admin.

    The one-owner-per-team constraint is checked row by row, so the old owner is demoted
    before the new one is promoted, both inside one transaction: nobody ever sees a team with
    no owner or two.
    """
    with transaction.atomic():
        _lock_team(actor.team)
        actor, target = reload_locked(actor), reload_locked(target)
        if target.team_id != actor.team_id:
            raise Http404("That person is not a member of this team.")
        refuse_if(transfer_refusal(actor, target))
        Membership.objects.filter(pk=actor.pk).update(role=Role.ADMIN)
        Membership.objects.filter(pk=target.pk).update(role=Role.OWNER)
