"""RingCentral OAuth: the authorize URL, the code exchange, refresh under a row lock, revoke.

Linking (views/ringcentral.py drives it):
    1. `start_authorization(redirect_uri)` -> URL to send the browser to, plus `state` and the
       PKCE `code_verifier` that the caller keeps server-side (session) until the callback.
    2. `exchange_code(code, redirect_uri, code_verifier)` -> `TokenSet` (HTTP Basic client auth).

Using a link:
    `fresh_access_token(connection_id)` returns an access token that is valid for at least
    `settings.RINGCENTRAL_REFRESH_MARGIN`, refreshing it first when needed. RingCentral rotates
    refresh tokens and kills the old access token on every refresh, so two processes refreshing
    the same connection would break each other. Hence:
      - the refresh happens inside `transaction.atomic()` with `select_for_update()` on the
        connection row (on SQLite the IMMEDIATE transaction mode takes the database write lock);
      - the row is read again after the lock is held, so whoever waited sees the pair the
        winner stored and reuses it instead of refreshing again;
      - the new pair is saved in that same transaction.
    `invalid_grant` marks the connection broken (admins emailed once, on the transition) and
    raises `ConnectionBroken`. Transient failures mark it `refresh_failing` and keep using the
    current access token while it is still valid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from oauthlib.oauth2 import OAuth2Error
from requests.auth import HTTPBasicAuth

from . import errors, http

log = logging.getLogger(__name__)

AUTHORIZE_PATH = "/restapi/oauth/authorize"
TOKEN_PATH = "/restapi/oauth/token"  # noqa: S105 - a URL path, not a secret
REVOKE_PATH = "/restapi/oauth/revoke"

DEFAULT_REFRESH_MARGIN = timedelta(minutes=5)


# --- Authorization URL ------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and what to keep until the callback (never in the URL)."""

    url: str
    state: str
    code_verifier: str = field(repr=False)


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) as RFC 7636 defines them.

    64 random bytes give an 86-character verifier, inside the 43–128 range the RFC allows.
    """
    verifier = secrets.token_urlsafe(64)
    challenge = pkce_challenge(verifier)
    return verifier, challenge


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def start_authorization(redirect_uri: str) -> AuthorizationRequest:
    """A fresh `state` and PKCE pair, and the authorize URL that carries state + challenge."""
    state = secrets.token_urlsafe(32)
    verifier, challenge = pkce_pair()
    session = http.new_oauth_session(
        client_id=settings.RINGCENTRAL_CLIENT_ID, redirect_uri=redirect_uri, state=state
    )
    url, _ = session.authorization_url(
        http.url(AUTHORIZE_PATH), code_challenge=challenge, code_challenge_method="S256"
    )
    return AuthorizationRequest(url=url, state=state, code_verifier=verifier)


# --- Token endpoint ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSet:
    """A token answer with lifetimes turned into absolute times at receipt."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_expires_at: datetime
    refresh_expires_at: datetime | None
    scope: str = ""
    owner_id: str = ""

    @classmethod
    def from_token(cls, token: dict, received_at: datetime) -> TokenSet:
        try:
            access = str(token["access_token"])
            expires_in = int(token["expires_in"])
        except (KeyError, TypeError, ValueError):
            raise errors.UnexpectedResponse(
                "token answer without access_token/expires_in"
            ) from None
        refresh = str(token.get("refresh_token") or "")
        if not refresh:
            # Without a refresh token the link would die within the hour.
            raise errors.OAuthFailed(
                "token answer without refresh_token",
                reason="RingCentral issued no refresh token for this portal.",
                fix='Turn on "Issue refresh tokens" in the RingCentral app settings.',
            )
        refresh_in = token.get("refresh_token_expires_in")
        scope = token.get("scope") or ""
        if isinstance(scope, list | tuple):
            scope = " ".join(scope)
        return cls(
            access_token=access,
            refresh_token=refresh,
            access_expires_at=received_at + timedelta(seconds=expires_in),
            refresh_expires_at=(
                received_at + timedelta(seconds=int(refresh_in)) if refresh_in is not None else None
            ),
            scope=str(scope),
            owner_id=str(token.get("owner_id") or ""),
        )


def _client_auth() -> HTTPBasicAuth:
    return HTTPBasicAuth(settings.RINGCENTRAL_CLIENT_ID, settings.RINGCENTRAL_CLIENT_SECRET)


