"""A linked RingCentral user's tokens: kept encrypted on its row, refreshed under a row lock.

`fresh_access_token(connection_id)` returns an access token that is valid for at least
`settings.RINGCENTRAL_REFRESH_MARGIN` seconds, refreshing it first when needed. RingCentral
rotates refresh tokens and kills the old access token on every refresh, so two processes
refreshing the same connection would break each other. Hence:
  - the refresh happens inside `transaction.atomic()` with `select_for_update()` on the
    connection row (on SQLite the IMMEDIATE transaction mode takes the database write lock);
  - the row is read again after the lock is held, so whoever waited sees the pair the winner
    stored and reuses it instead of refreshing again;
  - the new pair is saved in that same transaction.
`invalid_grant` marks the connection broken (admins emailed once, on the transition) and raises
`ConnectionBroken`. Transient failures mark it `refresh_failing` and keep using the current
access token while it is still valid.

`client_for(connection)` is how the rest of the app gets a RingCentral client for a link: the
client asks `ConnectionTokens` for a token before each request and again after a 401.
"""

from __future__ import annotations

import hmac
import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from messaging.links import notifications
from messaging.models import ConnectionStatus, RingCentralConnection
from messaging.ringcentral import errors, http, oauth
from messaging.ringcentral.client import RingCentralClient

log = logging.getLogger(__name__)


def client_for(connection: RingCentralConnection, *, just_read: bool = False) -> RingCentralClient:
    """A client that acts as the connection's RingCentral user, over this thread's kept-alive
    session (reads and sends skip the TCP and TLS handshakes).

    `just_read`: the caller read this row a moment ago (the send path reads it with the message
    it claims), so its token may be used while it is not due for a refresh, sparing a read of
    the row. Otherwise every request takes its token from the row as it is now.
    """
    loaded = connection if just_read else None
    return RingCentralClient(ConnectionTokens(connection.pk, loaded), session=http.pooled_session())


class ConnectionTokens:
    """The token source of one connection's client: the token of `loaded` (a row just read)
    while it is not due for a refresh; otherwise, and always after RingCentral refused a token,
    `fresh_access_token`, which reads the row again and refreshes under the lock when due.
    """

    def __init__(self, connection_id: int, loaded: RingCentralConnection | None = None):
        self.connection_id = connection_id
        self._loaded = loaded

    @sensitive_variables("stale")
    def __call__(self, stale: str | None) -> str:
        if stale is not None:
            self._loaded = None  # the row read earlier holds a token RingCentral refused
        elif self._loaded is not None:
            token = loaded_access_token(self._loaded)
            if token is not None:
                return token
        return fresh_access_token(self.connection_id, stale_token=stale)


def refresh_margin() -> timedelta:
    return timedelta(seconds=settings.RINGCENTRAL_REFRESH_MARGIN)


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
    if connection.status == ConnectionStatus.DISCONNECTED:
        return errors.ConnectionBroken(
            "connection disconnected",
            reason="This RingCentral link was disconnected.",
        )
    return errors.ConnectionBroken(connection.last_error or "connection broken")


@sensitive_variables("stale_token", "tokens")
def loaded_access_token(connection) -> str | None:
    """The access token of `connection` as it was just read, if it needs no refresh.

    For a row read a moment ago: a usable link whose token is not within the refresh margin.
    None means ask `fresh_access_token`, which reads the row again and refreshes under the lock
    when due. A token that went stale since the read is answered 401 by RingCentral, and the
    401 path refreshes it.
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
            tokens = oauth.refresh_tokens(connection.refresh_token)
        except errors.InvalidGrant as exc:
            broken = exc
            connection.status = ConnectionStatus.BROKEN
            connection.last_error = f"{exc.reason} {exc.fix} ({exc})"
            connection.save(update_fields=["status", "last_error", "updated_at"])
            transaction.on_commit(lambda: notifications.link_broken(connection_id))
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
def store_tokens(connection, tokens: oauth.TokenSet) -> None:
    """Put a new pair on the (unsaved) connection; the caller saves it in its transaction."""
    connection.access_token = tokens.access_token
    connection.refresh_token = tokens.refresh_token
    connection.access_expires_at = tokens.access_expires_at
    connection.refresh_expires_at = tokens.refresh_expires_at
    if tokens.scope:
        connection.scopes = tokens.scope
    connection.last_refreshed_at = timezone.now()
