"""Fixtures: a started emulator per test, an app, a user with typical numbers, an HTTP client
and a webhook receiver. Nothing here imports Django."""

from __future__ import annotations

from typing import Any

import pytest

from messaging.ringcentral.emulator import Emulator, EmulatorConfig

from .helpers import CLIENT_ID, CLIENT_SECRET, NUMBERS, REDIRECT_URI, Api, WebhookReceiver


@pytest.fixture
def config() -> EmulatorConfig:
    """Override in a test module to start the emulator differently."""
    return EmulatorConfig(sent_after=1.0, delivered_after=3.0)


@pytest.fixture
def emu(config):
    emulator = Emulator(config)
    emulator.start(host="127.0.0.1", port=0)
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def app(emu):
    return emu.register_app(CLIENT_ID, CLIENT_SECRET, redirect_uris=[REDIRECT_URI])


@pytest.fixture
def ext(emu):
    return emu.add_extension(name="Ada Lovelace", email="ada@example.com", numbers=NUMBERS)


@pytest.fixture
def other_ext(emu, ext):
    return emu.add_extension(
        name="Grace Hopper",
        email="grace@example.com",
        numbers=[{"phone_number": "+16505550120", "features": ["SmsSender"]}],
    )


@pytest.fixture
def tokens(emu, app, ext) -> dict[str, Any]:
    return emu.issue_tokens(CLIENT_ID, ext.id)


@pytest.fixture
def api(emu, tokens) -> Api:
    return Api(emu.base_url, tokens["access_token"])


@pytest.fixture
def webhook():
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.close()
