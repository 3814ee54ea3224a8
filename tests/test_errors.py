"""errors.from_response reads RingCentral's error answers through ERROR_TABLE.

Every answer here is a real HTTP response from the emulator (its fault injection writes
RingCentral's error JSON for any status and code), read with the project's own HTTP session.
"""

from __future__ import annotations

import pytest
import requests

from messaging.ringcentral import errors, http, limits
from messaging.ringcentral.emulator import Emulator, EmulatorConfig, Fault

PROBE = "/restapi/v1.0/account/~/extension/~/sms"
UNLISTED_CODE = "XYZ-999"

EXPECTED_FLAGS = {
    # kind: (retryable, permanent)
    "rejected": (False, True),
    "permission": (False, True),
    "not_found": (False, True),
    "auth": (True, False),
    "rate_limited": (True, False),
    "server": (True, False),
}


@pytest.fixture(scope="module")
def emu():
    emulator = Emulator(EmulatorConfig()).start(host="127.0.0.1", port=0)
    try:
        yield emulator
    finally:
        emulator.stop()


def answer(emu, status: int, code: str | None = None, retry_after: int | None = None):
    emu.inject(
        Fault(
            "status", path_contains=PROBE, status=status, error_code=code, retry_after=retry_after
        )
    )
    return http.new_session().post(emu.base_url + PROBE, json={}, timeout=5)


@pytest.mark.parametrize(
    ("status", "code"), sorted(errors.ERROR_TABLE), ids=lambda v: str(v) or "any"
)
def test_each_table_entry_classifies_the_real_answer(emu, status, code):
    response = answer(emu, status, code or UNLISTED_CODE)
    assert response.status_code == status

    error = errors.from_response(response)
    entry = errors.ERROR_TABLE[(status, code)]
    assert type(error) is errors.KIND_CLASSES[entry.kind]
    assert (error.status, error.code) == (status, code or UNLISTED_CODE)
    assert (error.reason, error.fix) == (entry.reason, entry.fix)
    assert (error.retryable, error.permanent) == EXPECTED_FLAGS[entry.kind]


def test_validation_and_permission_answers_are_permanent_and_say_what_to_do():
    for (status, _code), entry in errors.ERROR_TABLE.items():
        assert entry.reason.strip() and entry.fix.strip() and entry.meaning.strip()
        if status in (400, 403, 413, 415):
            assert EXPECTED_FLAGS[entry.kind] == (False, True), (status, _code)
        if status >= 500:
            assert entry.kind == "server"


def test_the_number_that_is_not_yours_says_to_pick_another_or_re_sync():
    entry = errors.ERROR_TABLE[(400, "MSG-245")]
    assert entry.reason == "The sending number is not one of yours at RingCentral."
    assert "Pick one of your numbers" in entry.fix and "re-sync numbers" in entry.fix


def test_missing_permissions_send_the_user_to_their_ringcentral_administrator():
    for code in ("CMN-401", "CMN-408"):
        assert "RingCentral administrator" in errors.ERROR_TABLE[(403, code)].fix


def test_limits_in_reasons_come_from_the_limits_module():
    assert str(limits.MAX_ATTACHMENTS) in errors.ERROR_TABLE[(400, "MSG-379")].reason
    assert limits.format_size(limits.MAX_ATTACHMENTS_BYTES) in (
        errors.ERROR_TABLE[(400, "MSG-337")].reason
    )
    assert f"{limits.MAX_TEXT_UNITS:,}" in errors.ERROR_TABLE[(400, "MSG-338")].reason


def test_an_unlisted_code_falls_back_to_its_status(emu):
    error = errors.from_response(answer(emu, 403, "MSG-999"))
    assert isinstance(error, errors.PermissionMissing)
    assert error.reason == errors.ERROR_TABLE[(403, errors.ANY_CODE)].reason


def test_a_status_the_table_does_not_know(emu):
    teapot = errors.from_response(answer(emu, 418, "CMN-101"))
    assert type(teapot) is errors.RingCentralError and teapot.permanent
    odd_server = errors.from_response(answer(emu, 599))
    assert isinstance(odd_server, errors.ServerError) and odd_server.retryable


def test_429_without_retry_after_waits_30_seconds(emu):
    emu.inject(Fault("rate_limit", path_contains=PROBE))
    response = http.new_session().post(emu.base_url + PROBE, json={}, timeout=5)
    error = errors.from_response(response)
    assert isinstance(error, errors.RateLimited)
    assert error.retry_after == errors.DEFAULT_RETRY_AFTER == 30.0


def test_429_with_retry_after_waits_as_told(emu):
    emu.inject(Fault("rate_limit", path_contains=PROBE, retry_after=7, error_code="MSG-305"))
    response = http.new_session().post(emu.base_url + PROBE, json={}, timeout=5)
    error = errors.from_response(response)
    assert (type(error), error.code, error.retry_after) == (errors.RateLimited, "MSG-305", 7.0)


def test_a_server_error_keeps_retry_after_when_given(emu):
    error = errors.from_response(answer(emu, 503, "MSG-290", retry_after=12))
    assert error.retry_after == 12.0
    assert errors.from_response(answer(emu, 502)).retry_after is None


def test_the_rate_limit_headers_of_a_real_429_are_kept_on_the_error():
    emulator = Emulator(EmulatorConfig(rate_limits={"Light": 1})).start(port=0)
    try:
        emulator.register_app("id", "secret", redirect_uris=["http://portal.test/cb"])
        extension = emulator.add_extension(name="Ada")
        token = emulator.issue_tokens("id", extension.id)["access_token"]
        session = http.new_session()
        url = emulator.base_url + "/restapi/v1.0/account/~/extension/~"
        headers = {"Authorization": f"Bearer {token}"}
        assert session.get(url, headers=headers, timeout=5).status_code == 200
        error = errors.from_response(session.get(url, headers=headers, timeout=5))
    finally:
        emulator.stop()
    assert isinstance(error, errors.RateLimited)
    assert error.rate_limit["X-Rate-Limit-Group"] == "light"
    assert error.rate_limit["X-Rate-Limit-Remaining"] == "0"
    assert error.retry_after == 60.0


def test_oauth_answers_keep_their_own_classes(emu):
    emu.register_app("id", "secret", redirect_uris=["http://portal.test/cb"])
    response = requests.post(
        emu.base_url + "/restapi/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": "not-a-token"},
        auth=("id", "secret"),
        timeout=5,
    )
    assert isinstance(errors.from_response(response, oauth=True), errors.InvalidGrant)
    wrong_secret = requests.post(
        emu.base_url + "/restapi/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        auth=("id", "wrong"),
        timeout=5,
    )
    assert isinstance(errors.from_response(wrong_secret, oauth=True), errors.OAuthFailed)


def test_outcomes_found_on_our_side_of_a_send():
    unknown = errors.OutcomeUnknown("read timeout")
    assert (unknown.retryable, unknown.permanent) == (False, False)
    assert "checks with RingCentral" in unknown.fix
    invalid = errors.MessageInvalid("too big", reason="The files add up to 2 MB.")
    assert (invalid.retryable, invalid.permanent) == (False, True)
    assert invalid.status is None and invalid.reason == "The files add up to 2 MB."
