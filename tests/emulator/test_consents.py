"""The SMS consent list, ``/restapi/v2/accounts/~/sms/consents``: GET with filters and page
tokens, PATCH of up to 1000 records with ``failedRecords``, keywords that change it, the
consents event to subscriptions, and sends to opted-out pairs failing with SMS-RC-413."""

from __future__ import annotations

from .helpers import LOCAL_MMS, LOCAL_SMS_ONLY, OTHER_RECIPIENT, RECIPIENT, error_code, subscribe

CONSENTS = "/restapi/v2/accounts/~/sms/consents"


def patch(api, records):
    return api.request("PATCH", CONSENTS, json={"records": records})


def record(sender, to, status="OptOut", source="Api"):
    return {"from": sender, "to": to, "optStatus": status, "source": source}


def test_a_patch_changes_the_list_and_reports_the_records_it_refused(emu, api, ext):
    answer = patch(
        api,
        [
            record(LOCAL_MMS, RECIPIENT),
            record("*", OTHER_RECIPIENT),
            record("+16505550999", RECIPIENT),  # not a number of the account
            record(LOCAL_MMS, "not-a-number"),
            {"from": LOCAL_MMS, "to": RECIPIENT, "optStatus": "OptOut"},  # no source
            record(LOCAL_MMS, RECIPIENT, status="Maybe"),
        ],
    )

    assert answer.status_code == 200
    failed = answer.json()["failedRecords"]
    assert [f["error"]["errorCode"] for f in failed] == ["CMN-102", "CMN-101", "CMN-100", "CMN-101"]
    assert emu.opted_out(LOCAL_MMS, RECIPIENT)
    assert not emu.opted_out(LOCAL_SMS_ONLY, RECIPIENT)
    # "*" covers every number of the account.
    assert emu.opted_out(LOCAL_SMS_ONLY, OTHER_RECIPIENT)


def test_a_patch_needs_one_to_a_thousand_records(api, ext):
    for body in ({}, {"records": []}, {"records": [record(LOCAL_MMS, RECIPIENT)] * 1001}, []):
        answer = api.request("PATCH", CONSENTS, json=body)
        assert answer.status_code == 400
        assert error_code(answer) == "CMN-101"
    answer = api.request("PATCH", CONSENTS, data="records", headers={"Content-Type": "text/plain"})
    assert answer.status_code == 415


def test_listing_filters_and_pages_with_tokens(emu, api, ext):
    numbers = [f"+1650555{3000 + i}" for i in range(25)]
    patch(api, [record(LOCAL_MMS, n) for n in numbers])
    patch(api, [record(LOCAL_MMS, numbers[0], status="OptIn")])

    first = api.get(CONSENTS, params={"perPage": 10})
    assert first.status_code == 200
    body = first.json()
    assert len(body["records"]) == 10 and body["paging"]["perPage"] == 10
    assert all(r["optStatus"] == "OptOut" for r in body["records"])  # the default filter
    seen = [r["to"] for r in body["records"]]
    token = body["paging"]["nextPageToken"]
    while token:
        page = api.get(CONSENTS, params={"perPage": 10, "pageToken": token}).json()
        seen += [r["to"] for r in page["records"]]
        token = page["paging"].get("nextPageToken")
    assert sorted(seen) == sorted(numbers[1:])

    both = api.get(CONSENTS, params=[("optStatus", "OptIn"), ("optStatus", "OptOut")]).json()
    assert len(both["records"]) == 25
    one = api.get(CONSENTS, params={"to": numbers[0], "optStatus": "OptIn"}).json()["records"]
    assert [(r["from"], r["to"], r["optStatus"], r["source"], r["coverage"]) for r in one] == [
        (LOCAL_MMS, numbers[0], "OptIn", "Api", "PhoneNumber")
    ]
    assert one[0]["lastModifiedTime"].endswith("Z")


def test_listing_refuses_bad_filters_and_tokens(api, ext):
    for params in (
        {"to": "12345"},
        {"optStatus": "Sometimes"},
        {"perPage": "0"},
        {"pageToken": "not-a-token"},
        {"coverage": "Planet"},
    ):
        answer = api.get(CONSENTS, params=params)
        assert answer.status_code == 400, params
        assert error_code(answer) == "CMN-101"
    # Larger than the maximum: the maximum applies.
    assert api.get(CONSENTS, params={"perPage": "5000"}).json()["paging"]["perPage"] == 1000


def test_another_account_is_not_found(api, ext):
    answer = api.get("/restapi/v2/accounts/999999/sms/consents")
    assert answer.status_code == 404


def test_stop_and_start_change_the_list_and_notify_the_consents_subscription(
    emu, api, ext, webhook
):
    created = subscribe(api, webhook.url, [CONSENTS])
    assert created.status_code == 200, created.text

    emu.inbound(RECIPIENT, LOCAL_MMS, " stop ")
    assert emu.opted_out(LOCAL_MMS, RECIPIENT)
    emu.inbound(RECIPIENT, LOCAL_MMS, "START")
    assert not emu.opted_out(LOCAL_MMS, RECIPIENT)
    emu.wait_for_deliveries()

    events = [n.json() for n in webhook.notifications()]
    assert [e["body"]["records"][0]["optStatus"] for e in events] == ["OptOut", "OptIn"]
    first = events[0]
    assert first["event"] == f"/restapi/v2/accounts/{ext.account_id}/sms/consents"
    assert first["body"]["records"][0]["from"] == LOCAL_MMS
    assert first["body"]["records"][0]["to"] == RECIPIENT
    assert first["body"]["records"][0]["source"] == "Recipient"


def test_a_send_to_an_opted_out_pair_ends_with_sms_rc_413(emu, api, ext):
    patch(api, [record(LOCAL_MMS, RECIPIENT)])
    sent = api.send_sms(to=[RECIPIENT]).json()
    emu.advance(60)
    stored = api.get(f"/restapi/v1.0/account/~/extension/~/message-store/{sent['id']}").json()
    assert stored["messageStatus"] == "SendingFailed"
    assert stored["deliveryErrorCode"] == "SMS-RC-413"


def test_an_opt_in_after_an_account_wide_opt_out_lets_that_number_text_again(emu, api, ext):
    patch(api, [record("*", RECIPIENT)])
    emu.advance(1)
    emu.inbound(RECIPIENT, LOCAL_MMS, "UNSTOP")
    assert not emu.opted_out(LOCAL_MMS, RECIPIENT)
    assert emu.opted_out(LOCAL_SMS_ONLY, RECIPIENT)
