"""Message sync: FSync frames, ISync changes with the overlap, tokens and their errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from .helpers import (
    CLIENT_ID,
    LOCAL_MMS,
    OTHER_RECIPIENT,
    RECIPIENT,
    STORE,
    SYNC,
    Api,
    control,
    error_code,
    freeze,
)

OLD = "2000-01-01T00:00:00.000Z"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def fsync(api, **params):
    answer = api.get(SYNC, params={"syncType": "FSync", **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


def isync(api, token):
    return api.get(SYNC, params={"syncType": "ISync", "syncToken": token})


def ids(body) -> list[int]:
    return [r["id"] for r in body["records"]]


@pytest.fixture
def start(emu, api):
    return freeze(emu)


# -- FSync ------------------------------------------------------------------------------------


def test_fsync_answers_the_frame_newest_first_with_a_token(api, emu, start):
    first = emu.inbound(RECIPIENT, LOCAL_MMS, "one").id
    emu.advance(1)
    second = api.send_sms("two").json()["id"]
    emu.advance(1)
    body = fsync(api)
    assert ids(body) == [second, first]
    assert "paging" not in body and "navigation" not in body
    assert body["uri"].endswith("/message-sync?syncType=FSync")
    info = body["syncInfo"]
    assert info["syncType"] == "FSync"
    assert info["syncTime"] == iso(start + 2)
    assert info["olderRecordsExist"] is False
    assert isinstance(info["syncToken"], str) and info["syncToken"]


def test_fsync_defaults_to_the_last_24_hours_and_says_older_records_exist(api, emu, start):
    emu.inbound(RECIPIENT, LOCAL_MMS, "two days ago", at=start - 2 * 86400)
    recent = emu.inbound(RECIPIENT, LOCAL_MMS, "an hour ago", at=start - 3600).id
    body = fsync(api)
    assert ids(body) == [recent]
    assert body["syncInfo"]["olderRecordsExist"] is True
    assert len(fsync(api, dateFrom=OLD)["records"]) == 2
    assert fsync(api, dateFrom=OLD)["syncInfo"]["olderRecordsExist"] is False


def test_record_count_keeps_the_newest_and_says_older_records_exist(api, emu, start):
    made = []
    for text in ("a", "b", "c"):
        made.append(emu.inbound(RECIPIENT, LOCAL_MMS, text).id)
        emu.advance(1)
    cut = fsync(api, recordCount=2)
    assert ids(cut) == made[:0:-1]
    assert cut["syncInfo"]["olderRecordsExist"] is True
    whole = fsync(api, recordCount=3)
    assert ids(whole) == made[::-1]
    assert whole["syncInfo"]["olderRecordsExist"] is False


def test_fsync_filters_by_direction_type_conversation_and_dates(api, emu, start):
    sent = api.send_sms("out").json()
    emu.advance(1)
    received = emu.inbound(RECIPIENT, LOCAL_MMS, "in").id
    emu.advance(1)
    other = emu.inbound(OTHER_RECIPIENT, LOCAL_MMS, "other").id
    emu.advance(1)
    assert ids(fsync(api, direction="Inbound")) == [other, received]
    assert ids(fsync(api, direction=["Inbound", "Outbound"])) == [other, received, sent["id"]]
    assert ids(fsync(api, messageType="Fax")) == []
    assert ids(fsync(api, messageType="SMS")) == [other, received, sent["id"]]
    thread = sent["conversation"]["id"]
    assert ids(fsync(api, conversationId=thread)) == [received, sent["id"]]
    assert ids(fsync(api, dateFrom=iso(start + 0.5), dateTo=iso(start + 1.5))) == [received]


def test_distinct_conversations_keeps_the_newest_of_each(api, emu, start):
    api.send_sms("first")
    emu.advance(1)
    reply = emu.inbound(RECIPIENT, LOCAL_MMS, "reply").id
    emu.advance(1)
    other = emu.inbound(OTHER_RECIPIENT, LOCAL_MMS, "other").id
    assert ids(fsync(api, distinctConversations="true")) == [other, reply]


def test_sync_is_in_the_light_group_and_needs_read_messages(api, emu, app, ext):
    answer = api.get(SYNC, params={"syncType": "FSync"})
    assert answer.headers["X-Rate-Limit-Group"] == "light"
    emu.register_app("no-read", "secret", scopes=["SMS"])
    limited = Api(emu.base_url, emu.issue_tokens("no-read", ext.id)["access_token"])
    refused = limited.get(SYNC, params={"syncType": "FSync"})
    assert refused.status_code == 403
    assert error_code(refused) == "CMN-401"


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({}, "syncType"),
        ({"syncType": "Everything"}, "syncType"),
        ({"syncType": "FSync", "syncToken": "x"}, "syncToken"),
        ({"syncType": "FSync", "recordCount": "0"}, "recordCount"),
        ({"syncType": "FSync", "recordCount": "ten"}, "recordCount"),
        ({"syncType": "FSync", "direction": "Sideways"}, "direction"),
        ({"syncType": "FSync", "messageType": "Telegram"}, "messageType"),
        ({"syncType": "FSync", "dateFrom": "yesterday"}, "dateFrom"),
        ({"syncType": "FSync", "dateFrom": "2030-01-02", "dateTo": "2030-01-01"}, "dateFrom"),
        ({"syncType": "FSync", "conversationId": "abc"}, "conversationId"),
        ({"syncType": "FSync", "distinctConversations": "1"}, "distinctConversations"),
    ],
)
def test_wrong_parameters_are_cmn_101(api, params, name):
    answer = api.get(SYNC, params=params)
    assert answer.status_code == 400
    assert error_code(answer) == "CMN-101"
    assert answer.json()["errors"][0]["parameterName"] == name


# -- ISync ------------------------------------------------------------------------------------


def test_isync_answers_what_was_created_since_with_an_overlap(api, emu, start):
    emu.inbound(RECIPIENT, LOCAL_MMS, "before")
    emu.advance(10)
    token = fsync(api)["syncInfo"]["syncToken"]
    emu.advance(2)
    new = emu.inbound(RECIPIENT, LOCAL_MMS, "new").id

    first = isync(api, token).json()
    assert ids(first) == [new]
    assert first["syncInfo"]["syncType"] == "ISync"
    assert first["syncInfo"]["syncTime"] == iso(start + 12)
    next_token = first["syncInfo"]["syncToken"]
    assert next_token != token

    # 3 s later the record is still inside the 5 s overlap: it comes again.
    emu.advance(3)
    again = isync(api, next_token).json()
    assert ids(again) == [new]

    # Once a sync ran more than 5 s after the record, the next one does not repeat it.
    emu.advance(10)
    later = isync(api, again["syncInfo"]["syncToken"]).json()
    assert ids(later) == [new]
    emu.advance(1)
    assert ids(isync(api, later["syncInfo"]["syncToken"]).json()) == []


def test_the_overlap_is_configurable(api, emu, start):
    emu.update_config(sync_overlap=0.0)
    token = fsync(api)["syncInfo"]["syncToken"]
    emu.advance(1)
    new = emu.inbound(RECIPIENT, LOCAL_MMS, "new").id
    emu.advance(1)
    first = isync(api, token).json()
    assert ids(first) == [new]
    emu.advance(1)
    assert ids(isync(api, first["syncInfo"]["syncToken"]).json()) == []


def test_isync_answers_status_changes_of_older_records(api, emu, start):
    emu.set_recipient_behaviour(RECIPIENT, sent_after=20, delivered_after=30)
    sent = api.send_sms("slow carrier").json()["id"]
    emu.advance(10)
    token = fsync(api)["syncInfo"]["syncToken"]
    emu.advance(15)
    body = isync(api, token).json()
    assert ids(body) == [sent]
    assert body["records"][0]["messageStatus"] == "Sent"


def test_isync_answers_read_status_changes(api, emu, start):
    message = emu.inbound(RECIPIENT, LOCAL_MMS, "read me").id
    emu.advance(10)
    token = fsync(api)["syncInfo"]["syncToken"]
    emu.advance(10)
    assert ids(isync(api, token).json()) == []
    assert api.put(f"{STORE}/{message}", json={"readStatus": "Read"}).status_code == 200
    body = isync(api, token).json()
    assert ids(body) == [message]
    assert body["records"][0]["readStatus"] == "Read"
    assert body["records"][0]["lastModifiedTime"] == iso(start + 20)


def test_the_fsync_filters_carry_over_to_isync(api, emu, start):
    token = fsync(api, direction="Inbound")["syncInfo"]["syncToken"]
    emu.advance(10)
    api.send_sms("outbound, not in the frame")
    received = emu.inbound(RECIPIENT, LOCAL_MMS, "inbound").id
    assert ids(isync(api, token).json()) == [received]


def test_a_closed_frame_gets_no_new_records(api, emu, start):
    token = fsync(api, dateFrom=OLD, dateTo=iso(start))["syncInfo"]["syncToken"]
    emu.advance(10)
    emu.inbound(RECIPIENT, LOCAL_MMS, "after the frame")
    assert ids(isync(api, token).json()) == []


def test_an_earlier_token_stays_valid(api, emu, start):
    token = fsync(api)["syncInfo"]["syncToken"]
    emu.advance(10)
    isync(api, token)
    assert isync(api, token).status_code == 200


@pytest.mark.parametrize("token", [None, "", "not a token", "A" * 32])
def test_a_missing_malformed_or_unknown_token_is_msg_333(api, token):
    params = {"syncType": "ISync"}
    if token is not None:
        params["syncToken"] = token
    answer = api.get(SYNC, params=params)
    assert answer.status_code == 400
    assert error_code(answer) == "MSG-333"
    body = answer.json()
    assert body["errors"][0]["message"]
    assert body["errors"][0]["parameterName"] == "syncToken"


def test_an_expired_token_is_msg_333(api, emu, start):
    emu.update_config(sync_token_ttl=600.0)
    token = fsync(api)["syncInfo"]["syncToken"]
    emu.advance(599)
    assert isync(api, token).status_code == 200
    emu.advance(2)
    assert error_code(isync(api, token)) == "MSG-333"


def test_another_users_token_is_msg_333(api, emu, other_ext):
    token = fsync(api)["syncInfo"]["syncToken"]
    other = Api(api.base_url, emu.issue_tokens(CLIENT_ID, other_ext.id)["access_token"])
    assert error_code(isync(other, token)) == "MSG-333"


def test_invalidated_tokens_are_msg_333_until_a_new_fsync(api, emu, ext, start):
    token = fsync(api)["syncInfo"]["syncToken"]
    assert emu.invalidate_sync_tokens(ext.id) == 1
    assert error_code(isync(api, token)) == "MSG-333"
    fresh = fsync(api)["syncInfo"]["syncToken"]
    assert isync(api, fresh).status_code == 200
    answer = control(emu, "POST", "sync-tokens/invalidate", json={"extension_id": ext.id})
    assert answer.json() == {"invalidated": 2}
    assert error_code(isync(api, fresh)) == "MSG-333"


def test_isync_refuses_frame_parameters(api, emu):
    token = fsync(api)["syncInfo"]["syncToken"]
    answer = api.get(SYNC, params={"syncType": "ISync", "syncToken": token, "direction": "Inbound"})
    assert answer.status_code == 400
    assert error_code(answer) == "CMN-101"
    assert answer.json()["errors"][0]["parameterName"] == "direction"


def test_reset_forgets_sync_tokens(api, emu):
    token = fsync(api)["syncInfo"]["syncToken"]
    emu.reset()
    assert error_code(isync(api, token)) == "MSG-333"
