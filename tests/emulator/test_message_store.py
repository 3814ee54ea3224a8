"""Message lifecycle by the clock, recipient outcomes, bulk reads and list filters."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime

from .helpers import CLIENT_ID, OTHER_RECIPIENT, RECIPIENT, error_code

STORE = "/restapi/v1.0/account/~/extension/~/message-store"


def read(api, message_id):
    return api.get(f"{STORE}/{message_id}")


def statuses(body):
    return body["messageStatus"], [r["messageStatus"] for r in body["to"]]


def relogin(api, emu, ext) -> None:
    """A fresh access token after a jump longer than the token's lifetime."""
    api.token = emu.issue_tokens(CLIENT_ID, ext.id)["access_token"]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_a_delivered_message_goes_queued_sent_delivered_by_the_clock(api, emu):
    message_id = api.send_sms().json()["id"]
    assert statuses(read(api, message_id).json()) == ("Queued", ["Queued"])
    emu.advance(1)
    assert statuses(read(api, message_id).json()) == ("Sent", ["Sent"])
    emu.advance(2)
    body = read(api, message_id).json()
    assert statuses(body) == ("Delivered", ["Delivered"])
    assert body["smsDeliveryTime"] > body["creationTime"]
    assert body["lastModifiedTime"] == body["smsDeliveryTime"]
    assert "deliveryErrorCode" not in body


def test_a_delivery_failed_recipient_ends_with_its_error_code(api, emu):
    emu.set_recipient_behaviour(RECIPIENT, outcome="delivery_failed", error_code="SMS-CAR-411")
    message_id = api.send_sms().json()["id"]
    emu.advance(1)
    assert statuses(read(api, message_id).json()) == ("Sent", ["Sent"])
    emu.advance(2)
    body = read(api, message_id).json()
    assert statuses(body) == ("DeliveryFailed", ["DeliveryFailed"])
    assert body["deliveryErrorCode"] == "SMS-CAR-411"


def test_a_sending_failed_recipient_never_shows_sent(api, emu):
    emu.set_recipient_behaviour(RECIPIENT, outcome="sending_failed", error_code="SMS-RC-413")
    message_id = api.send_sms().json()["id"]
    emu.advance(1)
    body = read(api, message_id).json()
    assert statuses(body) == ("SendingFailed", ["SendingFailed"])
    assert body["deliveryErrorCode"] == "SMS-RC-413"


def test_a_recipient_without_receipt_stays_sent(api, emu, ext):
    emu.set_recipient_behaviour(RECIPIENT, outcome="no_receipt")
    message_id = api.send_sms().json()["id"]
    emu.advance(86400)
    relogin(api, emu, ext)
    assert statuses(read(api, message_id).json()) == ("Sent", ["Sent"])


def test_the_top_level_status_aggregates_recipients(api, emu):
    emu.set_recipient_behaviour(OTHER_RECIPIENT, outcome="sending_failed", error_code="SMS-RC-413")
    message_id = api.send_sms(to=[RECIPIENT, OTHER_RECIPIENT]).json()["id"]
    emu.advance(3)
    body = read(api, message_id).json()
    assert statuses(body) == ("SendingFailed", ["Delivered", "SendingFailed"])


def test_a_queued_recipient_keeps_the_whole_message_queued(api, emu):
    emu.set_recipient_behaviour(OTHER_RECIPIENT, sent_after=100, delivered_after=200)
    message_id = api.send_sms(to=[RECIPIENT, OTHER_RECIPIENT]).json()["id"]
    emu.advance(3)
    assert statuses(read(api, message_id).json()) == ("Queued", ["Delivered", "Queued"])


def test_mixed_final_states_aggregate_to_sent(api, emu):
    emu.set_recipient_behaviour(OTHER_RECIPIENT, outcome="no_receipt")
    message_id = api.send_sms(to=[RECIPIENT, OTHER_RECIPIENT]).json()["id"]
    emu.advance(3)
    assert statuses(read(api, message_id).json()) == ("Sent", ["Delivered", "Sent"])


def test_an_unknown_message_is_404_with_an_error_body(api):
    response = read(api, 123456)
    assert response.status_code == 404
    assert error_code(response) == "CMN-102"
    assert response.json()["errors"][0]["parameterName"] == "messageId"


def test_another_users_message_is_not_found(api, emu, other_ext, app):
    other = emu.issue_tokens(app.client_id, other_ext.id)["access_token"]
    message_id = api.send_sms().json()["id"]
    response = api.get(f"{STORE}/{message_id}", headers={"Authorization": f"Bearer {other}"})
    assert response.status_code == 404


