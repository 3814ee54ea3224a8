"""High Volume SMS: batches, rejected recipients, limits, statuses over time, the message list
with its paging, single messages, counts, errors in the ASG shape and the rate-limit group."""

from __future__ import annotations

import json

import pytest

from messaging.ringcentral.emulator import EmulatorConfig

from .helpers import CLIENT_ID, LOCAL_MMS, NUMBERS, Api, control, freeze

A2P = "/restapi/v1.0/account/~/a2p-sms"
BATCHES = f"{A2P}/batches"
MESSAGES = f"{A2P}/messages"
HV = "+16505550130"
DELIVERED = "+16505550161"
LANDLINE = "+16505550162"
OPTED_OUT = "+16505550163"


@pytest.fixture
def config() -> EmulatorConfig:
    return EmulatorConfig(sent_after=1.0, delivered_after=3.0, a2p_messages_per_second=100.0)


@pytest.fixture
def hv_ext(emu, app):
    numbers = [
        *NUMBERS,
        {"phone_number": HV, "features": ["A2PSmsSender", "CallerId"], "label": "High Volume"},
    ]
    return emu.add_extension(name="Hal Volume", email="hal@example.com", numbers=numbers)


@pytest.fixture
def hv(emu, hv_ext) -> Api:
    return Api(emu.base_url, emu.issue_tokens(CLIENT_ID, hv_ext.id)["access_token"])


def batch(api: Api, to: list[str], text: str | None = "Hello", sender: str = HV, **extra):
    body = {"from": sender, "messages": [{"to": [n]} for n in to], **extra}
    if text is not None:
        body["text"] = text
    return api.post(BATCHES, json=body)


def asg_error(response) -> str:
    """The error code, checking the ASG shape: the pair at the top, again in the list."""
    data = response.json()
    assert set(data) == {"errorCode", "message", "errors"}
    assert data["errors"] == [{"errorCode": data["errorCode"], "message": data["message"]}]
    return data["errorCode"]


# -- creating a batch --------------------------------------------------------------------------


def test_a_batch_is_created_processing_with_the_documented_fields(hv, emu):
    freeze(emu)
    response = batch(hv, [DELIVERED, "+16505550164"])
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "from",
        "batchSize",
        "processedCount",
        "status",
        "creationTime",
        "lastModifiedTime",
        "rejected",
    }
    assert (body["from"], body["batchSize"], body["processedCount"]) == (HV, 2, 0)
    assert body["status"] == "Processing" and body["rejected"] == []


def test_each_message_may_override_the_common_text(hv, emu):
    freeze(emu)
    body = {
        "from": HV,
        "text": "Hello friend",
        "messages": [{"to": [DELIVERED], "text": "Hello Alice"}, {"to": ["+16505550164"]}],
    }
    batch_id = hv.post(BATCHES, json=body).json()["id"]
    records = hv.get(MESSAGES, params={"batchId": batch_id, "view": "Detailed"}).json()["records"]
    assert {r["to"][0]: r["text"] for r in records} == {
        DELIVERED: "Hello Alice",
        "+16505550164": "Hello friend",
    }


def test_per_message_texts_without_a_common_one_are_accepted(hv):
    body = {"from": HV, "messages": [{"to": [DELIVERED], "text": "Hi Bob"}]}
    assert hv.post(BATCHES, json=body).status_code == 201


def test_invalid_recipients_are_rejected_with_their_position_and_the_rest_is_sent(hv):
    response = batch(hv, [DELIVERED, "+4412345", "6505550100", "+442079460000"])
    assert response.status_code == 201
    body = response.json()
    assert body["batchSize"] == 1
    assert [(r["index"], r["to"], r["errorCode"]) for r in body["rejected"]] == [
        (2, ["+4412345"], "SMS-RC-410"),
        (3, ["6505550100"], "SMS-RC-410"),
        (4, ["+442079460000"], "SMS-RC-410"),
    ]
    assert all(r["description"] for r in body["rejected"])
    # Only the answer to the POST lists them.
    assert hv.get(f"{BATCHES}/{body['id']}").json()["rejected"] == []


