from django.utils.functional import SimpleLazyObject

from messaging.teams import actions


def _current_membership(request):
    if not request.user.is_authenticated:
        return None
    return actions.current_membership(request.user, request.session.get(actions.SESSION_KEY))


class CurrentTeamMiddleware:
    """Puts the user's current team membership on `request.membership`, resolved lazily so
    requests that never look at it (static files, /healthz) cost no query."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.membership = SimpleLazyObject(lambda: _current_membership(request))
        return self.get_response(request)
