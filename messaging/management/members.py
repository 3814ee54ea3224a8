"""Who a management command acts for: a user named by email, in the team named by slug (or
their only team), with messages an operator can act on."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from messaging.models import Membership


def membership_for(email: str, slug: str | None) -> Membership:
    """The active user's membership in team `slug` (their only team when `slug` is None);
    CommandError, naming their teams, otherwise."""
    user = get_user_model().objects.filter(email__iexact=email.strip()).first()
    if user is None or not user.is_active:
        raise CommandError(f"No active user with the email address “{email}”.")
    memberships = Membership.objects.filter(user=user).select_related("team", "user")
    if slug:
        membership = memberships.filter(team__slug=slug).first()
        if membership is None:
            raise CommandError(
                f"{user.email} is not a member of a team “{slug}”. Their teams: "
                f"{_slugs(memberships) or 'none'}."
            )
        return membership
    found = list(memberships[:2])
    if not found:
        raise CommandError(f"{user.email} is not a member of any team.")
    if len(found) > 1:
        raise CommandError(
            f"{user.email} belongs to several teams ({_slugs(memberships)}); "
            "choose one with --team."
        )
    return found[0]


def _slugs(memberships) -> str:
    return ", ".join(m.team.slug for m in memberships.order_by("team__slug"))