def _raise_for_oauth_error(response):
    # requests-oauthlib hands every token answer to oauthlib, which would turn a 429 or a 503
    # page into a confusing parse error; RingCentral's own error JSON is read here instead.
    if response.status_code >= 400:
        raise errors.from_response(response, oauth=True)
    return response


def _token_session(redirect_uri: str | None = None):
    session = http.new_oauth_session(
        client_id=settings.RINGCENTRAL_CLIENT_ID, redirect_uri=redirect_uri
    )
    session.register_compliance_hook("access_token_response", _raise_for_oauth_error)
    session.register_compliance_hook("refresh_token_response", _raise_for_oauth_error)
    return session


# Debug error pages and error reports must not show these locals.
@sensitive_variables("code", "code_verifier", "token")
def exchange_code(code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
    """Trade an authorization code for tokens (raises `errors.RingCentralError`)."""
    session = _token_session(redirect_uri)
    received_at = timezone.now()
    try:
        token = session.fetch_token(
            http.url(TOKEN_PATH),
            code=code,
            code_verifier=code_verifier,
            auth=_client_auth(),
            include_client_id=False,
        )
    except OAuth2Error as exc:
        raise errors.OAuthFailed(exc.error or type(exc).__name__, code=exc.error or "") from None
    return TokenSet.from_token(token, received_at)


@sensitive_variables("refresh_token", "token")
def refresh_tokens(refresh_token: str) -> TokenSet:
    """One `grant_type=refresh_token` request. No locking here: use `fresh_access_token`."""
    session = _token_session()
    received_at = timezone.now()
    try:
        token = session.refresh_token(
            http.url(TOKEN_PATH), refresh_token=refresh_token, auth=_client_auth()
        )
    except OAuth2Error as exc:
        if exc.error == "invalid_grant":
            raise errors.InvalidGrant(exc.description or "", code="invalid_grant") from None
        raise errors.OAuthFailed(exc.error or type(exc).__name__, code=exc.error or "") from None
    return TokenSet.from_token(token, received_at)


@sensitive_variables("token")
def revoke(token: str) -> None:
    """End the RingCentral session the token belongs to (raises `errors.RingCentralError`).

    Revoking either token of a pair ends the whole session. Callers treat failure as
    non-fatal: the tokens are deleted locally either way."""
    if not token:
        return
    response = http.new_session().post(
        http.url(REVOKE_PATH), data={"token": token}, auth=_client_auth()
    )
    if response.status_code >= 400:
        raise errors.from_response(response, oauth=True)


# --- Refresh under a row lock -----------------------------------------------------------------


def refresh_margin() -> timedelta:
    margin = getattr(settings, "RINGCENTRAL_REFRESH_MARGIN", DEFAULT_REFRESH_MARGIN)
    return margin if isinstance(margin, timedelta) else timedelta(seconds=float(margin))


def _due(connection, now, stale_token, refresh_lapses_within) -> bool:
    if stale_token is not None:
        # RingCentral refused `stale_token`. If the row still holds it, nobody has refreshed
        # since; if it holds another token, someone else already did and that one is fresh.
        return hmac.compare_digest(connection.access_token.encode(), stale_token.encode())
    if (
        connection.access_expires_at is None
        or connection.access_expires_at - refresh_margin() <= now
    ):
        return True
    return bool(
        refresh_lapses_within is not None
        and connection.refresh_expires_at is not None
        and connection.refresh_expires_at - refresh_lapses_within <= now
    )


def _unusable(connection) -> errors.ConnectionBroken:
    from messaging.models import ConnectionStatus

    if connection.status == ConnectionStatus.DISCONNECTED:
        return errors.ConnectionBroken(
            "connection disconnected",
            reason="This RingCentral link was disconnected.",
        )
    return errors.ConnectionBroken(connection.last_error or "connection broken")


@sensitive_variables("stale_token", "tokens")
def loaded_access_token(connection) -> str | None:
    """The access token of `connection` as it was just read, if it needs no refresh.

    For a row read a moment ago (the send path reads it with the message it claims): a usable
    link whose token is not within the refresh margin. None means ask `fresh_access_token`,
    which reads the row again and refreshes under the lock when due. A token that went stale
    since the read is answered 401 by RingCentral, and the 401 path refreshes it.
    """
    if connection.is_usable and not _due(connection, timezone.now(), None, None):
        return connection.access_token
    return None


def fresh_access_token(
    connection_id: int,
    *,
    stale_token: str | None = None,
    refresh_lapses_within: timedelta | None = None,
) -> str:
    """A valid access token for the connection, refreshed first if it is due.

    Due means: the access token expires within the refresh margin; or `stale_token` (a token
    RingCentral just answered 401 to) is still the stored one; or `refresh_lapses_within` is
    given and the refresh token expires within it (keeping idle links alive).

    Raises `ConnectionBroken` for a broken or disconnected connection (and after
    `invalid_grant`), and the transient `RingCentralError` when a refresh failed and the current
    access token cannot be used any more.
    """
    from messaging.models import ConnectionStatus, RingCentralConnection

    connection = RingCentralConnection.objects.get(pk=connection_id)
    if not connection.is_usable:
        raise _unusable(connection)
    if not _due(connection, timezone.now(), stale_token, refresh_lapses_within):
        return connection.access_token

    broken: errors.InvalidGrant | None = None
    failure: errors.RingCentralError | None = None
    with transaction.atomic():
        connection = RingCentralConnection.objects.select_for_update().get(pk=connection_id)
        if not connection.is_usable:
            raise _unusable(connection)
        now = timezone.now()
        if not _due(connection, now, stale_token, refresh_lapses_within):
            return connection.access_token  # another process refreshed while we waited
        try:
            tokens = refresh_tokens(connection.refresh_token)
        except errors.InvalidGrant as exc:
            broken = exc
            connection.status = ConnectionStatus.BROKEN
            connection.last_error = f"{exc.reason} {exc.fix} ({exc})"
            connection.save(update_fields=["status", "last_error", "updated_at"])
            transaction.on_commit(lambda: notify_breakage(connection_id))
        except errors.RingCentralError as exc:
            failure = exc
            connection.status = ConnectionStatus.REFRESH_FAILING
            connection.last_error = f"{exc.reason} ({exc})"
            connection.save(update_fields=["status", "last_error", "updated_at"])
        else:
            store_tokens(connection, tokens)
            connection.status = ConnectionStatus.LINKED
            connection.last_error = ""
            connection.save()
            log.info("RingCentral connection %s: tokens refreshed", connection_id)
            return connection.access_token

    if broken is not None:
        log.warning("RingCentral connection %s is broken: %s", connection_id, broken)
        raise errors.ConnectionBroken(str(broken)) from broken
    assert failure is not None
    log.warning("RingCentral connection %s: refresh failed: %s", connection_id, failure)
    still_valid = connection.access_expires_at is not None and connection.access_expires_at > now
    if stale_token is None and still_valid:
        return connection.access_token
    raise failure


@sensitive_variables("tokens")
def store_tokens(connection, tokens: TokenSet) -> None:
    """Put a new pair on the (unsaved) connection; the caller saves it in its transaction."""
    connection.access_token = tokens.access_token
    connection.refresh_token = tokens.refresh_token
    connection.access_expires_at = tokens.access_expires_at
    connection.refresh_expires_at = tokens.refresh_expires_at
    if tokens.scope:
        connection.scopes = tokens.scope
    connection.last_refreshed_at = timezone.now()


def notify_breakage(connection_id: int) -> None:
    """Email the team's owner and admins (and the linking user) that a link broke.

    Called once per breakage: only the transaction that moves the row to `broken` schedules it.
    """
    from messaging.models import RingCentralConnection, Role

    connection = (
        RingCentralConnection.objects.select_related("team", "linked_by")
        .filter(pk=connection_id)
        .first()
    )
    if connection is None:
        return
    admins = connection.team.memberships.filter(role__in=[Role.OWNER, Role.ADMIN]).select_related(
        "user"
    )
    recipients = {m.user.email for m in admins if m.user.email}
    if connection.linked_by and connection.linked_by.email:
        recipients.add(connection.linked_by.email)
    if not recipients:
        return
    page = reverse("ringcentral")
    context = {
        "connection": connection,
        "team": connection.team,
        "page_url": f"{settings.PUBLIC_BASE_URL}{page}" if settings.PUBLIC_BASE_URL else page,
    }
    subject = render_to_string("ringcentral/email/broken_subject.txt", context).strip()
    body = render_to_string("ringcentral/email/broken_message.txt", context)
    try:
        send_mail(subject, body, None, sorted(recipients))
    except Exception:
        # The banner still tells everyone; a mail outage must not hide the breakage itself.
        log.exception(
            "Could not email admins about broken RingCentral connection %s", connection_id
        )