def test_a_batch_of_only_rejected_recipients_is_empty_and_completed(hv):
    body = batch(hv, ["12345"]).json()
    assert (body["batchSize"], body["status"], len(body["rejected"])) == (0, "Completed", 1)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"text": "Hi", "messages": [{"to": [DELIVERED]}]}, "CMN-100"),
        ({"from": HV, "text": "Hi"}, "CMN-100"),
        ({"from": HV, "text": "Hi", "messages": []}, "CMN-101"),
        ({"from": HV, "messages": [{"to": [DELIVERED]}]}, "CMN-100"),
        ({"from": HV, "text": "Hi", "messages": [{}]}, "CMN-100"),
        ({"from": HV, "text": "Hi", "messages": [{"to": [DELIVERED, LANDLINE]}]}, "CMN-101"),
        ({"from": HV, "text": "Hi", "messages": [{"to": DELIVERED}]}, "CMN-101"),
        ({"from": HV, "text": 5, "messages": [{"to": [DELIVERED]}]}, "CMN-101"),
        ({"from": "not a number", "text": "Hi", "messages": [{"to": [DELIVERED]}]}, "CMN-101"),
        ([1, 2], "CMN-104"),
    ],
)
def test_malformed_batches_are_refused_whole(hv, emu, body, code):
    response = hv.post(BATCHES, json=body)
    assert response.status_code == 400
    assert asg_error(response) == code
    assert emu.a2p.batches() == []


def test_a_body_that_is_not_json_cannot_be_parsed(hv):
    response = hv.post(BATCHES, data=b"{", headers={"Content-Type": "application/json"})
    assert (response.status_code, asg_error(response)) == (400, "CMN-104")
    form = hv.post(BATCHES, data={"from": HV})
    assert form.status_code == 415


def test_the_sender_must_be_a_number_of_the_account_with_a2p_sms_sender(hv, emu):
    for sender in (LOCAL_MMS, "+16505550177"):
        response = batch(hv, [DELIVERED], sender=sender)
        assert (response.status_code, asg_error(response)) == (400, "CMN-101")
        assert "[from]" in response.json()["message"]
    assert emu.a2p.batches() == []


def test_a_number_of_another_user_of_the_account_may_send(emu, app, hv_ext):
    other = emu.add_extension(name="Grace Hopper", numbers=[])
    api = Api(emu.base_url, emu.issue_tokens(CLIENT_ID, other.id)["access_token"])
    assert batch(api, [DELIVERED]).status_code == 201


def test_text_longer_than_1000_utf16_units_is_refused(hv):
    assert batch(hv, [DELIVERED], text="x" * 1000).status_code == 201
    response = batch(hv, [DELIVERED], text="😀" * 500 + "x")
    assert (response.status_code, asg_error(response)) == (400, "CMN-101")
    per_message = {"from": HV, "messages": [{"to": [DELIVERED], "text": "x" * 1001}]}
    assert hv.post(BATCHES, json=per_message).status_code == 400


def test_at_most_10000_messages_per_request(hv, emu):
    to = [f"+1650556{i:04d}" for i in range(10_001)]
    response = batch(hv, to)
    assert (response.status_code, asg_error(response)) == (400, "CMN-101")
    assert "10000" in response.json()["message"]
    assert batch(hv, to[:10_000]).json()["batchSize"] == 10_000


def test_the_body_may_reach_50_mb_and_no_more(hv, emu):
    assert emu.config.a2p_max_body_bytes == 50 * 1024 * 1024
    # Over /sms's 10 MB limit, within the batch limit: each quote is escaped on the wire.
    text = '"' * 1000
    body = {"from": HV, "messages": [{"to": [DELIVERED], "text": text}] * 10_000}
    assert len(json.dumps(body)) > emu.config.max_body_bytes
    assert hv.post(BATCHES, json=body).status_code == 201
    emu.update_config(a2p_max_body_bytes=1000)
    too_big = batch(hv, [f"+1650556{i:04d}" for i in range(100)])
    assert too_big.status_code == 413


# -- progress ----------------------------------------------------------------------------------


def test_a_batch_progresses_and_completes_with_its_cost(hv, emu):
    freeze(emu)
    emu.set_recipient_behaviour(LANDLINE, outcome="delivery_failed", error_code="SMS-CAR-411")
    to = [f"+1650556{i:04d}" for i in range(198)] + [DELIVERED, LANDLINE]
    batch_id = batch(hv, to).json()["id"]
    emu.advance(1.0 + 1.0)  # sent_after, then 100 messages a second
    half = hv.get(f"{BATCHES}/{batch_id}").json()
    assert half["status"] == "Processing" and half["processedCount"] == 100
    assert "cost" not in half
    emu.advance(1.0)
    done = hv.get(f"{BATCHES}/{batch_id}").json()
    assert (done["status"], done["processedCount"], done["batchSize"]) == ("Completed", 200, 200)
    assert done["cost"] == pytest.approx(200 * 0.007)


