"""Webhook subscriptions: creation handshake, renewal, expiry, deliveries and blacklisting.

Lifecycle of a subscription:

    create --handshake ok--> Active --expirationTime passes--> expired (404 SUB-507, silent)
      |                        |  renew / PUT push expirationTime forward
      | handshake fails        | ``blacklist_after_failures`` deliveries in a row fail
      v                        v
    400 SUB-525              Blacklisted (kept, never delivered to again; delete and recreate)

Events: a message-store filter gets ``changes`` (new and updated counts) for the messages it
takes (``type`` absent or SMS; ``direction`` absent or the message's); the instant filter gets
every inbound record whole; the consents filter gets each changed consent record of the account
(``{"records": [{from, to, optStatus, source, coverage, lastModifiedTime}]}``). Deliveries run
on one background thread, in order. Every attempt is recorded in ``Emulator.deliveries``.
"""

from __future__ import annotations

import http.client
import json
import queue
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .clock import iso
from .errors import ApiError, invalid_parameter, not_found, unsupported_media_type
from .multipart import header_value
from .oauth import AuthContext
from .wire import Request, Response

if TYPE_CHECKING:
    from .emulator import Emulator
    from .messages import StoredMessage
    from .optout import ConsentEntry

USER_AGENT = "RingCentral-Webhook/8.3 (emulated)"
MAX_TOKEN_LENGTH = 256

_MESSAGE_STORE = re.compile(
    r"^/restapi/v1\.0/account/([^/]+)/extension/([^/]+)/message-store(/instant)?$"
)
_CONSENTS = re.compile(r"^/restapi/v2/accounts/([^/]+)/sms/consents$")
_REMINDER = "/restapi/v1.0/subscription/~"


@dataclass
class Subscription:
    id: str
    client_id: str
    extension_id: int
    account_id: str
    event_filters: list[str]
    address: str
    verification_token: str | None
    expires_in: int
    created_at: float
    expires_at: float
    status: str = "Active"
    # Deliveries failed in a row; at ``blacklist_after_failures`` the status turns Blacklisted.
    failures: int = 0
    blacklisted_at: float | None = None
    blacklist_reason: str | None = None

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def to_json(self, base_url: str, now: float) -> dict[str, Any]:
        body: dict[str, Any] = {
            "uri": f"{base_url}/restapi/v1.0/subscription/{self.id}",
            "id": self.id,
            "creationTime": iso(self.created_at),
            "status": self.status,
            "eventFilters": list(self.event_filters),
            "expirationTime": iso(self.expires_at),
            "expiresIn": max(0, round(self.expires_at - now)),
            "deliveryMode": {
                "transportType": "WebHook",
                "encryption": False,
                "address": self.address,
            },
        }
        if self.status == "Blacklisted":
            body["blacklistedData"] = {
                "blacklistedAt": iso(self.blacklisted_at or now),
                "reason": self.blacklist_reason or "",
            }
        return body


@dataclass(frozen=True)
class Delivery:
    """One outgoing notification attempt."""

    time: float
    subscription_id: str
    address: str
    headers: dict[str, str]
    payload: dict[str, Any]
    ok: bool
    status: int | None = None
    error: str | None = None


@dataclass
class _Outgoing:
    subscription_id: str
    payload: dict[str, Any]
    extras: dict[str, Any] = field(default_factory=dict)


