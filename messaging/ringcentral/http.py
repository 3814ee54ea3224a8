"""The one way this project talks HTTP to RingCentral.

Every session comes from `new_session()` or `new_oauth_session()`. Both send a
`User-Agent: mmsportal/<version>` and put `settings.RINGCENTRAL_TIMEOUT` (connect, read) on any
request made without an explicit timeout, so no call can hang a web or Celery worker. Transport
failures come out as `errors.NetworkError`, never as a raw `requests` exception.
"""

from __future__ import annotations

import logging
import os
import tomllib
from functools import cache
from ipaddress import ip_address
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from requests_oauthlib import OAuth2Session
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from . import errors

log = logging.getLogger(__name__)

# Both libraries log whole token requests and answers at DEBUG. The console handler redacts them,
# but any handler an operator adds would not, so their debug output is never produced at all.
for _noisy in ("requests_oauthlib", "oauthlib"):
    logging.getLogger(_noisy).setLevel(logging.INFO)


@cache
def version() -> str:
    """The project version from pyproject.toml (the single place it is written)."""
    try:
        with open(settings.BASE_DIR / "pyproject.toml", "rb") as f:
            return tomllib.load(f)["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def user_agent() -> str:
    return f"mmsportal/{version()}"


def server_url() -> str:
    """RingCentral's base URL (or the emulator's), without a trailing slash."""
    return settings.RINGCENTRAL_SERVER_URL.rstrip("/")


def url(path: str) -> str:
    return f"{server_url()}{path}"


def is_own_server(address: str) -> bool:
    """True when `address` points at the configured server (so it may receive our token)."""
    ours, theirs = urlsplit(server_url()), urlsplit(address)
    return (ours.scheme, ours.netloc) == (theirs.scheme, theirs.netloc)


def _is_loopback(host: str | None) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ip_address(host or "").is_loopback
    except ValueError:
        return False


def _allow_plain_http_to_emulator() -> None:
    # oauthlib refuses http:// outright. The only http:// server we accept is an emulator on
    # this machine (demo mode and tests); anything else must be https.
    parts = urlsplit(server_url())
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")
        return
    raise ImproperlyConfigured(
        "RINGCENTRAL_SERVER_URL must be an https:// address (plain http only on this machine)."
    )


def _never_connected(exc: requests.ConnectionError) -> bool:
    # A refused or unresolvable connection never carried the request; a connection closed or
    # reset afterwards may have, and callers with side effects must treat that as unknown.
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, MaxRetryError):
        cause = cause.reason
    return isinstance(cause, NewConnectionError | ConnectTimeoutError)


class _Chokepoint:
    """Mixed into `requests.Session` subclasses: default timeout, User-Agent, typed failures."""

    def _prepare_chokepoint(self) -> None:
        self.headers["User-Agent"] = user_agent()
        self.headers.setdefault("Accept", "application/json")

    def request(self, method, url, *args, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = tuple(settings.RINGCENTRAL_TIMEOUT)
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.ConnectTimeout as exc:
            raise errors.NetworkError("connect timeout", request_sent=False) from exc
        except requests.exceptions.SSLError as exc:
            raise errors.NetworkError("TLS handshake failed", request_sent=False) from exc
        except requests.ConnectionError as exc:
            sent = False if _never_connected(exc) else None
            raise errors.NetworkError("connection failed", request_sent=sent) from exc
        except requests.Timeout as exc:
            raise errors.NetworkError("read timeout", request_sent=None) from exc
        except requests.RequestException as exc:
            raise errors.NetworkError(type(exc).__name__, request_sent=None) from exc
        log.debug(
            "RingCentral %s %s -> %s", method, urlsplit(response.url).path, response.status_code
        )
        return response


class Session(_Chokepoint, requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self._prepare_chokepoint()


class OAuthSession(_Chokepoint, OAuth2Session):
    def __init__(self, *args, **kwargs) -> None:
        _allow_plain_http_to_emulator()
        super().__init__(*args, **kwargs)
        self._prepare_chokepoint()


def new_session() -> Session:
    """A session for REST calls; the caller adds the Bearer header per request."""
    return Session()


def new_oauth_session(**kwargs) -> OAuthSession:
    """A requests-oauthlib session (authorize URL, token requests), same timeouts and UA."""
    return OAuthSession(**kwargs)