def test_a_numbers_batches_queue_behind_each_other(hv, emu):
    freeze(emu)
    first = batch(hv, [f"+1650556{i:04d}" for i in range(100)]).json()["id"]
    second = batch(hv, [f"+1650557{i:04d}" for i in range(100)]).json()["id"]
    emu.advance(2.0)
    assert hv.get(f"{BATCHES}/{first}").json()["status"] == "Completed"
    assert hv.get(f"{BATCHES}/{second}").json()["processedCount"] == 0
    emu.advance(1.0)
    assert hv.get(f"{BATCHES}/{second}").json()["status"] == "Completed"


def test_message_statuses_follow_each_recipient(hv, emu):
    freeze(emu)
    emu.set_recipient_behaviour(LANDLINE, outcome="delivery_failed", error_code="SMS-CAR-411")
    emu.set_consent(HV, OPTED_OUT, "OptOut")
    batch_id = batch(hv, [DELIVERED, LANDLINE, OPTED_OUT]).json()["id"]

    def statuses():
        records = hv.get(MESSAGES, params={"batchId": batch_id}).json()["records"]
        return {r["to"][0]: (r["messageStatus"], r.get("errorCode")) for r in records}

    assert set(statuses().values()) == {("Queued", None)}
    emu.advance(1.1)
    assert statuses() == {
        DELIVERED: ("Sent", None),
        LANDLINE: ("Sent", None),
        OPTED_OUT: ("SendingFailed", "SMS-RC-413"),
    }
    emu.advance(3.0)
    assert statuses() == {
        DELIVERED: ("Delivered", None),
        LANDLINE: ("DeliveryFailed", "SMS-CAR-411"),
        OPTED_OUT: ("SendingFailed", "SMS-RC-413"),
    }


# -- reading -----------------------------------------------------------------------------------


def test_the_message_list_is_paged_by_tokens(hv, emu):
    batch_id = batch(hv, [f"+1650556{i:04d}" for i in range(25)]).json()["id"]
    seen, token, pages = [], None, 0
    while True:
        params = {"batchId": batch_id, "perPage": 10}
        if token:
            params["pageToken"] = token
        page = hv.get(MESSAGES, params=params).json()
        pages += 1
        seen += [r["id"] for r in page["records"]]
        assert page["paging"]["perPage"] == 10
        token = page["paging"].get("nextPageToken")
        if not token:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 25
    assert seen == sorted(seen, reverse=True)  # newest first
    assert all(isinstance(i, int) for i in seen)


def test_simple_records_have_the_spec_fields_and_no_text(hv, emu):
    freeze(emu)
    batch_id = batch(hv, [DELIVERED]).json()["id"]
    emu.advance(2.0)
    (record,) = hv.get(MESSAGES, params={"batchId": batch_id}).json()["records"]
    assert set(record) == {
        "id",
        "batchId",
        "from",
        "to",
        "creationTime",
        "lastModifiedTime",
        "messageStatus",
        "segmentCount",
        "direction",
        "cost",
    }
    assert (record["from"], record["to"], record["direction"]) == (HV, [DELIVERED], "Outbound")


@pytest.mark.parametrize(
    "params",
    [
        {"perPage": 0},
        {"perPage": 1001},
        {"pageToken": "nonsense"},
        {"view": "Full"},
        {"direction": "Sideways"},
        {"dateFrom": "yesterday"},
        {"phoneNumber": [f"+1650556{i:04d}" for i in range(16)]},
    ],
)
def test_bad_list_parameters_are_refused(hv, params):
    response = hv.get(MESSAGES, params=params)
    assert (response.status_code, asg_error(response)) == (400, "CMN-101")


def test_an_unknown_batch_is_not_found(hv):
    for response in (hv.get(f"{BATCHES}/nope"), hv.get(MESSAGES, params={"batchId": "nope"})):
        assert (response.status_code, asg_error(response)) == (404, "CMN-102")


def test_the_list_keeps_the_last_24_hours_unless_asked(hv, emu, hv_ext):
    freeze(emu)
    batch(hv, [DELIVERED])
    emu.advance(25 * 3600)
    later = Api(emu.base_url, emu.issue_tokens(CLIENT_ID, hv_ext.id)["access_token"])
    assert later.get(MESSAGES).json()["records"] == []
    assert later.get(BATCHES).json()["records"] == []
    since = {"dateFrom": "1970-01-01T00:00:00Z"}
    assert len(later.get(MESSAGES, params=since).json()["records"]) == 1


def test_the_message_list_filters_by_phone_number(hv, emu):
    batch(hv, [DELIVERED, LANDLINE])
    found = hv.get(MESSAGES, params={"phoneNumber": LANDLINE[1:]}).json()["records"]
    assert [r["to"] for r in found] == [[LANDLINE]]


