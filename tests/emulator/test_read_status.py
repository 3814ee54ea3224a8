"""PUT .../message-store/{id}: the read status, and everything else the endpoint refuses."""

from __future__ import annotations

import pytest

from .helpers import CLIENT_ID, LOCAL_MMS, RECIPIENT, STORE, Api, error_code, freeze, subscribe


@pytest.fixture
def unread(emu, ext):
    return emu.inbound(RECIPIENT, LOCAL_MMS, "Did you get my last message?")


def put(api, message_id, body=None, **kwargs):
    if body is not None:
        kwargs["json"] = body
    return api.put(f"{STORE}/{message_id}", **kwargs)


def test_marking_read_and_unread_updates_the_record(api, emu, unread):
    start = freeze(emu)
    emu.advance(30)
    answer = put(api, unread.id, {"readStatus": "Read"})
    assert answer.status_code == 200
    record = answer.json()
    assert record["id"] == unread.id
    assert record["readStatus"] == "Read"
    assert record["lastModifiedTime"] > record["creationTime"]
    assert api.get(f"{STORE}/{unread.id}").json()["readStatus"] == "Read"
    assert put(api, unread.id, {"readStatus": "Unread"}).json()["readStatus"] == "Unread"
    assert emu.messages.get(unread.id).read_changed_at == start + 30


def test_setting_the_status_it_already_has_changes_nothing(api, emu, unread):
    freeze(emu)
    emu.advance(30)
    record = put(api, unread.id, {"readStatus": "Unread"}).json()
    assert record["lastModifiedTime"] == record["creationTime"]


def test_an_outbound_message_can_be_marked_unread(api):
    sent = api.send_sms().json()
    assert sent["readStatus"] == "Read"
    assert put(api, sent["id"], {"readStatus": "Unread"}).json()["readStatus"] == "Unread"


def test_the_update_is_in_the_medium_group_and_needs_edit_messages(api, emu, ext, unread):
    assert put(api, unread.id, {"readStatus": "Read"}).headers["X-Rate-Limit-Group"] == "medium"
    emu.register_app("read-only", "secret", scopes=["SMS", "ReadMessages"])
    limited = Api(emu.base_url, emu.issue_tokens("read-only", ext.id)["access_token"])
    refused = put(limited, unread.id, {"readStatus": "Read"})
    assert refused.status_code == 403
    assert error_code(refused) == "CMN-401"


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({}, "readStatus"),
        ({"readStatus": "Seen"}, "readStatus"),
        ({"readStatus": None}, "readStatus"),
        ({"readStatus": "Read", "availability": "Deleted"}, "availability"),
        ({"subject": "rewritten"}, "subject"),
        (["Read"], "body"),
    ],
)
def test_anything_but_a_read_status_is_cmn_101(api, unread, body, name):
    answer = put(api, unread.id, body)
    assert answer.status_code == 400
    assert error_code(answer) == "CMN-101"
    assert answer.json()["errors"][0]["parameterName"] == name


def test_a_body_that_is_not_json_is_refused(api, unread):
    answer = put(api, unread.id, data=b"readStatus=Read", headers={"Content-Type": "text/plain"})
    assert answer.status_code == 415
    broken = put(api, unread.id, data=b"{", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400
    assert error_code(broken) == "CMN-103"


def test_bulk_updates_are_refused(api, emu, unread):
    other = emu.inbound(RECIPIENT, LOCAL_MMS, "another").id
    for path_ids in (f"{unread.id},{other}", "*"):
        answer = put(api, path_ids, {"readStatus": "Read"})
        assert answer.status_code == 400
        assert error_code(answer) == "CMN-101"
    assert emu.messages.get(unread.id).read_status == "Unread"


def test_an_unknown_or_foreign_message_is_404(api, emu, app, other_ext, unread):
    assert put(api, 42, {"readStatus": "Read"}).status_code == 404
    other = Api(api.base_url, emu.issue_tokens(CLIENT_ID, other_ext.id)["access_token"])
    answer = put(other, unread.id, {"readStatus": "Read"})
    assert answer.status_code == 404
    assert error_code(answer) == "CMN-102"
    assert emu.messages.get(unread.id).read_status == "Unread"


def test_a_read_status_change_is_notified_as_an_update(api, emu, ext, webhook, unread):
    filters = ["/restapi/v1.0/account/~/extension/~/message-store?direction=Inbound"]
    assert subscribe(api, webhook.url, filters).status_code == 200
    put(api, unread.id, {"readStatus": "Read"})
    put(api, unread.id, {"readStatus": "Read"})  # no change, no event
    assert emu.wait_for_deliveries()
    [notification] = webhook.notifications()
    assert notification.json()["body"]["changes"] == [
        {"type": "SMS", "newCount": 0, "updatedCount": 1, "newMessageIds": []}
    ]