def test_a_bulk_read_is_a_207_multipart_mixed_with_a_status_part_first(api, emu):
    first = api.send_sms("one").json()["id"]
    second = api.send_sms("two").json()["id"]
    response = read(api, f"{first},999,{second}")
    assert response.status_code == 207
    assert response.headers["Content-Type"].startswith("multipart/mixed; boundary=")
    raw = f"Content-Type: {response.headers['Content-Type']}\r\n\r\n".encode() + response.content
    message = email.message_from_bytes(raw, policy=email.policy.HTTP)
    parts = [json.loads(p.get_content()) for p in message.iter_parts()]
    summary = parts[0]["response"]
    assert [s["status"] for s in summary] == [200, 404, 200]
    assert summary[0]["href"].endswith(f"/message-store/{first}")
    assert parts[1]["id"] == first
    assert parts[2]["errors"][0]["errorCode"] == "CMN-102"
    assert parts[3]["subject"] == "two"


def test_a_bulk_read_can_answer_ringcentrals_multipart_json(api):
    first = api.send_sms("one").json()["id"]
    response = api.get(
        f"{STORE}/{first},42", headers={"Accept": "application/vnd.ringcentral.multipart+json"}
    )
    assert response.status_code == 207
    items = response.json()
    assert items[0] == {"resourceId": str(first), "status": 200, "body": items[0]["body"]}
    assert items[1]["status"] == 404


def test_a_bulk_read_of_50_ids_is_accepted(api):
    message_id = api.send_sms().json()["id"]
    ids = ",".join([str(message_id)] + [str(i) for i in range(1, 50)])
    assert read(api, ids).status_code == 207


def test_a_bulk_read_of_51_ids_is_cmn_106(api):
    ids = ",".join(str(i) for i in range(1, 52))
    response = read(api, ids)
    assert response.status_code == 400
    assert error_code(response) == "CMN-106"


def test_a_non_numeric_message_id_is_cmn_101(api):
    response = read(api, "abc")
    assert response.status_code == 400
    assert error_code(response) == "CMN-101"


# -- list ------------------------------------------------------------------------------------


def test_the_list_is_newest_first(api, emu):
    ids = []
    for text in ("a", "b", "c"):
        ids.append(api.send_sms(text).json()["id"])
        emu.advance(1)
    body = api.get(STORE).json()
    assert [r["id"] for r in body["records"]] == ids[::-1]
    assert body["paging"]["totalElements"] == 3


def test_the_list_filters_by_date_range(api, emu):
    start = emu.now()
    old = api.send_sms("old").json()["id"]
    emu.advance(100)
    new = api.send_sms("new").json()["id"]
    only_new = api.get(STORE, params={"dateFrom": iso(start + 50)}).json()
    assert [r["id"] for r in only_new["records"]] == [new]
    only_old = api.get(STORE, params={"dateTo": iso(start + 50)}).json()
    assert [r["id"] for r in only_old["records"]] == [old]


def test_the_list_defaults_to_the_last_24_hours(api, emu, ext):
    start = emu.now()
    old = api.send_sms("old").json()["id"]
    emu.advance(25 * 3600)
    relogin(api, emu, ext)
    assert api.get(STORE).json()["records"] == []
    listed = api.get(STORE, params={"dateFrom": iso(start - 1)}).json()
    assert [r["id"] for r in listed["records"]] == [old]


def test_the_list_filters_by_direction_and_type(api):
    api.send_sms()
    assert len(api.get(STORE, params={"direction": "Outbound"}).json()["records"]) == 1
    assert api.get(STORE, params={"direction": "Inbound"}).json()["records"] == []
    assert len(api.get(STORE, params={"messageType": "SMS"}).json()["records"]) == 1
    assert api.get(STORE, params={"messageType": "Fax"}).json()["records"] == []


def test_the_list_is_paged(api, emu):
    for text in "abcde":
        api.send_sms(text)
        emu.advance(1)
    body = api.get(STORE, params={"perPage": 2, "page": 3}).json()
    assert [r["subject"] for r in body["records"]] == ["a"]
    assert body["paging"]["totalPages"] == 3
    assert "previousPage" in body["navigation"] and "nextPage" not in body["navigation"]


def test_the_list_rejects_a_bad_date(api):
    response = api.get(STORE, params={"dateFrom": "yesterday"})
    assert response.status_code == 400
    assert error_code(response) == "CMN-101"


def test_the_list_rejects_an_unknown_direction(api):
    assert api.get(STORE, params={"direction": "Sideways"}).status_code == 400


def test_a_replaced_clock_drives_creation_time_and_statuses(api, emu, ext):
    now = [1_800_000_000.0]
    emu.clock = lambda: now[0]
    relogin(api, emu, ext)
    body = api.send_sms().json()
    assert body["creationTime"] == "2027-01-15T08:00:00.000Z"
    now[0] += 3
    assert emu.message_status(body["id"]) == "Delivered"
    emu.advance(10)
    assert emu.clock() == now[0] + 10
