"""How a send reaches RingCentral: https verified against the CA bundle, through the proxy the
environment names, on one kept-alive connection that is opened again when the server drops it.

RingCentral is https only, so these tests serve the emulator over TLS with a certificate made
for the test and trust it the way an operator would trust a TLS-inspecting proxy's CA:
REQUESTS_CA_BUNDLE.
"""

from __future__ import annotations

import pytest

from messaging.links import connections
from messaging.models import AttemptOutcome, MessageStatus
from messaging.ringcentral.emulator import Emulator, EmulatorConfig
from messaging.ringcentral.emulator.tls import self_signed
from tests.connect_proxy import ConnectProxy
from tests.factories import make_message
from tests.rc_fixtures import CALLBACK, NUMBER_SMS_MMS, NUMBERS, journal, link_directly
from tests.test_send_task import TO, add_attachment, clear_shared_limiter, pattern, send

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy")


@pytest.fixture(autouse=True)
def _files_in_a_temporary_folder(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media", "base_url": None},
        },
    }


@pytest.fixture
def https_emulator(settings, tmp_path, monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    certificate = self_signed(tmp_path / "tls")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate.certfile))
    emu = Emulator(EmulatorConfig(rate_limits_enabled=False))
    emu.start(host="127.0.0.1", port=0, tls=certificate.server_context())
    emu.register_app(
        settings.RINGCENTRAL_CLIENT_ID, settings.RINGCENTRAL_CLIENT_SECRET, redirect_uris=[CALLBACK]
    )
    emu.rc_user = emu.add_extension(name="Rita", numbers=[dict(n) for n in NUMBERS])
    settings.RINGCENTRAL_SERVER_URL = emu.base_url
    assert emu.base_url.startswith("https://127.0.0.1:")
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def sender(https_emulator, team, alice):
    clear_shared_limiter()
    connection = link_directly(https_emulator, team, alice, https_emulator.rc_user)
    connections.sync_numbers(connection)
    https_emulator.reset()
    return connection.numbers.get(phone_number=NUMBER_SMS_MMS)


def posts(emu):
    return [e for e in journal(emu, "/sms") if e.method == "POST"]


def test_an_mms_goes_over_https_verified_against_the_ca_bundle(https_emulator, sender, alice):
    message = make_message(sender, alice, to=(TO,), text="Over TLS")
    photo = add_attachment(message, pattern(600_000, 3), "IMG_0042.jpg", "image/jpeg")
    assert send(message) == "sent"

    (post,) = posts(https_emulator)
    _json, part = post.parts
    assert (part.size, part.sha256) == (photo.size, photo.sha256)
    assert post.header("User-Agent").startswith("mmsportal/")
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT


def test_a_certificate_the_bundle_does_not_vouch_for_sends_nothing(
    https_emulator, sender, alice, tmp_path, monkeypatch
):
    stranger = self_signed(tmp_path / "other", common_name="Someone else")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(stranger.certfile))
    message = make_message(sender, alice, to=(TO,), text="Not to an impostor")

    assert send(message) == "retry"
    assert posts(https_emulator) == []
    message.refresh_from_db()
    assert message.status == MessageStatus.RETRY_WAIT
    assert message.error_reason == (
        "The portal could not verify the certificate of the RingCentral server."
    )
    assert "REQUESTS_CA_BUNDLE" in message.error_fix
    attempt = message.send_attempts.get()
    assert attempt.outcome == AttemptOutcome.RETRYABLE
    assert "certificate not trusted" in attempt.detail


def test_sends_go_through_the_proxy_in_https_proxy_on_one_tunnel(
    https_emulator, sender, alice, monkeypatch
):
    proxy = ConnectProxy("office", "p@ss word")
    try:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url.replace("://", "://office:p%40ss%20word@"))
        first = make_message(sender, alice, to=(TO,), text="Via the proxy")
        second = make_message(sender, alice, to=(TO,), text="Same tunnel")
        assert send(first) == "sent"
        assert send(second) == "sent"
    finally:
        proxy.stop()
    host, port = https_emulator.address
    # Both sends used one tunnel: the connection was kept alive between them.
    assert proxy.connects == [{"target": f"{host}:{port}", "authorization": proxy.expected}]
    assert len(posts(https_emulator)) == 2


def test_a_proxy_the_portal_cannot_use_is_named_in_the_reason(
    https_emulator, sender, alice, monkeypatch
):
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1080")
    message = make_message(sender, alice, to=(TO,), text="Through what?")
    assert send(message) == "retry"
    message.refresh_from_db()
    assert "HTTPS_PROXY" in message.error_reason
    assert message.error_fix.endswith("HTTPS_PROXY must be an http:// proxy.")
    assert posts(https_emulator) == []


def test_a_kept_alive_connection_the_server_closed_is_opened_again(https_emulator, sender, alice):
    first = make_message(sender, alice, to=(TO,), text="One")
    assert send(first) == "sent"
    # RingCentral's load balancers drop idle connections; the next send must not be lost to it.
    https_emulator._server.close_connections()
    second = make_message(sender, alice, to=(TO,), text="Two")
    assert send(second) == "sent"
    assert [p.json["text"] for p in posts(https_emulator)] == ["One", "Two"]
