"""Injected faults: status, stall, drop_before, drop_after, rate_limit."""

from __future__ import annotations

import time

import pytest
import requests

from messaging.ringcentral.emulator import Fault

from .helpers import error_code, message_body

SMS = "/restapi/v1.0/account/~/extension/~/sms"


def wait_for_entry(emu, outcome: str, timeout: float = 3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in emu.journal if e.outcome == outcome]
        if found:
            return found[-1]
        time.sleep(0.02)
    raise AssertionError(f"no journal entry with outcome {outcome}")


def test_a_status_fault_answers_503_msg_290_on_a_send_and_stores_nothing(api, emu):
    emu.inject(Fault("status", path_contains="/sms", status=503))
    response = api.send_sms()
    assert response.status_code == 503
    assert error_code(response) == "MSG-290"
    assert len(emu.messages) == 0
    assert api.send_sms().status_code == 200


def test_a_status_fault_is_consumed_once_per_count(api, emu):
    emu.inject(Fault("status", path_contains="/sms", status=500, count=2))
    assert [api.send_sms().status_code for _ in range(3)] == [500, 500, 200]


def test_a_fault_only_hits_matching_requests(api, emu):
    emu.inject(Fault("status", path_contains="/message-store", status=503))
    assert api.send_sms().status_code == 200
    response = api.get("/restapi/v1.0/account/~/extension/~/message-store")
    assert response.status_code == 503
    assert error_code(response) == "CMN-201"


def test_a_fault_can_match_on_method(api, emu):
    emu.inject(Fault("status", method="GET", status=502))
    assert api.send_sms().status_code == 200
    assert api.get("/restapi/v1.0/account/~").status_code == 502


def test_a_stall_delays_the_answer_then_stores_and_answers(api, emu):
    emu.inject(Fault("stall", path_contains="/sms", seconds=0.4))
    started = time.monotonic()
    response = api.send_sms()
    assert time.monotonic() - started >= 0.4
    assert response.status_code == 200
    assert len(emu.messages) == 1
    entry = emu.journal[-1]
    assert entry.fault == "stall" and entry.outcome == "accepted"


def test_a_stalled_send_whose_client_gives_up_is_not_stored(api, emu):
    emu.inject(Fault("stall", path_contains="/sms", seconds=1.0))
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.post(SMS, json=message_body(), timeout=0.2)
    entry = wait_for_entry(emu, "stalled")
    assert entry.status is None
    assert len(emu.messages) == 0


def test_drop_before_closes_the_socket_and_stores_nothing(api, emu):
    emu.inject(Fault("drop_before", path_contains="/sms"))
    with pytest.raises(requests.exceptions.ConnectionError):
        api.send_sms()
    assert len(emu.messages) == 0
    entry = emu.journal[-1]
    assert entry.outcome == "dropped_before" and entry.status is None


def test_drop_after_stores_the_message_but_never_answers(api, emu):
    emu.inject(Fault("drop_after", path_contains="/sms"))
    with pytest.raises(requests.exceptions.ConnectionError):
        api.send_sms("lost answer")
    [message] = list(emu.messages)
    assert message.text == "lost answer"
    entry = emu.journal[-1]
    assert entry.outcome == "dropped_after"
    assert entry.message_id == message.id


def test_a_rate_limit_fault_answers_429_with_retry_after(api, emu):
    emu.inject(Fault("rate_limit", path_contains="/sms", retry_after=7))
    response = api.send_sms()
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert error_code(response) == "CMN-301"
    assert "X-Rate-Limit-Group" not in response.headers
    assert emu.journal[-1].outcome == "rate_limited"


def test_a_rate_limit_fault_without_retry_after_sends_no_header(api, emu):
    emu.inject(Fault("rate_limit", path_contains="/sms"))
    response = api.send_sms()
    assert response.status_code == 429
    assert "Retry-After" not in response.headers


def test_an_unknown_fault_kind_is_refused():
    with pytest.raises(ValueError):
        Fault("explode")
