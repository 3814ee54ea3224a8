"""The Python interface itself: starting, stopping, context manager, config checks."""

from __future__ import annotations

import pytest
import requests

from messaging.ringcentral.emulator import Emulator, EmulatorConfig


def test_the_context_manager_starts_on_a_free_port_and_stops():
    with Emulator() as emu:
        assert emu.base_url.startswith("http://127.0.0.1:")
        assert requests.get(f"{emu.base_url}/_emulator/health", timeout=5).status_code == 200
        url = emu.base_url
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{url}/_emulator/health", timeout=2)


def test_stop_cuts_kept_alive_connections():
    emu = Emulator().start()
    session = requests.Session()
    url = f"{emu.base_url}/_emulator/health"
    assert session.get(url, timeout=5).status_code == 200
    emu.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(url, timeout=2)


def test_two_emulators_run_side_by_side():
    with Emulator() as first, Emulator() as second:
        assert first.base_url != second.base_url


def test_inconsistent_delays_are_refused():
    with pytest.raises(ValueError):
        EmulatorConfig(sent_after=5, delivered_after=1)


def test_unknown_rate_limit_groups_are_refused():
    with pytest.raises(ValueError):
        EmulatorConfig(rate_limits={"Ludicrous": 1})


def test_numbers_must_be_e164_and_unique():
    emu = Emulator()
    emu.add_extension(name="A", numbers=[{"phone_number": "+16505550100"}])
    with pytest.raises(ValueError):
        emu.add_extension(name="B", numbers=[{"phone_number": "+16505550100"}])
    with pytest.raises(ValueError):
        emu.add_extension(name="C", numbers=[{"phone_number": "6505550100"}])
