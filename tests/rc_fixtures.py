"""RingCentral fixtures: a real emulator on a free port, and helpers that link accounts through
it over HTTP exactly as a browser would.

The Django test client answers for http://testserver, so the redirect to the emulator is
followed with `requests`, the consent form is posted there, and the emulator's redirect back to
/ringcentral/callback/ is fed to the Django test client.
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.conf import settings as django_settings
from django.utils import timezone

CALLBACK = "http://testserver/ringcentral/callback/"

# One RingCentral user with one number of each kind the portal must tell apart.
NUMBER_SMS_MMS = "+16505550140"
NUMBER_SMS_ONLY = "+16505550141"
NUMBER_TOLL_FREE = "+18885550142"
NUMBER_FAX = "+16505550143"
NUMBERS = [
    {
        "phone_number": NUMBER_SMS_MMS,
        "features": ["SmsSender", "MmsSender", "CallerId"],
        "label": "Main line",
    },
    {"phone_number": NUMBER_SMS_ONLY, "features": ["SmsSender", "CallerId"], "label": "Texts"},
    {
        "phone_number": NUMBER_TOLL_FREE,
        "features": ["SmsSender", "CallerId"],
        "payment_type": "TollFree",
        "label": "Toll-free",
    },
    {"phone_number": NUMBER_FAX, "features": [], "type": "FaxOnly", "label": "Fax"},
]


@pytest.fixture
def emulator(settings):
    """A started emulator with this portal's app registered; settings point at it."""
    from messaging.ringcentral.emulator import Emulator, EmulatorConfig

    emu = Emulator(
        EmulatorConfig(access_token_ttl=3600, refresh_token_ttl=604800, rate_limits_enabled=True)
    )
    emu.start(host="127.0.0.1", port=0)
    emu.register_app(
        settings.RINGCENTRAL_CLIENT_ID, settings.RINGCENTRAL_CLIENT_SECRET, redirect_uris=[CALLBACK]
    )
    settings.RINGCENTRAL_SERVER_URL = emu.base_url
    settings.PUBLIC_BASE_URL = ""
    try:
        yield emu
    finally:
        emu.stop()


@contextmanager
def shared_emulator():
    """An emulator without rate limits for a whole module of worker tests, with Rita Frontdesk
    (`emu.rc_user`) and this portal's app; settings point at it while the block runs."""
    from messaging.ringcentral.emulator import Emulator, EmulatorConfig

    emu = Emulator(EmulatorConfig(rate_limits_enabled=False)).start(host="127.0.0.1", port=0)
    emu.register_app(
        django_settings.RINGCENTRAL_CLIENT_ID,
        django_settings.RINGCENTRAL_CLIENT_SECRET,
        redirect_uris=[CALLBACK],
    )
    emu.rc_user = emu.add_extension(
        name="Rita Frontdesk", email="rita@acme.example", numbers=[dict(n) for n in NUMBERS]
    )
    previous = django_settings.RINGCENTRAL_SERVER_URL
    django_settings.RINGCENTRAL_SERVER_URL = emu.base_url
    try:
        yield emu
    finally:
        django_settings.RINGCENTRAL_SERVER_URL = previous
        emu.stop()


@pytest.fixture
def rc_user(emulator):
    """A RingCentral user (extension) with an SMS+MMS, an SMS-only, a toll-free and a fax
    number."""
    return emulator.add_extension(
        name="Rita Frontdesk", email="rita@acme.example", numbers=[dict(n) for n in NUMBERS]
    )


def start_link(client) -> str:
    """POST /ringcentral/connect/ and return the authorize URL it redirects to."""
    response = client.post("/ringcentral/connect/")
    assert response.status_code == 302, response.content[:500]
    return response["Location"]


def consent(emu, authorize_url: str, *, extension_id=None, approve=True) -> str:
    """Open the emulator's sign-in page and answer it; return where it redirects the browser."""
    page = requests.get(authorize_url, timeout=10)
    assert page.status_code == 200, page.text[:500]
    ticket = re.search(r'name="ticket" value="([^"]+)"', page.text).group(1)
    form = {"ticket": ticket, "decision": "approve" if approve else "deny"}
    if extension_id is not None:
        form["extension_id"] = str(extension_id)
    answer = requests.post(
        f"{emu.base_url}/restapi/oauth/authorize", data=form, allow_redirects=False, timeout=10
    )
    assert answer.status_code in (302, 303), answer.text[:500]
    return answer.headers["Location"]


def callback_path(location: str) -> str:
    assert location.startswith(CALLBACK), location
    parts = urlsplit(location)
    return f"{parts.path}?{parts.query}"


def link_through_browser(client, emu, extension, *, approve=True):
    """The whole round trip; returns the Django response of the callback."""
    location = consent(emu, start_link(client), extension_id=extension.id, approve=approve)
    return client.get(callback_path(location))


def query_of(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


def link_directly(emu, team, user, extension):
    """A linked connection made through the real code exchange, skipping the browser."""
    from messaging.links import connections
    from messaging.ringcentral import oauth

    verifier, challenge = oauth.pkce_pair()
    code = emu.authorize_code(
        django_settings.RINGCENTRAL_CLIENT_ID, CALLBACK, extension.id, code_challenge=challenge
    )
    tokens = oauth.exchange_code(code, CALLBACK, verifier)
    connection, _ = connections.link(team, user, tokens)
    return connection


def expire_access_token(connection) -> None:
    """Make our copy of the access token look expired (RingCentral's copy is still valid)."""
    type(connection).objects.filter(pk=connection.pk).update(
        access_expires_at=timezone.now() - timedelta(minutes=1)
    )


def journal(emu, path_contains: str | None = None):
    """The emulator's journal once it has caught up.

    The emulator writes an entry just after it has sent the answer, so a client can hold the
    answer a moment before the entry exists. Wait until the journal stops growing (briefly).
    """
    deadline = time.monotonic() + 5
    count = len(emu.journal_entries())
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = len(emu.journal_entries())
        if now == count:
            break
        count = now
    return emu.journal_entries(path_contains=path_contains)


def reset_journal(emu) -> None:
    """Start the journal afresh, after the requests already answered have been recorded."""
    journal(emu)
    emu.reset()


def token_requests(emu, grant_type: str | None = None):
    entries = journal(emu, "/restapi/oauth/token")
    if grant_type is None:
        return entries
    return [e for e in entries if (e.form or {}).get("grant_type") == [grant_type]]
