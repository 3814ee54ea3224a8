"""RingCentral OAuth, the protocol: the authorize URL, the code exchange, a refresh, revoke.

Linking (messaging/links/views.py drives it):
    1. `start_authorization(redirect_uri)` -> URL to send the browser to, plus `state` and the
       PKCE `code_verifier` that the caller keeps server-side (session) until the callback.
    2. `exchange_code(code, redirect_uri, code_verifier)` -> `TokenSet` (HTTP Basic client auth).

Using a link: `refresh_tokens(refresh_token)` is one token request. Who may refresh when, under
which lock, and where the new pair is kept is messaging/links/tokens.py's business.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from oauthlib.oauth2 import OAuth2Error
from requests.auth import HTTPBasicAuth

from . import errors, http, paths

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
        http.url(paths.AUTHORIZE), code_challenge=challenge, code_challenge_method="S256"
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
            http.url(paths.TOKEN),
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
    """One `grant_type=refresh_token` request. No locking here: callers hold the link's lock."""
    session = _token_session()
    received_at = timezone.now()
    try:
        token = session.refresh_token(
            http.url(paths.TOKEN), refresh_token=refresh_token, auth=_client_auth()
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
        http.url(paths.REVOKE), data={"token": token}, auth=_client_auth()
    )
    if response.status_code >= 400:
        raise errors.from_response(response, oauth=True)
