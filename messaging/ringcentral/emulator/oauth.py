"""OAuth 2.0 authorization-code flow with PKCE, refresh-token rotation and sessions.

A *session* is one login of one extension into one app. It owns the access/refresh pair that is
current and the pairs it rotated away from. Lifecycle of a pair:

    issued --refresh--> rotated: old access token dead at once; old refresh token still answers
                        with the *same* new pair until its grace ends
                        (new access token used: ``refresh_grace_after_use`` s after that first
                        use; never used: ``refresh_grace_unused`` s after the rotation)
    any    --revoke / session cap / code replay--> the whole session is dead

Error codes follow RingCentral's OAU list; where a code is not documented the choice is listed
in README.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from . import consent
from .errors import ApiError, OAuthError, unsupported_media_type
from .state import Account, App, Extension
from .wire import Request, Response

if TYPE_CHECKING:
    from .emulator import Emulator

TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_\-]{16,512}$")
PKCE_VALUE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
S256_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")

ACCESS_TTL_MIN, ACCESS_TTL_MAX = 600, 3600
REFRESH_TTL_MAX = 2592000
TICKET_TTL = 600.0


@dataclass
class AuthCode:
    code: str
    client_id: str
    extension_id: int
    redirect_uri: str
    redirect_given: bool
    challenge: str | None
    method: str | None
    expires_at: float
    used: bool = False
    session_id: str | None = None


@dataclass
class AccessToken:
    token: str
    session_id: str
    expires_at: float
    first_used_at: float | None = None
    alive: bool = True


@dataclass
class RefreshToken:
    token: str
    session_id: str
    access_token: str
    expires_at: float
    alive: bool = True
    rotated_at: float | None = None
    successor: str | None = None


@dataclass
class Session:
    id: str
    client_id: str
    extension_id: int
    created_at: float
    endpoint_id: str
    alive: bool = True
    tokens: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AuthContext:
    """Who is calling a REST endpoint: resolved from the Bearer token."""

    app: App
    extension: Extension
    account: Account
    session_id: str
    token: str


@dataclass(frozen=True)
class AuthorizeRequest:
    app: App
    redirect_uri: str
    redirect_given: bool
    state: str | None
    challenge: str | None
    method: str | None
    login_hint: str | None


class AuthorizeError(Exception):
    """A problem on ``/authorize`` that must be shown to the user, never redirected."""

    def __init__(self, error: str, code: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.code = code
        self.description = description


def _basic_challenge() -> dict[str, str]:
    return {"WWW-Authenticate": 'Basic realm="RingCentral"'}


def _bearer_error(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": 'Bearer realm="RingCentral"'})


def _invalid_grant(description: str, code: str) -> OAuthError:
    return OAuthError(400, "invalid_grant", description, code)


def pkce_s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def parse_form(req: Request) -> dict[str, str]:
    """A urlencoded body as single values; OAU-111 when a field is repeated."""
    try:
        text = req.body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise OAuthError(400, "invalid_request", "The body is not urlencoded", "CMN-104") from exc
    fields = parse_qs(text, keep_blank_values=True)
    for name, values in fields.items():
        if len(values) > 1:
            raise OAuthError(
                400,
                "invalid_request",
                "Request parameter duplication detected",
                "OAU-111",
                parameter_name=name,
            )
    return {name: values[0] for name, values in fields.items()}


class OAuthService:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self._lock = threading.RLock()
        self.codes: dict[str, AuthCode] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshToken] = {}
        self.sessions: dict[str, Session] = {}
        self.tickets: dict[str, tuple[float, AuthorizeRequest]] = {}

    # -- client authentication ------------------------------------------------------------

    def client_from_basic(self, req: Request) -> App:
        """The app named by ``Authorization: Basic``; 401 ``invalid_client`` otherwise."""
        header = req.header("Authorization")
        if not header:
            raise OAuthError(
                401,
                "invalid_client",
                "Invalid Authorization header value: client authentication is required",
                "OAU-123",
                headers=_basic_challenge(),
            )
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "basic":
            raise OAuthError(
                401,
                "invalid_client",
                "Authorization method not supported",
                "OAU-151",
                headers=_basic_challenge(),
            )
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            client_id, sep, secret = decoded.partition(":")
            if not sep:
                raise ValueError("no colon")
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise OAuthError(
                401,
                "invalid_client",
                "Invalid Authorization header",
                "OAU-134",
                headers=_basic_challenge(),
            ) from exc
        app = self.emu.world.apps.get(client_id)
        if app is None or not secrets.compare_digest(
            app.client_secret.encode("utf-8"), secret.encode("utf-8")
        ):
            raise OAuthError(
                401,
                "invalid_client",
                "Invalid client credentials",
                "OAU-146",
                headers=_basic_challenge(),
            )
        return app

    # -- authorize --------------------------------------------------------------------------

    def parse_authorize(self, params: dict[str, str]) -> AuthorizeRequest:
        client_id = params.get("client_id")
        app = self.emu.world.apps.get(client_id or "")
        if app is None:
            raise AuthorizeError("invalid_client", "OAU-120", "Unknown client_id")
        redirect_uri = params.get("redirect_uri")
        redirect_given = redirect_uri is not None
        if redirect_uri is None:
            if not app.redirect_uris:
                raise AuthorizeError(
                    "invalid_request", "OAU-113", "No redirect uri is registered for the client"
                )
            if len(app.redirect_uris) > 1:
                raise AuthorizeError(
                    "invalid_request",
                    "OAU-109",
                    "redirect_uri is required when several redirect URIs are registered",
                )
            redirect_uri = app.redirect_uris[0]
        elif redirect_uri not in app.redirect_uris:
            raise AuthorizeError("invalid_request", "OAU-109", "Redirect URIs do not match")
        if params.get("response_type") != "code":
            raise AuthorizeError(
                "unsupported_response_type",
                "CMN-101",
                "Parameter [response_type] value is invalid: only 'code' is supported",
            )
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if method is not None and challenge is None:
            raise AuthorizeError(
                "invalid_request", "CMN-101", "code_challenge_method given without code_challenge"
            )
        if challenge is not None:
            method = method or "plain"
            if method not in ("S256", "plain"):
                raise AuthorizeError(
                    "invalid_request",
                    "CMN-101",
                    "Parameter [code_challenge_method] value is invalid: use S256 or plain",
                )
            shape = S256_CHALLENGE if method == "S256" else PKCE_VALUE
            if not shape.match(challenge):
                raise AuthorizeError(
                    "invalid_request", "CMN-101", "Parameter [code_challenge] value is invalid"
                )
        return AuthorizeRequest(
            app=app,
            redirect_uri=redirect_uri,
            redirect_given=redirect_given,
            state=params.get("state"),
            challenge=challenge,
            method=method,
            login_hint=params.get("login_hint"),
        )

    def new_ticket(self, request: AuthorizeRequest) -> str:
        ticket = secrets.token_urlsafe(24)
        now = self.emu.now()
        with self._lock:
            self.tickets = {k: v for k, v in self.tickets.items() if v[0] > now}
            self.tickets[ticket] = (now + TICKET_TTL, request)
        return ticket

    def take_ticket(self, ticket: str) -> AuthorizeRequest | None:
        with self._lock:
            found = self.tickets.pop(ticket, None)
        if found is None or found[0] <= self.emu.now():
            return None
        return found[1]

    def issue_code(self, request: AuthorizeRequest, extension: Extension) -> AuthCode:
        code = AuthCode(
            code=secrets.token_urlsafe(32),
            client_id=request.app.client_id,
            extension_id=extension.id,
            redirect_uri=request.redirect_uri,
            redirect_given=request.redirect_given,
            challenge=request.challenge,
            method=request.method,
            expires_at=self.emu.now() + self.emu.config.code_ttl,
        )
        with self._lock:
            self.codes[code.code] = code
        return code

    # -- tokens -----------------------------------------------------------------------------

    def _ttls(self, form: dict[str, str]) -> tuple[float, float]:
        config = self.emu.config
        access_ttl = float(config.access_token_ttl)
        refresh_ttl = float(config.refresh_token_ttl)
        if "access_token_ttl" in form:
            value = _int_field(form, "access_token_ttl")
            if not ACCESS_TTL_MIN <= value <= ACCESS_TTL_MAX:
                raise OAuthError(
                    400,
                    "invalid_request",
                    f"access_token_ttl must be between {ACCESS_TTL_MIN} and {ACCESS_TTL_MAX}",
                    "CMN-101",
                    parameter_name="access_token_ttl",
                )
            access_ttl = min(access_ttl, value)
        if "refresh_token_ttl" in form:
            value = _int_field(form, "refresh_token_ttl")
            if not 1 <= value <= REFRESH_TTL_MAX:
                raise OAuthError(
                    400,
                    "invalid_request",
                    f"refresh_token_ttl must be between 1 and {REFRESH_TTL_MAX}",
                    "CMN-101",
                    parameter_name="refresh_token_ttl",
                )
            # Longer than the app's default is clamped to the default, as RingCentral documents.
            refresh_ttl = min(refresh_ttl, value)
        return access_ttl, refresh_ttl

    def _new_pair(
        self, session: Session, access_ttl: float, refresh_ttl: float
    ) -> tuple[AccessToken, RefreshToken]:
        now = self.emu.now()
        access = AccessToken(secrets.token_urlsafe(48), session.id, now + access_ttl)
        refresh = RefreshToken(
            secrets.token_urlsafe(48), session.id, access.token, now + refresh_ttl
        )
        self.access[access.token] = access
        self.refresh[refresh.token] = refresh
        session.tokens.extend([access.token, refresh.token])
        return access, refresh

    def _kill(self, session: Session) -> None:
        session.alive = False
        for token in session.tokens:
            if token in self.access:
                self.access[token].alive = False
            if token in self.refresh:
                self.refresh[token].alive = False

    def _open_session(
        self, app: App, extension_id: int, endpoint_id: str | None, ttls: tuple[float, float]
    ) -> tuple[Session, AccessToken, RefreshToken]:
        now = self.emu.now()
        alive = sorted(
            (
                s
                for s in self.sessions.values()
                if s.alive and s.client_id == app.client_id and s.extension_id == extension_id
            ),
            key=lambda s: s.created_at,
        )
        while len(alive) >= self.emu.config.max_sessions_per_user:
            self._kill(alive.pop(0))
        session = Session(
            id=secrets.token_hex(16),
            client_id=app.client_id,
            extension_id=extension_id,
            created_at=now,
            endpoint_id=endpoint_id or secrets.token_urlsafe(16),
        )
        self.sessions[session.id] = session
        access, refresh = self._new_pair(session, *ttls)
        return session, access, refresh

    def token_info(self, session: Session, access: AccessToken, refresh: RefreshToken) -> dict:
        now = self.emu.now()
        app = self.emu.world.apps[session.client_id]
        return {
            "access_token": access.token,
            "token_type": "bearer",
            "expires_in": max(0, round(access.expires_at - now)),
            "refresh_token": refresh.token,
            "refresh_token_expires_in": max(0, round(refresh.expires_at - now)),
            "scope": app.scope,
            "owner_id": str(session.extension_id),
            "endpoint_id": session.endpoint_id,
            "session_id": session.id,
        }

    def user_of_grant(self, form: dict[str, str]) -> int | None:
        """The extension a token request is about, without consuming anything."""
        with self._lock:
            if form.get("grant_type") == "authorization_code":
                code = self.codes.get(form.get("code", ""))
                return code.extension_id if code else None
            if form.get("grant_type") == "refresh_token":
                refresh = self.refresh.get(form.get("refresh_token", ""))
                if refresh and refresh.session_id in self.sessions:
                    return self.sessions[refresh.session_id].extension_id
        return None

    def exchange_code(self, app: App, form: dict[str, str]) -> dict:
        ttls = self._ttls(form)
        now = self.emu.now()
        with self._lock:
            code = self.codes.get(form.get("code", ""))
            if code is None:
                raise _invalid_grant("Invalid authorization code", "OAU-106")
            if code.client_id != app.client_id:
                raise _invalid_grant(
                    "Authorization code was not issued for this application", "OAU-110"
                )
            if code.used:
                # A replayed code is treated as stolen: the session it produced is revoked.
                if code.session_id and code.session_id in self.sessions:
                    self._kill(self.sessions[code.session_id])
                raise _invalid_grant("Invalid authorization code: already used", "OAU-106")
            # Any attempt uses the code up, so a wrong verifier cannot be retried.
            code.used = True
            if now >= code.expires_at:
                raise _invalid_grant("Authorization code is expired", "OAU-108")
            redirect_uri = form.get("redirect_uri")
            if (code.redirect_given or redirect_uri is not None) and (
                redirect_uri != code.redirect_uri
            ):
                raise _invalid_grant("Redirect URIs do not match", "OAU-109")
            verifier = form.get("code_verifier")
            if code.challenge is None:
                if verifier is not None:
                    raise _invalid_grant(
                        "code_verifier given but the authorization request had no code_challenge",
                        "OAU-106",
                    )
            else:
                if verifier is None:
                    raise _invalid_grant("code_verifier is required", "OAU-106")
                if not PKCE_VALUE.match(verifier):
                    raise _invalid_grant("code_verifier is malformed", "OAU-106")
                expected = pkce_s256(verifier) if code.method == "S256" else verifier
                if not secrets.compare_digest(expected, code.challenge):
                    raise _invalid_grant("code_verifier does not match code_challenge", "OAU-106")
            session, access, refresh = self._open_session(
                app, code.extension_id, form.get("endpoint_id"), ttls
            )
            code.session_id = session.id
            return self.token_info(session, access, refresh)

    def rotate(self, app: App, form: dict[str, str]) -> dict:
        ttls = self._ttls(form)
        now = self.emu.now()
        config = self.emu.config
        with self._lock:
            refresh = self.refresh.get(form.get("refresh_token", ""))
            if refresh is None:
                raise _invalid_grant("Token not found", "OAU-211")
            session = self.sessions[refresh.session_id]
            if session.client_id != app.client_id:
                raise _invalid_grant("Token was not issued for this application", "OAU-211")
            if not session.alive or not refresh.alive:
                raise _invalid_grant("Token revoked", "OAU-211")
            if now >= refresh.expires_at:
                raise _invalid_grant("Refresh token expired", "OAU-211")
            if refresh.rotated_at is not None:
                successor = self.refresh[refresh.successor or ""]
                new_access = self.access[successor.access_token]
                deadline = refresh.rotated_at + config.refresh_grace_unused
                if new_access.first_used_at is not None:
                    deadline = min(
                        deadline, new_access.first_used_at + config.refresh_grace_after_use
                    )
                reusable = (
                    now < deadline
                    and successor.alive
                    and successor.rotated_at is None
                    and new_access.alive
                    and now < new_access.expires_at
                )
                if not reusable:
                    refresh.alive = False
                    raise _invalid_grant("Token revoked: it was already used", "OAU-211")
                return self.token_info(session, new_access, successor)
            self.access[refresh.access_token].alive = False
            new_access, successor = self._new_pair(session, *ttls)
            refresh.rotated_at = now
            refresh.successor = successor.token
            return self.token_info(session, new_access, successor)

    def revoke(self, app: App, token: str) -> bool:
        """Kill the session holding ``token`` if it belongs to ``app``; True when one died."""
        with self._lock:
            record = self.access.get(token) or self.refresh.get(token)
            if record is None:
                return False
            session = self.sessions[record.session_id]
            if session.client_id != app.client_id:
                return False
            self._kill(session)
            return True

    def issue_direct(self, app: App, extension: Extension) -> dict:
        """A fresh session as if the whole browser flow had happened (for tests and demos)."""
        with self._lock:
            ttls = (
                float(self.emu.config.access_token_ttl),
                float(self.emu.config.refresh_token_ttl),
            )
            session, access, refresh = self._open_session(app, extension.id, None, ttls)
            return self.token_info(session, access, refresh)

    def session_alive(self, session_id: str) -> bool:
        with self._lock:
            session = self.sessions.get(session_id)
            return bool(session and session.alive)

    # -- bearer -----------------------------------------------------------------------------

    def authenticate(self, req: Request) -> AuthContext:
        """Resolve ``Authorization: Bearer``; 401 with an OAU code otherwise."""
        header = req.header("Authorization")
        if not header:
            raise _bearer_error("OAU-123", "Invalid Authorization header value: (missing)")
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise _bearer_error("OAU-151", "Authorization method not supported")
        value = value.strip()
        if not TOKEN_SHAPE.match(value):
            raise _bearer_error("OAU-149", "Unparsable access token")
        now = self.emu.now()
        with self._lock:
            access = self.access.get(value)
            session = self.sessions.get(access.session_id) if access else None
            if access is None or session is None or not access.alive or not session.alive:
                raise _bearer_error("OAU-213", "Token not found")
            if now >= access.expires_at:
                raise _bearer_error("OAU-128", "Access token expired")
            if access.first_used_at is None:
                access.first_used_at = now
        app = self.emu.world.apps[session.client_id]
        extension = self.emu.world.extensions[session.extension_id]
        account = self.emu.world.accounts[extension.account_id]
        return AuthContext(app, extension, account, session.id, value)


def _int_field(form: dict[str, str], name: str) -> int:
    try:
        return int(form[name])
    except ValueError as exc:
        raise OAuthError(
            400, "invalid_request", f"{name} must be an integer", "CMN-101", parameter_name=name
        ) from exc


def _with_query(uri: str, params: dict[str, str | None]) -> str:
    parts = urlsplit(uri)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _wants_html(req: Request) -> bool:
    return "text/html" in (req.header("Accept") or "")


def _authorize_error(req: Request, error: AuthorizeError) -> Response:
    if _wants_html(req):
        response = Response.html(
            400, consent.error_page(error.error, error.code, error.description)
        )
    else:
        body = OAuthError(400, error.error, error.description, error.code).body()
        response = Response.json(400, body)
    response.error_code = error.code
    return response


def _rate_limited(emu: Emulator, key: tuple, response_headers: dict[str, str]) -> Response | None:
    decision = emu.rate_limiter.check(key, "Auth")
    response_headers.update(decision.headers)
    if decision.allowed:
        return None
    error = OAuthError(429, "invalid_request", "Request rate exceeded", "CMN-301")
    error.headers.update(decision.headers)
    error.headers["Retry-After"] = str(decision.retry_after)
    return Response.error(error)


def _pick_extension(emu: Emulator, hint: str | None) -> Extension | None:
    extensions = sorted(emu.world.extensions.values(), key=lambda e: e.id)
    if hint:
        for extension in extensions:
            if hint in (str(extension.id), extension.email, extension.extension_number):
                return extension
    return extensions[0] if extensions else None


def handle_authorize(emu: Emulator, req: Request) -> Response:
    """GET/POST ``/restapi/oauth/authorize``: start a login, or finish one from the consent form."""
    if req.method == "POST":
        if req.media_type != "application/x-www-form-urlencoded":
            return Response.error(unsupported_media_type(req.content_type))
        fields = {
            k: v[-1]
            for k, v in parse_qs(req.body.decode("latin-1"), keep_blank_values=True).items()
        }
    else:
        fields = {k: v[-1] for k, v in req.query.items()}

    if "ticket" in fields:
        return _finish_consent(emu, req, fields)

    try:
        request = emu.oauth.parse_authorize(fields)
    except AuthorizeError as error:
        return _authorize_error(req, error)

    headers: dict[str, str] = {}
    limited = _rate_limited(emu, ("client", request.app.client_id), headers)
    if limited is not None:
        return limited

    if emu.config.consent_page:
        ticket = emu.oauth.new_ticket(request)
        extensions = [
            (e.id, e.name, e.extension_number, e.email, emu.world.accounts[e.account_id].company)
            for e in sorted(emu.world.extensions.values(), key=lambda e: e.id)
        ]
        if not extensions:
            return _authorize_error(
                req, AuthorizeError("access_denied", "OAU-136", "Extension not found")
            )
        page = consent.consent_page(ticket, request.app.name, extensions)
        return Response.html(200, page, {**headers, "Cache-Control": "no-store"})

    extension = _pick_extension(emu, request.login_hint)
    if extension is None:
        return _authorize_error(
            req, AuthorizeError("access_denied", "OAU-136", "Extension not found")
        )
    return _approve(emu, request, extension, headers)


def _approve(
    emu: Emulator, request: AuthorizeRequest, extension: Extension, headers: dict[str, str]
) -> Response:
    code = emu.oauth.issue_code(request, extension)
    location = _with_query(
        request.redirect_uri,
        {"code": code.code, "state": request.state, "expires_in": str(emu.config.code_ttl)},
    )
    response = Response.redirect(location)
    response.headers.update(headers)
    return response


def _finish_consent(emu: Emulator, req: Request, fields: dict[str, str]) -> Response:
    request = emu.oauth.take_ticket(fields["ticket"])
    if request is None:
        return _authorize_error(
            req,
            AuthorizeError(
                "invalid_request", "OAU-102", "This sign-in page has expired; start again"
            ),
        )
    headers: dict[str, str] = {}
    limited = _rate_limited(emu, ("client", request.app.client_id), headers)
    if limited is not None:
        return limited
    if fields.get("decision") == "deny":
        location = _with_query(
            request.redirect_uri,
            {
                "error": "access_denied",
                "error_description": "The user denied the authorization request",
                "state": request.state,
            },
        )
        return Response.redirect(location)
    if fields.get("decision") != "approve":
        return _authorize_error(
            req,
            AuthorizeError("invalid_request", "CMN-101", "Parameter [decision] value is invalid"),
        )
    try:
        extension = emu.world.extensions[int(fields.get("extension_id", ""))]
    except (KeyError, ValueError):
        return _authorize_error(
            req, AuthorizeError("invalid_request", "OAU-136", "Extension not found")
        )
    return _approve(emu, request, extension, headers)


def _require_form(req: Request) -> None:
    if req.media_type != "application/x-www-form-urlencoded":
        raise OAuthError(
            415,
            "invalid_request",
            f"Unsupported Media Type: {req.content_type or '(none)'}",
            "CMN-104",
            parameter_name="Content-Type",
        )


def handle_token(emu: Emulator, req: Request) -> Response:
    """POST ``/restapi/oauth/token``: code exchange and refresh."""
    _require_form(req)
    form = parse_form(req)
    app = emu.oauth.client_from_basic(req)
    req.client_id = app.client_id
    user = emu.oauth.user_of_grant(form)
    key = ("client", app.client_id, user) if user is not None else ("client", app.client_id)
    headers: dict[str, str] = {}
    limited = _rate_limited(emu, key, headers)
    if limited is not None:
        return limited
    grant = form.get("grant_type")
    try:
        if grant == "authorization_code":
            body = emu.oauth.exchange_code(app, form)
        elif grant == "refresh_token":
            body = emu.oauth.rotate(app, form)
        else:
            raise OAuthError(
                400,
                "unsupported_grant_type",
                f"The client is unauthorized for the required grant type: [{grant}]",
                "OAU-112",
            )
    except OAuthError as error:
        error.headers.update(headers)
        raise
    req.extension_id = int(body["owner_id"])
    return Response.json(200, body, {**headers, "Cache-Control": "no-store", "Pragma": "no-cache"})


def handle_revoke(emu: Emulator, req: Request) -> Response:
    """POST ``/restapi/oauth/revoke``: the token may come in the form or the query."""
    form: dict[str, str] = {}
    if req.body:
        _require_form(req)
        form = parse_form(req)
    app = emu.oauth.client_from_basic(req)
    req.client_id = app.client_id
    headers: dict[str, str] = {}
    limited = _rate_limited(emu, ("client", app.client_id), headers)
    if limited is not None:
        return limited
    token = form.get("token") or req.query_one("token")
    if not token:
        raise OAuthError(
            400,
            "invalid_request",
            "Parameter [token] is required",
            "CMN-101",
            parameter_name="token",
        )
    emu.oauth.revoke(app, token)
    return Response(200, b"", None, headers)
