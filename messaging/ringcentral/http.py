"""The one way this project talks HTTP to RingCentral.

Every session comes from `new_session()` or `new_oauth_session()`. Both send a
`User-Agent: mmsportal/<version>` and put `settings.RINGCENTRAL_TIMEOUT` (connect, read) on any
request made without an explicit timeout, so no call can hang a web or Celery worker. Transport
failures come out as `errors.NetworkError`, never as a raw `requests` exception.

Sends are the exception: `post_message` (below) writes a message body over a kept-alive
`http.client` connection, with the same User-Agent, timeouts, proxy and CA bundle and the same
typed failures, but without the per-request work of `requests`.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import select
import socket
import ssl
import threading
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from ipaddress import ip_address
from urllib.parse import unquote, urlsplit

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


def pooled_session() -> Session:
    """This thread's REST session, kept alive between requests."""
    return _kept_for_this_thread(_pooled, new_session)


_pooled = threading.local()


def _kept_for_this_thread(local: threading.local, make):
    """What `local` keeps for this thread and process, made anew after a fork (sockets are
    never shared with a parent or a sibling) or when the server URL changed."""
    key = (os.getpid(), server_url())
    kept = getattr(local, "kept", None)
    if kept is None or local.key != key:
        if kept is not None:
            kept.close()
        kept = local.kept = make()
        local.key = key
    return kept


# Posting a message ---------------------------------------------------------------------------
#
# Every message is one POST, and an MMS body is up to 1.5 MB. Through `requests` that POST costs
# more CPU in session plumbing (settings merged from the environment, hooks, cookie jar,
# adapter, a file object read 16 KiB at a time) than in writing the body itself, so sends write
# multipart's buffers straight to an `http.client` connection kept alive per process and
# thread. What `requests` would take from the environment (HTTPS_PROXY / NO_PROXY, a CA bundle
# in REQUESTS_CA_BUNDLE) is read the same way, once per connection.


@dataclass(frozen=True)
class Answer:
    """RingCentral's answer to a post, with the parts of a `requests.Response` callers read."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    def json(self):
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def post_message(
    path: str,
    headers: Mapping[str, str],
    body: Iterable[bytes | memoryview],
    *,
    timeout: tuple[float, float] | None = None,
) -> Answer:
    """POST `body` (pieces, written in order) to `path` on the RingCentral server.

    `headers` must carry the Content-Length of the whole body. Raises `errors.NetworkError`
    with `request_sent=False` when the body did not go out whole (RingCentral cannot have
    accepted it) and `request_sent=None` when it did but no answer could be read. An exception
    from `body` itself propagates unchanged, and the half-written request is abandoned with its
    connection.
    """
    connect_timeout, read_timeout = timeout or tuple(settings.RINGCENTRAL_TIMEOUT)
    kept = _kept_for_this_thread(_kept, lambda: _KeptAlive(server_url()))
    answer = kept.post(path, headers, body, connect_timeout, read_timeout)
    log.debug("RingCentral POST %s -> %s", path, answer.status_code)
    return answer


_kept = threading.local()
# A first piece up to this size goes out with the request's head (copied once: small).
SMALL_BODY = 16 * 1024


class _KeptAlive:
    """One connection to the RingCentral server, opened again whenever the server has let it go."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.connection: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def post(self, path, headers, body, connect_timeout, read_timeout) -> Answer:
        if self.connection is None or _closed_by_peer(self.connection):
            self.close()
            self.connection = _open(self.base_url, connect_timeout)
        connection = self.connection
        connection.sock.settimeout(read_timeout)
        whole = False
        try:
            connection.putrequest("POST", path, skip_accept_encoding=True)
            for name, value in {**_standard_headers(), **headers}.items():
                connection.putheader(name, value)
            pieces = iter(body)
            first = next(pieces, None)
            if first is not None and len(first) <= SMALL_BODY:
                # A text message is one small piece: sent with the head in one segment.
                connection.endheaders(bytes(first))
            else:
                connection.endheaders()
                if first is not None:
                    connection.sock.sendall(first)
            for piece in pieces:
                connection.sock.sendall(piece)
            whole = True
            response = connection.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            what = "read timeout" if whole and isinstance(exc, TimeoutError) else "connection lost"
            raise errors.NetworkError(what, request_sent=None if whole else False) from exc
        except BaseException:
            self.close()
            raise
        if response.will_close:
            self.close()
        return Answer(response.status, response.headers, content)


def _standard_headers() -> dict[str, str]:
    return {"User-Agent": user_agent(), "Accept": "application/json"}


def _closed_by_peer(connection: http.client.HTTPConnection) -> bool:
    # Nothing is due on an idle kept-alive connection: if it is readable, the server closed it
    # (or sent something we cannot use). Sending on it would end as an unknown outcome.
    sock = connection.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _open(base_url: str, connect_timeout: float) -> http.client.HTTPConnection:
    """A new connection, through the environment's proxy if requests would use one."""
    parts = urlsplit(base_url)
    environment = requests.Session().merge_environment_settings(base_url, {}, None, None, None)
    proxy = requests.utils.select_proxy(base_url, environment["proxies"])
    try:
        if parts.scheme != "https":
            # Plain http is only ever the emulator on this machine (see
            # _allow_plain_http_to_emulator), which no proxy stands in front of.
            connection = http.client.HTTPConnection(
                parts.hostname, parts.port or 80, timeout=connect_timeout
            )
        else:
            context = _tls_context(environment["verify"])
            if proxy:
                connection = _through_proxy(proxy, parts, context, connect_timeout)
            else:
                connection = http.client.HTTPSConnection(
                    parts.hostname, parts.port or 443, timeout=connect_timeout, context=context
                )
        connection.connect()
    except ssl.SSLCertVerificationError as exc:
        raise errors.NetworkError(
            f"certificate not trusted: {exc.verify_message}",
            request_sent=False,
            reason="The portal could not verify the certificate of the RingCentral server.",
            fix="Tell the person who runs the portal: behind a TLS-inspecting proxy, "
            "REQUESTS_CA_BUNDLE must name that proxy's CA certificate.",
        ) from exc
    except ssl.SSLError as exc:
        raise errors.NetworkError("TLS handshake failed", request_sent=False) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise errors.NetworkError("connection failed", request_sent=False) from exc
    # Headers and body leave in separate writes; without this each request would wait for the
    # server's delayed ACK.
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _through_proxy(proxy: str, target, context, connect_timeout) -> http.client.HTTPSConnection:
    via = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if via.scheme != "http":
        raise errors.NetworkError(
            f"{via.scheme}:// proxies are not supported for sending",
            request_sent=False,
            reason="The server's HTTPS_PROXY names a kind of proxy the portal cannot send through.",
            fix="Tell the person who runs the portal: HTTPS_PROXY must be an http:// proxy.",
        )
    connection = http.client.HTTPSConnection(
        via.hostname, via.port or 80, timeout=connect_timeout, context=context
    )
    tunnel_headers = {}
    if via.username:
        credentials = f"{unquote(via.username)}:{unquote(via.password or '')}".encode()
        tunnel_headers["Proxy-Authorization"] = "Basic " + base64.b64encode(credentials).decode()
    connection.set_tunnel(target.hostname, target.port or 443, headers=tunnel_headers)
    return connection


def _tls_context(verify) -> ssl.SSLContext:
    """Certificates checked as requests checks them: its CA bundle, or REQUESTS_CA_BUNDLE's."""
    where = requests.certs.where() if verify is True else verify
    if os.path.isdir(where):
        return ssl.create_default_context(capath=where)
    return ssl.create_default_context(cafile=where)
