"""The HTTP side: routing, the request pipeline, faults, journal, and socket-level behaviour.

Pipeline for every request outside ``/_emulator/``:

    read body (413 over ``max_body_bytes``)
    -> fault? (drop_before / status / rate_limit answer here; stall / drop_after wrap the rest)
    -> route (404 CMN-120 / 405)
    -> REST routes: Bearer token (401) -> rate limit (429) -> app scope (403 CMN-401) -> handler
       OAuth routes: the handler authenticates the client and applies the Auth group itself
    -> stall, then ``commit`` (a send is stored only now)
    -> drop_after closes the socket here; otherwise the answer is written
    -> one journal entry
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import ssl
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import (
    a2p,
    control,
    identity,
    messages,
    multipart,
    oauth,
    smsconsent,
    store,
    subscriptions,
    sync,
)
from .errors import ApiError
from .faults import Fault
from .journal import JournalEntry, PartRecord, redact_form, redact_headers
from .wire import Request, Response

if TYPE_CHECKING:
    from .emulator import Emulator

# Bodies larger than the limit are still read (up to this much) so the client sees the 413
# instead of a reset connection.
DRAIN_CAP = 64 * 1024 * 1024

Handler = Callable[["Emulator", Request], Response]


@dataclass(frozen=True)
class Endpoint:
    handler: Handler
    group: str | None = None
    scope: str | None = None
    bearer: bool = True


_OWNER = r"/restapi/v1\.0/account/(?P<account>[^/]+)/extension/(?P<extension>[^/]+)"
_SUB = r"/restapi/v1\.0/subscription/(?P<subscription>[^/]+)"
_A2P = r"/restapi/v1\.0/account/(?P<account>[^/]+)/a2p-sms"
# High Volume batches may be far larger than other requests (the spec's x-request-max-body-size).
_A2P_BATCHES = re.compile(_A2P + r"/batches")

ROUTES: list[tuple[re.Pattern[str], dict[str, Endpoint]]] = [
    (
        re.compile(r"/restapi/oauth/authorize"),
        {
            "GET": Endpoint(oauth.handle_authorize, bearer=False),
            "POST": Endpoint(oauth.handle_authorize, bearer=False),
        },
    ),
    (re.compile(r"/restapi/oauth/token"), {"POST": Endpoint(oauth.handle_token, bearer=False)}),
    (re.compile(r"/restapi/oauth/revoke"), {"POST": Endpoint(oauth.handle_revoke, bearer=False)}),
    (
        re.compile(r"/restapi/v1\.0/account/(?P<account>[^/]+)"),
        {"GET": Endpoint(identity.handle_account, "Light", "ReadAccounts")},
    ),
    (
        re.compile(_OWNER),
        {"GET": Endpoint(identity.handle_extension, "Light", "ReadAccounts")},
    ),
    (
        re.compile(_OWNER + r"/phone-number"),
        {"GET": Endpoint(identity.handle_phone_numbers, "Light", "ReadAccounts")},
    ),
    (
        re.compile(_OWNER + r"/sms"),
        {"POST": Endpoint(partial(messages.handle_send, endpoint="sms"), "Medium", "SMS")},
    ),
    (
        re.compile(_OWNER + r"/mms"),
        {"POST": Endpoint(partial(messages.handle_send, endpoint="mms"), "Medium", "SMS")},
    ),
    (
        re.compile(_OWNER + r"/message-store"),
        {"GET": Endpoint(store.handle_list, "Light", "ReadMessages")},
    ),
    (
        re.compile(_OWNER + r"/message-store/(?P<ids>[^/]+)"),
        {
            "GET": Endpoint(store.handle_read, "Light", "ReadMessages"),
            "PUT": Endpoint(store.handle_update, "Medium", "EditMessages"),
        },
    ),
    (
        re.compile(_OWNER + r"/message-store/(?P<ids>[^/]+)/content/(?P<attachment>[^/]+)"),
        {"GET": Endpoint(store.handle_content, "Medium", "ReadMessages")},
    ),
    (
        re.compile(_OWNER + r"/message-sync"),
        {"GET": Endpoint(sync.handle_sync, "Light", "ReadMessages")},
    ),
    (
        _A2P_BATCHES,
        {
            "POST": Endpoint(a2p.handle_create, "Light", "A2PSMS"),
            "GET": Endpoint(a2p.handle_list_batches, "Light", "A2PSMS"),
        },
    ),
    (
        re.compile(_A2P + r"/batches/(?P<batch>[^/]+)"),
        {"GET": Endpoint(a2p.handle_read_batch, "Light", "A2PSMS")},
    ),
    (
        re.compile(_A2P + r"/messages"),
        {"GET": Endpoint(a2p.handle_list_messages, "Light", "A2PSMS")},
    ),
    (
        re.compile(_A2P + r"/messages/(?P<message>[^/]+)"),
        {"GET": Endpoint(a2p.handle_read_message, "Light", "A2PSMS")},
    ),
    (
        re.compile(_A2P + r"/statuses"),
        {"GET": Endpoint(a2p.handle_statuses, "Light", "A2PSMS")},
    ),
    (
        re.compile(r"/restapi/v2/accounts/(?P<account>[^/]+)/sms/consents"),
        {
            "GET": Endpoint(smsconsent.handle_list, "Light", "SMS"),
            "PATCH": Endpoint(smsconsent.handle_update, "Light", "SMS"),
        },
    ),
    (
        re.compile(r"/restapi/v1\.0/subscription"),
        {
            "GET": Endpoint(subscriptions.handle_list, "Light", "SubscriptionWebhook"),
            "POST": Endpoint(subscriptions.handle_create, "Medium", "SubscriptionWebhook"),
        },
    ),
    (
        re.compile(_SUB),
        {
            "GET": Endpoint(subscriptions.handle_get, "Light", "SubscriptionWebhook"),
            "PUT": Endpoint(subscriptions.handle_update, "Medium", "SubscriptionWebhook"),
            "DELETE": Endpoint(subscriptions.handle_delete, "Medium", "SubscriptionWebhook"),
        },
    ),
    (
        re.compile(_SUB + r"/renew"),
        {"POST": Endpoint(subscriptions.handle_renew, "Light", "SubscriptionWebhook")},
    ),
]


def resolve(method: str, path: str) -> tuple[Endpoint, dict[str, str]]:
    """The endpoint for ``method path``; 404 CMN-120 or 405 otherwise."""
    allowed: list[str] = []
    for pattern, methods in ROUTES:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        if method in methods:
            return methods[method], {k: v for k, v in match.groupdict().items() if v is not None}
        allowed.extend(methods)
    if allowed:
        raise ApiError(
            405,
            "CMN-202",
            f"Method {method} is not supported for this resource",
            headers={"Allow": ", ".join(sorted(set(allowed)))},
        )
    raise ApiError(404, "CMN-120", "Invalid URI")


def _fault_response(fault: Fault, path: str) -> Response:
    if fault.kind == "rate_limit":
        error = ApiError(429, fault.error_code or "CMN-301", "Request rate exceeded")
        if fault.retry_after is not None:
            error.headers["Retry-After"] = str(fault.retry_after)
        return Response.error(error)
    is_send = path.endswith("/sms") or path.endswith("/mms")
    defaults = {
        500: ("CMN-203", "Internal Server Error"),
        502: ("CMN-201", "Service Temporary Unavailable"),
        503: ("MSG-290", "Sending SMS failed. Please try later.")
        if is_send
        else ("CMN-201", "Service Temporary Unavailable"),
        504: ("CMN-201", "Service Temporary Unavailable"),
    }
    code, message = defaults.get(fault.status, ("CMN-101", "Request failed"))
    error = ApiError(fault.status, fault.error_code or code, message)
    if fault.retry_after is not None:
        error.headers["Retry-After"] = str(fault.retry_after)
    return Response.error(error)


class _BodyTooLarge(Exception):
    pass


class _BadFraming(Exception):
    pass


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], emu: Emulator, tls: ssl.SSLContext | None = None
    ) -> None:
        self.emu = emu
        self.tls = tls
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, RequestHandler)

    def get_request(self):
        sock, address = super().get_request()
        if self.tls is not None:
            # The handshake is left to the handler's thread, so a slow client cannot hold up
            # the accept loop.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def track(self, sock: socket.socket, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(sock)
            else:
                self._connections.discard(sock)

    def close_connections(self) -> None:
        """Cut kept-alive client connections so no handler thread outlives ``stop()``."""
        with self._connections_lock:
            connections = list(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "RingCentralEmulator/1.0"
    sys_version = ""
    server: EmulatorHTTPServer

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def handle(self) -> None:
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.settimeout(30)
                self.connection.do_handshake()
                self.connection.settimeout(None)
            except (ssl.SSLError, OSError):
                return  # the client refused our certificate or went away: nothing to serve
        super().handle()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.emu.config.log_requests:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    # -- body -------------------------------------------------------------------------------

    def _read_exact(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) != size:
            raise _BadFraming("the connection closed before the body was complete")
        return data

    def _body_limit(self) -> int:
        config = self.server.emu.config
        path = unquote(urlsplit(self.path).path)
        if self.command == "POST" and _A2P_BATCHES.fullmatch(path):
            return config.a2p_max_body_bytes
        return config.max_body_bytes

    def _read_body(self) -> bytes:
        limit = self._body_limit()
        encoding = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in encoding:
            chunks: list[bytes] = []
            total = 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise _BadFraming("malformed chunk size") from None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > DRAIN_CAP:
                    raise _BadFraming("body too large to drain")
                data = self._read_exact(size)
                if total <= limit:
                    chunks.append(data)
                self._read_exact(2)
            if total > limit:
                raise _BodyTooLarge()
            return b"".join(chunks)
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
            if length < 0:
                raise ValueError
        except ValueError:
            raise _BadFraming("malformed Content-Length") from None
        if length > limit:
            if length > DRAIN_CAP:
                raise _BadFraming("body too large to drain")
            remaining = length
            while remaining:
                remaining -= len(self._read_exact(min(remaining, 1 << 20)))
            raise _BodyTooLarge()
        return self._read_exact(length)

    # -- socket helpers ---------------------------------------------------------------------

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if readable:
                if isinstance(self.connection, ssl.SSLSocket):
                    # A waiting client sends nothing more; TLS offers no peek, and what arrives
                    # now is its close_notify or the end of the connection.
                    return True
                return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True
        return False

    def _stall(self, seconds: float) -> bool:
        """Wait ``seconds`` of real time; False as soon as the client hangs up."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.server.stopping.is_set():
                return False
            if self._client_gone():
                return False
            time.sleep(min(0.05, left))
        return not self._client_gone()

    def _abort(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _write(self, response: Response, extra: dict[str, str], method: str) -> None:
        self.send_response(response.status)
        headers = {**extra, **response.headers}
        if response.content_type:
            headers["Content-Type"] = response.content_type
        headers["Content-Length"] = str(len(response.body))
        headers["RCRequestId"] = str(uuid.uuid4())
        for name, value in headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        # Head and body leave in one write: two small writes would meet Nagle's algorithm and
        # the client's delayed ACK, costing ~40 ms per request.
        self._headers_buffer.append(b"\r\n")
        if method != "HEAD" and response.body:
            self._headers_buffer.append(response.body)
        self.flush_headers()

    # -- pipeline ---------------------------------------------------------------------------

    def _handle(self) -> None:
        emu = self.server.emu
        method = self.command
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = parse_qs(split.query, keep_blank_values=True)
        headers = list(self.headers.items())

        if path.startswith("/_emulator/") or path == "/_emulator":
            try:
                body = self._read_body()
            except _BodyTooLarge:
                self.close_connection = True
                self._write(Response.json(413, {"error": "body too large"}), {}, method)
                return
            except _BadFraming as exc:
                self.close_connection = True
                self._write(Response.json(400, {"error": str(exc)}), {}, method)
                return
            request = Request(method, path, query, headers, body)
            self._write(control.handle(emu, request), {}, method)
            return

        seq = emu.journal_seq()
        started = emu.now()
        req = Request(method, path, query, headers, b"")
        note: dict[str, Any] = {}

        def record(
            status: int | None, outcome: str, response: Response | None = None, *notes: str
        ) -> None:
            entry = JournalEntry(
                seq=seq,
                time=started,
                method=method,
                path=path,
                query=query,
                headers=redact_headers(headers),
                content_type=req.content_type,
                body_size=len(req.body),
                status=status,
                outcome=outcome,
                error_code=response.error_code if response else None,
                message_id=(response.message_id if response else None) or req.message_id,
                fault=note.get("fault"),
                json=note.get("json"),
                form=note.get("form"),
                parts=note.get("parts"),
                parse_error=note.get("parse_error"),
                extension_id=req.auth.extension.id if req.auth else req.extension_id,
                client_id=req.auth.app.client_id if req.auth else req.client_id,
                notes=notes,
            )
            emu.record(entry)

        try:
            req.body = self._read_body()
        except _BodyTooLarge:
            self.close_connection = True
            error = ApiError(
                413,
                "CMN-101",
                f"Request body is larger than {self._body_limit()} bytes",
                parameter_name="body",
            )
            response = Response.error(error)
            record(413, "rejected", response)
            self._write(response, {}, method)
            return
        except _BadFraming as exc:
            self.close_connection = True
            response = Response.error(ApiError(400, "CMN-104", f"Cannot parse request: {exc}"))
            record(400, "rejected", response)
            self._write(response, {}, method)
            return

        self._describe_body(req, note)

        fault = emu.faults.take(method, path)
        if fault is not None:
            note["fault"] = fault.kind
            if fault.kind == "drop_before":
                record(None, "dropped_before")
                self._abort()
                return
            if fault.kind in ("status", "rate_limit"):
                response = _fault_response(fault, path)
                record(response.status, response.outcome, response)
                self._write(response, {}, method)
                return

        extra: dict[str, str] = {}
        response = self._dispatch(emu, req, extra)

        stalled_out = fault is not None and fault.kind == "stall" and not self._stall(fault.seconds)
        if stalled_out:
            record(None, "stalled", response if response.commit is None else None)
            self._abort()
            return
        if response.commit is not None:
            try:
                response = response.commit()
            except Exception:  # an emulator bug must still answer like a server
                traceback.print_exc(file=sys.stderr)
                response = Response.error(ApiError(500, "CMN-203", "Internal Server Error"))
        if fault is not None and fault.kind == "drop_after":
            record(None, "dropped_after", response)
            self._abort()
            return
        # Recorded before writing so a client that reads the answer also finds the entry.
        record(response.status, response.outcome, response)
        try:
            self._write(response, extra, method)
        except OSError:
            record(response.status, response.outcome, response, "the answer could not be written")
            self.close_connection = True

    def _dispatch(self, emu: Emulator, req: Request, extra: dict[str, str]) -> Response:
        try:
            endpoint, params = resolve(req.method, req.path)
            req.params = params
            if endpoint.bearer:
                req.auth = emu.oauth.authenticate(req)
                if endpoint.group is not None:
                    key = ("user", req.auth.extension.id, req.auth.app.client_id)
                    decision = emu.rate_limiter.check(key, endpoint.group)
                    extra.update(decision.headers)
                    if not decision.allowed:
                        raise ApiError(
                            429,
                            "CMN-301",
                            "Request rate exceeded",
                            headers={"Retry-After": str(decision.retry_after)},
                        )
                if endpoint.scope is not None and endpoint.scope not in req.auth.app.scopes:
                    raise ApiError(
                        403,
                        "CMN-401",
                        f"In order to call this API endpoint, application needs to have "
                        f"[{endpoint.scope}] permission",
                    )
            return endpoint.handler(emu, req)
        except ApiError as error:
            return Response.error(error)
        except Exception:  # an emulator bug must still answer like a server
            traceback.print_exc(file=sys.stderr)
            return Response.error(ApiError(500, "CMN-203", "Internal Server Error"))

    @staticmethod
    def _describe_body(req: Request, note: dict[str, Any]) -> None:
        media = req.media_type
        if not req.body or media is None:
            return
        if media == "application/json":
            try:
                note["json"] = json.loads(req.body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                note["parse_error"] = f"invalid JSON: {exc}"
        elif media == "application/x-www-form-urlencoded":
            form = parse_qs(req.body.decode("latin-1"), keep_blank_values=True)
            note["form"] = redact_form(form)
        elif media.startswith("multipart/"):
            try:
                parts = multipart.parse(req.body, req.content_type or "")
            except multipart.MultipartError as exc:
                note["parse_error"] = str(exc)
            else:
                note["parts"] = tuple(
                    PartRecord(headers=dict(p.headers), size=len(p.body), sha256=p.sha256)
                    for p in parts
                )
