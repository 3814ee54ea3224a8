"""Who may see and do what: the only place that decides.

Every view that touches team data gets its Membership from one of these two helpers and then
filters querysets by `membership.team`. A team the user is not in does not exist for them
(404, never 403, so outsiders learn nothing); a member whose role is too low gets 403.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404

from messaging.models import Membership, Role


def _membership(request, slug=None) -> Membership:
    if not request.user.is_authenticated:
        raise Http404
    if slug is None:
        membership = request.membership
        if membership is None:
            raise Http404
        return membership
    if "\x00" in slug:
        # A slug from a form field, not the URL: PostgreSQL refuses NUL in a query (an error,
        # not "no such team"), and no slug contains it.
        raise Http404
    try:
        return Membership.objects.select_related("team").get(user=request.user, team__slug=slug)
    except Membership.DoesNotExist:
        raise Http404 from None


def get_team_for_user(request, slug=None) -> Membership:
    """The membership of a team the user may read (any role): the current team when no slug."""
    return _membership(request, slug)


def get_rw_team_for_user(request, slug=None, role: str = Role.SENDER) -> Membership:
    """The membership of a team in which the user holds at least `role`; 404 / 403 otherwise."""
    membership = _membership(request, slug)
    if not membership.can(role):
        raise PermissionDenied(
            f"This needs the {Role(role).label.lower()} role in {membership.team}."
        )
    return membership