def test_one_message_reads_with_its_text_and_a_string_id(hv, emu):
    freeze(emu)
    batch_id = batch(hv, [DELIVERED], text="Your order is ready").json()["id"]
    (listed,) = hv.get(MESSAGES, params={"batchId": batch_id}).json()["records"]
    one = hv.get(f"{MESSAGES}/{listed['id']}").json()
    assert one["id"] == str(listed["id"]) and one["text"] == "Your order is ready"
    assert one["batchId"] == batch_id and one["messageStatus"] == "Queued"
    missing = hv.get(f"{MESSAGES}/123")
    assert (missing.status_code, asg_error(missing)) == (404, "CMN-102")


def test_batches_are_listed_newest_first_and_filtered(hv, emu):
    freeze(emu)
    first = batch(hv, [DELIVERED]).json()["id"]
    emu.advance(5)
    second = batch(hv, [LANDLINE]).json()["id"]
    listed = hv.get(BATCHES).json()
    assert [b["id"] for b in listed["records"]] == [second, first]
    assert "paging" in listed
    completed = hv.get(BATCHES, params={"status": "Completed"}).json()["records"]
    assert [b["id"] for b in completed] == [first]
    assert hv.get(BATCHES, params={"from": "+16505550131"}).json()["records"] == []
    assert hv.get(BATCHES, params={"status": "Done"}).status_code == 400


def test_statuses_count_messages_and_error_codes(hv, emu):
    freeze(emu)
    emu.set_consent(HV, OPTED_OUT, "OptOut")
    batch_id = batch(hv, [DELIVERED, OPTED_OUT]).json()["id"]
    emu.advance(5)
    counts = hv.get(f"{A2P}/statuses", params={"batchId": batch_id}).json()
    assert counts["delivered"]["count"] == 1
    assert counts["sendingFailed"]["count"] == 1
    assert counts["sendingFailed"]["errorCodeCounts"] == {"SMS-RC-413": 1}
    assert counts["queued"]["count"] == 0


def test_another_account_sees_nothing_of_a_batch(hv, emu, app):
    batch_id = batch(hv, [DELIVERED]).json()["id"]
    account = emu.add_account(company="Elsewhere")
    stranger = emu.add_extension(name="Eve", numbers=[], account_id=account.id)
    api = Api(emu.base_url, emu.issue_tokens(CLIENT_ID, stranger.id)["access_token"])
    assert api.get(f"{BATCHES}/{batch_id}").status_code == 404
    assert api.get(BATCHES).json()["records"] == []


# -- permission and rate limits --------------------------------------------------------------


def test_every_endpoint_is_in_the_light_group(hv):
    batch_id = batch(hv, [DELIVERED]).json()["id"]
    responses = [
        batch(hv, [DELIVERED]),
        hv.get(BATCHES),
        hv.get(f"{BATCHES}/{batch_id}"),
        hv.get(MESSAGES),
        hv.get(f"{A2P}/statuses"),
    ]
    assert {r.headers["X-Rate-Limit-Group"] for r in responses} == {"light"}


def test_the_app_needs_the_a2p_sms_permission(emu, hv_ext):
    emu.register_app("plain-app", "secret", scopes=["SMS", "ReadAccounts"])
    api = Api(emu.base_url, emu.issue_tokens("plain-app", hv_ext.id)["access_token"])
    response = batch(api, [DELIVERED])
    assert response.status_code == 403
    assert response.json()["errors"][0]["errorCode"] == "CMN-401"


def test_the_phone_number_list_shows_the_high_volume_feature(hv):
    records = hv.get("/restapi/v1.0/account/~/extension/~/phone-number").json()["records"]
    features = {r["phoneNumber"]: r["features"] for r in records}
    assert "A2PSmsSender" in features[HV] and "SmsSender" not in features[HV]


def test_reset_forgets_batches(hv, emu):
    batch(hv, [DELIVERED])
    emu.reset()
    assert emu.a2p.batches() == [] and emu.a2p.messages() == []


def test_the_control_api_lists_batches_with_their_messages(hv, emu):
    batch_id = batch(hv, [DELIVERED, LANDLINE]).json()["id"]
    (listed,) = control(emu, "GET", "a2p-batches").json()["records"]
    assert listed["id"] == batch_id
    assert sorted(m["to"][0] for m in listed["messages"]) == [DELIVERED, LANDLINE]
    assert {m["text"] for m in listed["messages"]} == {"Hello"}
