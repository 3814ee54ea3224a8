from django.conf import settings
from django.utils.functional import SimpleLazyObject

from messaging.inbox.listing import unread_conversations
from messaging.links.connections import team_health


def portal(request):
    """What the layout needs on every page: the current team, the user's teams, demo mode."""
    membership = getattr(request, "membership", None)
    context = {"demo_mode": settings.DEMO_MODE, "current_membership": None, "my_memberships": []}
    if getattr(request, "user", None) is not None and request.user.is_authenticated and membership:
        context["current_membership"] = membership
        context["my_memberships"] = list(
            request.user.memberships.select_related("team").order_by("team__name")
        )
        # Lazy: only pages that show the banner or the dashboard card pay for the queries.
        context["ringcentral_health"] = SimpleLazyObject(
            lambda: team_health(request.user, membership)
        )
        # Lazy too: the navigation's badge of conversations with unread messages.
        context["inbox_unread"] = SimpleLazyObject(lambda: unread_conversations(membership))
    return context
