"""Who a request acts as: a team API key (`Authorization: Bearer <key>`) or, for the browser,
the signed-in session (with its CSRF check); the role a view needs; the per-key throttle.

Whatever authenticated the request, the Django request carries `membership` (the team and
role it acts with) and `user`; a key's request also carries `api_key`, which the audit log
reads from there.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling

from messaging.api import keys
from messaging.models import Role


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send the key as “Authorization: Bearer <key>”.")
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The API key is not valid.") from None
        found = keys.find_key(secret)
        if found is None:
            raise exceptions.AuthenticationFailed(
                "The API key is not valid: unknown, revoked, or its maker left the team."
            )
        api_key, membership = found
        django_request = request._request
        django_request.api_key = api_key
        django_request.user = membership.user
        django_request.membership = membership
        keys.touch(api_key)
        return membership.user, api_key

    def authenticate_header(self, request):
        return self.keyword


class SessionAuthentication(authentication.SessionAuthentication):
    """The browser's session, CSRF-checked on unsafe methods, acting in the current team."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            request._request.api_key = None
        return result


def membership_of(request):
    """The membership a request acts with (set by the authentication above or, for a session,
    by the current-team middleware); None when it has none."""
    membership = getattr(request._request, "membership", None)
    if membership is None or not getattr(membership, "team_id", None):
        return None
    return membership


class TeamMember(permissions.BasePermission):
    """Any member of a team; views ask for a higher role themselves (`require`)."""

    message = "Authenticate with an API key (Authorization: Bearer <key>)."

    def has_permission(self, request, view):
        if request.user is None or not request.user.is_authenticated:
            return False
        if membership_of(request) is None:
            raise exceptions.NotFound("You are in no team.")
        return True


def require(membership, role: str, what: str) -> None:
    if not membership.can(role):
        raise exceptions.PermissionDenied(
            f"{what} needs the {Role(role).label.lower()} role; this key or member has "
            f"the {Role(membership.role).label.lower()} role."
        )


class PerKeyThrottle(throttling.SimpleRateThrottle):
    """API_THROTTLE_RATE requests per key (per user for a browser session), read per request
    so a changed setting applies at once."""

    scope = "api"

    def get_rate(self):
        return settings.API_THROTTLE_RATE

    def allow_request(self, request, view):
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        api_key = getattr(request._request, "api_key", None)
        if api_key is not None:
            ident = f"key-{api_key.pk}"
        elif request.user is not None and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"ip-{self.get_ident(request)}"
        return f"throttle_api_{ident}"


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A team API key."}


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = SessionAuthentication
    name = "Session"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
