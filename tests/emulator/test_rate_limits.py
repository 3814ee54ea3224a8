"""User-level rate limits: groups, headers, 429 with Retry-After, the penalty restart."""

from __future__ import annotations

import pytest

from messaging.ringcentral.emulator import EmulatorConfig

from .helpers import (
    CLIENT_ID,
    LOCAL_MMS,
    RECIPIENT,
    REDIRECT_URI,
    STORE,
    SYNC,
    Api,
    error_code,
    exchange,
)

ME = "/restapi/v1.0/account/~/extension/~"


@pytest.fixture
def config() -> EmulatorConfig:
    return EmulatorConfig(rate_limits={"Light": 3, "Medium": 2, "Heavy": 10, "Auth": 5})


def test_every_answer_carries_the_rate_limit_headers(api):
    response = api.get(ME)
    assert response.headers["X-Rate-Limit-Group"] == "light"
    assert response.headers["X-Rate-Limit-Limit"] == "3"
    assert response.headers["X-Rate-Limit-Remaining"] == "2"
    assert response.headers["X-Rate-Limit-Window"] == "60"


def test_error_answers_carry_the_headers_too(api):
    response = api.send_sms(to=["not-a-number"])
    assert response.status_code == 400
    assert response.headers["X-Rate-Limit-Group"] == "medium"
    assert response.headers["X-Rate-Limit-Remaining"] == "1"


def test_sends_count_in_the_medium_group_and_reads_in_light(api):
    assert api.send_sms().headers["X-Rate-Limit-Group"] == "medium"
    assert api.get(ME + "/message-store").headers["X-Rate-Limit-Group"] == "light"
    assert api.get(ME + "/phone-number").headers["X-Rate-Limit-Group"] == "light"


def test_sync_is_light_while_downloads_and_read_status_updates_are_medium(api, emu):
    message = emu.inbound(RECIPIENT, LOCAL_MMS, "pic", [("p.png", "image/png", b"\x89PNG")])
    synced = api.get(SYNC, params={"syncType": "FSync"})
    assert (synced.headers["X-Rate-Limit-Group"], synced.headers["X-Rate-Limit-Remaining"]) == (
        "light",
        "2",
    )
    download = api.get(f"{STORE}/{message.id}/content/{message.attachments[0].id}")
    assert download.headers["X-Rate-Limit-Group"] == "medium"
    assert download.headers["X-Rate-Limit-Remaining"] == "1"
    update = api.put(f"{STORE}/{message.id}", json={"readStatus": "Read"})
    assert update.headers["X-Rate-Limit-Group"] == "medium"
    assert update.headers["X-Rate-Limit-Remaining"] == "0"
    assert api.send_sms().status_code == 429
    assert api.get(SYNC, params={"syncType": "FSync"}).status_code == 200


def test_the_request_over_the_limit_is_429_cmn_301_with_retry_after(api):
    for _ in range(3):
        assert api.get(ME).status_code == 200
    response = api.get(ME)
    assert response.status_code == 429
    assert error_code(response) == "CMN-301"
    assert response.headers["Retry-After"] == "60"
    assert response.headers["X-Rate-Limit-Remaining"] == "0"


def test_every_request_during_the_penalty_restarts_it(api, emu):
    for _ in range(4):
        api.get(ME)
    emu.advance(30)
    assert api.get(ME).status_code == 429
    emu.advance(31)
    assert api.get(ME).status_code == 429
    emu.advance(59)
    assert api.get(ME).status_code == 429
    emu.advance(61)
    assert api.get(ME).status_code == 200


def test_waiting_out_the_penalty_without_requests_frees_the_group(api, emu):
    for _ in range(4):
        api.get(ME)
    emu.advance(61)
    assert api.get(ME).status_code == 200


def test_groups_are_counted_separately(api):
    for _ in range(4):
        api.get(ME)
    assert api.send_sms().status_code == 200


def test_limits_are_per_user(api, emu, app, other_ext):
    for _ in range(4):
        api.get(ME)
    other = Api(emu.base_url, emu.issue_tokens(CLIENT_ID, other_ext.id)["access_token"])
    assert other.get(ME).status_code == 200


def test_the_token_endpoint_is_in_the_auth_group(emu, app, ext):
    answers = [
        exchange(emu.base_url, emu.authorize_code(CLIENT_ID, REDIRECT_URI, ext.id))
        for _ in range(6)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 200, 429]
    assert answers[0].headers["X-Rate-Limit-Group"] == "auth"
    assert answers[-1].json()["errors"][0]["errorCode"] == "CMN-301"
    assert answers[-1].headers["Retry-After"] == "60"


def test_rate_limits_can_be_switched_off(api, emu):
    emu.update_config(rate_limits_enabled=False)
    for _ in range(10):
        response = api.get(ME)
        assert response.status_code == 200
    assert "X-Rate-Limit-Group" not in response.headers