def _post(
    address: str, headers: dict[str, str], body: bytes, timeout: float, read_limit: int
) -> tuple[int, str, list[tuple[str, str]], bytes, float]:
    """POST and return (status, reason, headers, first ``read_limit`` body bytes, seconds)."""
    parts = urlsplit(address)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    started = time.monotonic()
    connection = connection_class(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read(read_limit)
        return (
            response.status,
            response.reason,
            response.getheaders(),
            data,
            time.monotonic() - started,
        )
    finally:
        connection.close()


class SubscriptionService:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.lock = threading.RLock()
        self.subscriptions: dict[str, Subscription] = {}
        self._deliveries: list[Delivery] = []
        self._queue: queue.Queue[_Outgoing | None] = queue.Queue()
        self._idle = threading.Condition()
        self._in_flight = 0
        self._worker: threading.Thread | None = None
        # Delivery faults (`drop_next`, `repeat_next`): notifications RingCentral loses, or sends
        # twice, as a real network and a real retrying sender do now and then.
        self._drop = 0
        self._repeat = 0

    # -- worker -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(
                target=self._run, name="rc-emulator-webhooks", daemon=True
            )
            self._worker.start()

    def stop(self) -> None:
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=5)
            self._worker = None

    def _enqueue(self, item: _Outgoing) -> None:
        with self._idle:
            self._in_flight += 1
        self._queue.put(item)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._deliver(item)
            finally:
                with self._idle:
                    self._in_flight -= 1
                    self._idle.notify_all()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every queued notification was attempted; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def drop_next(self, count: int = 1) -> None:
        """The next `count` notifications are never sent (not a failure of the receiver)."""
        with self.lock:
            self._drop += count

    def repeat_next(self, count: int = 1) -> None:
        """The next `count` notifications are sent twice, the same payload each time."""
        with self.lock:
            self._repeat += count

    def deliveries(self) -> list[Delivery]:
        with self.lock:
            return list(self._deliveries)

    def clear_deliveries(self) -> None:
        with self.lock:
            self._deliveries.clear()

    def _deliver(self, item: _Outgoing) -> None:
        with self.lock:
            if self._drop:
                self._drop -= 1
                return
            times = 1
            if self._repeat:
                self._repeat -= 1
                times = 2
        for _ in range(times):
            self._deliver_once(item)

    def _deliver_once(self, item: _Outgoing) -> None:
        with self.lock:
            sub = self.subscriptions.get(item.subscription_id)
            if sub is None or sub.status != "Active" or sub.expired(self.emu.now()):
                return
            address, token = sub.address, sub.verification_token
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if token:
            headers["Verification-Token"] = token
        body = json.dumps(item.payload).encode("utf-8")
        status: int | None = None
        error: str | None = None
        try:
            status, _, _, _, elapsed = _post(
                address, headers, body, self.emu.config.webhook_timeout, 64 * 1024
            )
            if elapsed > self.emu.config.webhook_timeout:
                error = "answered too late"
            elif not 200 <= status < 300:
                error = f"answered HTTP {status}"
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = error is None
        now = self.emu.now()
        with self.lock:
            self._deliveries.append(
                Delivery(
                    now, item.subscription_id, address, headers, item.payload, ok, status, error
                )
            )
            sub = self.subscriptions.get(item.subscription_id)
            if sub is None:
                return
            if ok:
                sub.failures = 0
                return
            sub.failures += 1
            if sub.failures >= self.emu.config.blacklist_after_failures and sub.status == "Active":
                sub.status = "Blacklisted"
                sub.blacklisted_at = now
                sub.blacklist_reason = (
                    f"Webhook delivery failed {sub.failures} times in a row (last: {error})"
                )

    # -- events -----------------------------------------------------------------------------

    def _targets(self, extension_id: int) -> list[Subscription]:
        now = self.emu.now()
        return [
            s
            for s in self.subscriptions.values()
            if s.extension_id == extension_id and s.status == "Active" and not s.expired(now)
        ]

    def _payload(self, sub: Subscription, event: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "uuid": str(uuid.uuid4()),
            "event": event,
            "timestamp": iso(self.emu.now()),
            "subscriptionId": sub.id,
            "ownerId": str(sub.extension_id),
            "body": body,
        }

    def _notify(
        self, extension_id: int, direction: str, change: dict[str, Any], last_updated: float
    ) -> None:
        """A ``changes`` event to every subscription with a message-store filter that takes
        messages of ``direction``."""
        body = {
            "extensionId": str(extension_id),
            "lastUpdated": iso(last_updated),
            "changes": [change],
            "ownerId": str(extension_id),
        }
        with self.lock:
            for sub in self._targets(extension_id):
                event = next((f for f in sub.event_filters if _wants_sms(f, direction)), None)
                if event is not None:
                    self._enqueue(_Outgoing(sub.id, self._payload(sub, event, body)))

    def _notify_instant(self, message: StoredMessage) -> None:
        """The whole inbound record to every subscription with the instant-message filter."""
        body = instant_body(message, self.emu.base_url, self.emu.now())
        with self.lock:
            for sub in self._targets(message.extension_id):
                event = next((f for f in sub.event_filters if _is_instant(f)), None)
                if event is not None:
                    self._enqueue(_Outgoing(sub.id, self._payload(sub, event, body)))

    def consent_changed(self, entry: ConsentEntry) -> None:
        """The changed record, as ``{"records": [...]}``, to every subscription of the
        record's account with the consents filter."""
        body = {"records": [entry.to_json(iso)]}
        now = self.emu.now()
        with self.lock:
            for sub in self.subscriptions.values():
                if sub.account_id != entry.account_id or sub.status != "Active":
                    continue
                if sub.expired(now):
                    continue
                event = next((f for f in sub.event_filters if _CONSENTS.match(f)), None)
                if event is not None:
                    self._enqueue(_Outgoing(sub.id, self._payload(sub, event, body)))

    def message_created(self, message: StoredMessage) -> None:
        change = {"type": "SMS", "newCount": 1, "updatedCount": 0, "newMessageIds": [message.id]}
        self._notify(message.extension_id, message.direction, change, message.created_at)
        if message.inbound:
            self._notify_instant(message)

    def messages_updated(
        self, extension_id: int, direction: str, count: int, last_updated: float
    ) -> None:
        change = {"type": "SMS", "newCount": 0, "updatedCount": count, "newMessageIds": []}
        self._notify(extension_id, direction, change, last_updated)

    # -- validation -------------------------------------------------------------------------

    def handshake(self, address: str) -> str | None:
        """Run the ``Validation-Token`` check against ``address``; the reason when it fails."""
        config = self.emu.config
        token = secrets.token_urlsafe(24)
        headers = {
            "Validation-Token": token,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        try:
            status, reason, reply_headers, data, elapsed = _post(
                address, headers, b"", config.webhook_timeout, config.webhook_max_response_bytes + 1
            )
        except (OSError, http.client.HTTPException) as exc:
            return f"the address could not be reached ({type(exc).__name__})"
        if elapsed > config.webhook_timeout:
            return f"the answer took longer than {config.webhook_timeout} s"
        if status != 200:
            return f"the answer was HTTP {status}, not 200"
        echoed = header_value(reply_headers, "Validation-Token")
        if echoed != token:
            return "the answer did not echo the Validation-Token header"
        size = len(f"HTTP/1.1 {status} {reason}\r\n") + 2 + len(data)
        size += sum(len(k) + len(v) + 4 for k, v in reply_headers)
        if size > config.webhook_max_response_bytes:
            return f"the answer is larger than {config.webhook_max_response_bytes} bytes"
        return None

    def expand_filters(self, auth: AuthContext, filters: Any) -> list[str]:
        """Validate ``eventFilters`` and replace ``~`` with the caller's real ids."""
        if not isinstance(filters, list) or not filters:
            raise invalid_parameter("eventFilters")
        expanded = []
        for raw in filters:
            if not isinstance(raw, str) or not raw:
                raise invalid_parameter("eventFilters")
            expanded.append(self._expand(auth, raw))
        return expanded

    def _expand(self, auth: AuthContext, raw: str) -> str:
        path, _, query = raw.partition("?")
        try:
            params = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
        except ValueError:
            raise _bad_filters(raw) from None
        store = _MESSAGE_STORE.match(path)
        if store:
            account, extension, instant = store.groups()
            self._check_owner(auth, account, extension)
            allowed = (
                {"type": ("SMS",)}
                if instant
                else {
                    "type": ("SMS", "Fax", "VoiceMail", "Pager", "Text"),
                    "direction": ("Inbound", "Outbound"),
                }
            )
            if instant and params.get("type") != ["SMS"]:
                raise _bad_filters(raw)
            for name, values in params.items():
                if name not in allowed or len(values) != 1 or values[0] not in allowed[name]:
                    raise _bad_filters(raw)
            expanded = (
                f"/restapi/v1.0/account/{auth.account.id}/extension/{auth.extension.id}"
                f"/message-store{instant or ''}"
            )
            return f"{expanded}?{query}" if query else expanded
        consents = _CONSENTS.match(path)
        if consents:
            self._check_owner(auth, consents.group(1), None)
            if query:
                raise _bad_filters(raw)
            # The consent list needs the SMS permission (the API's x-app-permission); its
            # events are taken to need it too.
            if "SMS" not in auth.app.scopes:
                raise ApiError(
                    403,
                    "CMN-401",
                    "In order to call this API endpoint, application needs to have [SMS] "
                    "permission",
                )
            return f"/restapi/v2/accounts/{auth.account.id}/sms/consents"
        if path == _REMINDER:
            if set(params) - {"threshold", "interval"}:
                raise _bad_filters(raw)
            for values in params.values():
                if len(values) != 1 or not values[0].isdigit():
                    raise _bad_filters(raw)
            return raw
        raise _bad_filters(raw)

    @staticmethod
    def _check_owner(auth: AuthContext, account: str, extension: str | None) -> None:
        if account not in ("~", auth.account.id):
            raise ApiError(
                403, "SUB-406", "Not allowed subscribe for events to extensions of other account"
            )
        if extension is not None and extension not in ("~", str(auth.extension.id)):
            raise ApiError(403, "SUB-405", "Not allowed subscribe for messages to other extensions")

    def check_expires_in(self, value: Any) -> int:
        config = self.emu.config
        if value is None:
            return config.subscription_default_expires_in
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid_parameter("expiresIn")
        if not 1 <= value <= config.subscription_max_expires_in:
            raise invalid_parameter(
                "expiresIn", f"expiresIn must be between 1 and {config.subscription_max_expires_in}"
            )
        return value

    def check_address(self, value: Any) -> str:
        if not isinstance(value, str):
            raise invalid_parameter("deliveryMode.address")
        parts = urlsplit(value)
        schemes = ("https",) if self.emu.config.require_https_webhooks else ("http", "https")
        if parts.scheme not in schemes or not parts.hostname:
            raise invalid_parameter("deliveryMode.address")
        return value

    # -- lookups ----------------------------------------------------------------------------

    def owned_by_caller(self, req: Request) -> Subscription:
        auth = req.auth
        assert auth is not None
        sub_id = req.params["subscription"]
        with self.lock:
            sub = self.subscriptions.get(sub_id)
        if (
            sub is None
            or sub.client_id != auth.app.client_id
            or sub.extension_id != auth.extension.id
        ):
            raise not_found("subscriptionId")
        if sub.expired(self.emu.now()):
            raise ApiError(
                404,
                "SUB-507",
                f"Subscription with key [{sub.id}] and assigned session was expired",
            )
        return sub

    def active_count(self, client_id: str, extension_id: int) -> int:
        now = self.emu.now()
        with self.lock:
            return sum(
                1
                for s in self.subscriptions.values()
                if s.client_id == client_id
                and s.extension_id == extension_id
                and not s.expired(now)
            )

    def clear(self) -> None:
        with self.lock:
            self.subscriptions.clear()


def _bad_filters(raw: str) -> ApiError:
    return ApiError(
        400, "SUB-508", f"Invalid event filters: [{raw}]", parameter_name="eventFilters"
    )


def _wants_sms(event_filter: str, direction: str) -> bool:
    """Whether a message-store filter (not the instant one) takes SMS of ``direction``: no
    ``type`` or ``type=SMS``, no ``direction`` or that one."""
    path, _, query = event_filter.partition("?")
    if not _MESSAGE_STORE.match(path) or path.endswith("/instant"):
        return False
    params = parse_qs(query)
    return params.get("type", ["SMS"]) == ["SMS"] and params.get("direction", [direction]) == [
        direction
    ]


def _is_instant(event_filter: str) -> bool:
    path, _, _ = event_filter.partition("?")
    return bool(_MESSAGE_STORE.match(path)) and path.endswith("/instant")


def instant_body(message: StoredMessage, base_url: str, now: float) -> dict[str, Any]:
    """An instant-message event's ``body``: the whole record, with the event schema's types
    (``InstantMessageEventBody``: ``id`` and ``conversationId`` are strings), ``ownerId``, and
    ``eventType`` as RingCentral's sample payloads carry it."""
    body = message.to_json(base_url, now)
    body["id"] = str(message.id)
    body["conversationId"] = str(message.conversation_id)
    body["eventType"] = "Create"
    body["ownerId"] = str(message.extension_id)
    return body


def _json_body(req: Request, required: bool) -> dict[str, Any]:
    if not req.body and not required:
        return {}
    if req.media_type != "application/json":
        raise unsupported_media_type(req.content_type)
    body = req.json()
    if not isinstance(body, dict):
        raise invalid_parameter("body", "The request body must be a JSON object")
    return body


# -- handlers -------------------------------------------------------------------------------


def handle_create(emu: Emulator, req: Request) -> Response:
    service = emu.subscriptions
    auth = req.auth
    assert auth is not None
    body = _json_body(req, required=True)
    filters = service.expand_filters(auth, body.get("eventFilters"))
    mode = body.get("deliveryMode")
    if not isinstance(mode, dict):
        raise invalid_parameter("deliveryMode")
    if mode.get("transportType") != "WebHook":
        raise invalid_parameter("deliveryMode.transportType")
    address = service.check_address(mode.get("address"))
    token = mode.get("verificationToken")
    if token is not None and (
        not isinstance(token, str) or not 1 <= len(token) <= MAX_TOKEN_LENGTH
    ):
        raise invalid_parameter("deliveryMode.verificationToken")
    expires_in = service.check_expires_in(body.get("expiresIn"))
    if (
        service.active_count(auth.app.client_id, auth.extension.id)
        >= emu.config.max_subscriptions_per_app
    ):
        raise ApiError(403, "SUB-505", "Subscriptions limit exceeded")

    failure = service.handshake(address)
    if failure is not None:
        raise ApiError(400, "SUB-525", f"WebHook server response is invalid: {failure}")

    now = emu.now()
    sub = Subscription(
        id=str(uuid.uuid4()),
        client_id=auth.app.client_id,
        extension_id=auth.extension.id,
        account_id=auth.account.id,
        event_filters=filters,
        address=address,
        verification_token=token,
        expires_in=expires_in,
        created_at=now,
        expires_at=now + expires_in,
    )
    with service.lock:
        service.subscriptions[sub.id] = sub
    return Response.json(200, sub.to_json(emu.base_url, now))


def handle_list(emu: Emulator, req: Request) -> Response:
    auth = req.auth
    assert auth is not None
    now = emu.now()
    with emu.subscriptions.lock:
        records = [
            s.to_json(emu.base_url, now)
            for s in emu.subscriptions.subscriptions.values()
            if s.client_id == auth.app.client_id
            and s.extension_id == auth.extension.id
            and not s.expired(now)
        ]
    return Response.json(
        200, {"uri": f"{emu.base_url}/restapi/v1.0/subscription", "records": records}
    )


def handle_get(emu: Emulator, req: Request) -> Response:
    sub = emu.subscriptions.owned_by_caller(req)
    return Response.json(200, sub.to_json(emu.base_url, emu.now()))


def handle_update(emu: Emulator, req: Request) -> Response:
    """PUT: new filters and/or lifetime; an empty body renews with the default lifetime."""
    service = emu.subscriptions
    sub = service.owned_by_caller(req)
    body = _json_body(req, required=False)
    assert req.auth is not None
    filters = (
        service.expand_filters(req.auth, body["eventFilters"]) if "eventFilters" in body else None
    )
    expires_in = service.check_expires_in(body.get("expiresIn"))
    now = emu.now()
    with service.lock:
        if filters is not None:
            sub.event_filters = filters
        sub.expires_in = expires_in
        sub.expires_at = now + expires_in
    return Response.json(200, sub.to_json(emu.base_url, now))


def handle_renew(emu: Emulator, req: Request) -> Response:
    service = emu.subscriptions
    sub = service.owned_by_caller(req)
    now = emu.now()
    with service.lock:
        sub.expires_at = now + sub.expires_in
    return Response.json(200, sub.to_json(emu.base_url, now))


def handle_delete(emu: Emulator, req: Request) -> Response:
    service = emu.subscriptions
    sub = service.owned_by_caller(req)
    with service.lock:
        service.subscriptions.pop(sub.id, None)
    return Response(204)
