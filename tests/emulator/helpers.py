"""Helpers for the emulator tests: constants, an HTTP client, hand-built multipart bodies and a
tiny webhook receiver. Nothing here imports Django."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret"
REDIRECT_URI = "http://portal.test/ringcentral/callback/"

LOCAL_MMS = "+16505550100"
LOCAL_SMS_ONLY = "+16505550101"
TOLL_FREE = "+18005550102"
FAX = "+16505550103"
NO_FEATURES = "+16505550104"
INTERNATIONAL = "+16505550105"
RECIPIENT = "+16505550199"
OTHER_RECIPIENT = "+16505550198"

NUMBERS = [
    {
        "phone_number": LOCAL_MMS,
        "features": ["SmsSender", "MmsSender", "CallerId"],
        "label": "Main line",
    },
    {"phone_number": LOCAL_SMS_ONLY, "features": ["SmsSender", "CallerId"]},
    {"phone_number": TOLL_FREE, "features": ["SmsSender"], "payment_type": "TollFree"},
    {"phone_number": FAX, "features": [], "type": "FaxOnly"},
    {"phone_number": NO_FEATURES, "features": [], "type": "VoiceOnly"},
    {
        "phone_number": INTERNATIONAL,
        "features": ["SmsSender", "MmsSender", "InternationalSmsSender"],
    },
]


class Api:
    """requests against the emulator with a Bearer token."""

    def __init__(self, base_url: str, access_token: str | None) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.token = access_token

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        headers.update(extra or {})
        return headers

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = self.headers(kwargs.pop("headers", None))
        kwargs.setdefault("timeout", 10)
        return self.session.request(method, self.base_url + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def send_sms(self, text: str = "Hello", to: list[str] | None = None, sender: str = LOCAL_MMS):
        body = {
            "from": {"phoneNumber": sender},
            "to": [{"phoneNumber": n} for n in (to or [RECIPIENT])],
            "text": text,
        }
        return self.post("/restapi/v1.0/account/~/extension/~/sms", json=body)

    def send_multipart(
        self,
        body: bytes,
        boundary: str,
        path: str = "/restapi/v1.0/account/~/extension/~/sms",
        subtype: str = "form-data",
    ) -> requests.Response:
        content_type = f"multipart/{subtype}; boundary={boundary}"
        return self.post(path, data=body, headers={"Content-Type": content_type})


def error_code(response: requests.Response) -> str:
    return response.json()["errors"][0]["errorCode"]


STORE = "/restapi/v1.0/account/~/extension/~/message-store"
SYNC = "/restapi/v1.0/account/~/extension/~/message-sync"


def control(emu, method: str, name: str, **kwargs: Any) -> requests.Response:
    """A call to the emulator's ``/_emulator/`` control API."""
    return requests.request(method, f"{emu.base_url}/_emulator/{name}", timeout=10, **kwargs)


def freeze(emu) -> float:
    """Stop the emulator clock at its current time: only ``advance`` moves it from now on, so
    the ticker thread cannot make anything due meanwhile. Returns that time."""
    start = emu.now()
    emu.clock = lambda: start
    return start


def subscribe(api: Api, address: str, filters: list[str], token: str | None = "s3cret-token"):
    mode = {"transportType": "WebHook", "address": address}
    if token is not None:
        mode["verificationToken"] = token
    return api.post(
        "/restapi/v1.0/subscription", json={"eventFilters": filters, "deliveryMode": mode}
    )


# -- hand-built multipart bodies (so tests control every header byte) -----------------------


@dataclass
class PartSpec:
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_part(data: dict[str, Any], name: str = "json") -> PartSpec:
    return PartSpec(
        json.dumps(data).encode(),
        [
            ("Content-Disposition", f'form-data; name="{name}"; filename="request.json"'),
            ("Content-Type", "application/json"),
        ],
    )


def file_part(
    data: bytes, filename: str | None = "photo.png", content_type: str | None = "image/png"
) -> PartSpec:
    headers = []
    disposition = 'form-data; name="attachment"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    headers.append(("Content-Disposition", disposition))
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    return PartSpec(data, headers)


def build_multipart(parts: list[PartSpec], boundary: str | None = None) -> tuple[bytes, str]:
    boundary = boundary or f"b{uuid.uuid4().hex}"
    out = bytearray()
    for part in parts:
        out += f"--{boundary}\r\n".encode()
        for name, value in part.headers:
            out += f"{name}: {value}\r\n".encode()
        out += b"\r\n" + part.body + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), boundary


def message_body(text: str = "Look", to: list[str] | None = None, sender: str = LOCAL_MMS):
    return {
        "from": {"phoneNumber": sender},
        "to": [{"phoneNumber": n} for n in (to or [RECIPIENT])],
        "text": text,
    }


# -- webhook receiver --------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """A stdlib HTTP server on port 0 that records what it receives.

    ``echo``: answer the validation handshake correctly; ``status``: status for every answer;
    ``delay``: seconds to wait before answering; ``padding``: extra body bytes in the answer.
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.echo = True
        self.status = 200
        self.delay = 0.0
        self.padding = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.received.append(Received(dict(self.headers.items()), body))
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(receiver.status)
                token = self.headers.get("Validation-Token")
                if token and receiver.echo:
                    self.send_header("Validation-Token", token)
                payload = b"x" * receiver.padding
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/rc"

    def notifications(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if "Validation-Token" not in r.headers]

    def handshakes(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if "Validation-Token" in r.headers]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- OAuth -------------------------------------------------------------------------------------


def token_request(
    base_url: str,
    form: dict[str, str],
    client: tuple[str, str] | None = (CLIENT_ID, CLIENT_SECRET),
) -> requests.Response:
    return requests.post(f"{base_url}/restapi/oauth/token", data=form, auth=client, timeout=10)


def exchange(base_url: str, code: str, **extra: str) -> requests.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    form.update(extra)
    return token_request(base_url, form)


def refresh(base_url: str, refresh_token: str) -> requests.Response:
    return token_request(base_url, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def consent_ticket(page: str) -> str:
    match = re.search(r'name="ticket" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def browser_login(base_url: str, extension_id: int, **params: str) -> dict[str, str]:
    """Walk the consent page like a browser; the redirect's query parameters."""
    query = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI}
    query.update(params)
    page = requests.get(
        f"{base_url}/restapi/oauth/authorize",
        params=query,
        headers={"Accept": "text/html"},
        timeout=10,
    )
    assert page.status_code == 200, page.text
    answer = requests.post(
        f"{base_url}/restapi/oauth/authorize",
        data={
            "ticket": consent_ticket(page.text),
            "extension_id": str(extension_id),
            "decision": "approve",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text
    return query_of(answer.headers["Location"])


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
