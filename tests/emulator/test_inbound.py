"""Inbound texts, texts sent outside the app, conversations and attachment downloads."""

from __future__ import annotations

import base64

import pytest

from messaging.ringcentral.emulator.clock import iso

from .helpers import (
    CLIENT_ID,
    FAX,
    LOCAL_MMS,
    LOCAL_SMS_ONLY,
    OTHER_RECIPIENT,
    RECIPIENT,
    STORE,
    TOLL_FREE,
    Api,
    build_multipart,
    control,
    error_code,
    file_part,
    freeze,
    json_part,
    message_body,
)

PHOTO = b"\x89PNG\r\n\x1a\n" + b"pixels" * 50


def read(api, message_id):
    return api.get(f"{STORE}/{message_id}")


def conversation(record) -> str:
    return record["conversation"]["id"]


# -- inbound ----------------------------------------------------------------------------------


def test_an_inbound_text_is_stored_unread_in_the_owners_store(api, emu, ext):
    start = freeze(emu)
    message = emu.inbound(RECIPIENT, LOCAL_MMS, "Are you open today?")
    record = read(api, message.id).json()
    assert record["direction"] == "Inbound"
    assert record["messageStatus"] == "Received"
    assert record["readStatus"] == "Unread"
    assert record["type"] == "SMS"
    assert record["subject"] == "Are you open today?"
    assert record["from"] == {"phoneNumber": RECIPIENT}
    assert record["to"] == [{"phoneNumber": LOCAL_MMS, "name": ext.name, "target": True}]
    assert record["extensionId"] == str(ext.id)
    assert record["owner"] == {
        "extensionId": str(ext.id),
        "extensionType": "User",
        "name": ext.name,
    }
    assert record["creationTime"] == record["lastModifiedTime"] == iso(start)
    assert record["conversationId"] == int(record["conversation"]["id"])
    assert record["conversation"]["uri"].endswith(f"/conversation/{record['conversationId']}")
    [text] = record["attachments"]
    assert text["type"] == "Text" and text["contentType"] == "text/plain"
    assert "smsDeliveryTime" not in record and "deliveryErrorCode" not in record


def test_an_inbound_mms_lists_the_text_then_each_file(api, emu):
    message = emu.inbound(
        RECIPIENT,
        LOCAL_MMS,
        "Two pictures",
        [("one.png", "image/png", PHOTO), ("two.jpg", "image/jpeg", b"jpeg-bytes")],
    )
    attachments = read(api, message.id).json()["attachments"]
    assert [a["type"] for a in attachments] == ["Text", "MmsAttachment", "MmsAttachment"]
    first = attachments[1]
    assert first["fileName"] == "one.png"
    assert first["contentType"] == "image/png"
    assert first["size"] == len(PHOTO)
    assert isinstance(first["id"], int)
    assert first["uri"].endswith(f"/message-store/{message.id}/content/{first['id']}")


def test_the_direction_filter_of_the_list_separates_inbound_from_outbound(api, emu):
    sent = api.send_sms("out").json()["id"]
    received = emu.inbound(RECIPIENT, LOCAL_MMS, "in").id
    listed = api.get(STORE, params={"direction": "Inbound"}).json()["records"]
    assert [r["id"] for r in listed] == [received]
    listed = api.get(STORE, params={"direction": "Outbound"}).json()["records"]
    assert [r["id"] for r in listed] == [sent]
    both = api.get(STORE, params={"direction": ["Inbound", "Outbound"]}).json()["records"]
    assert {r["id"] for r in both} == {sent, received}


def test_the_list_filters_by_read_status_and_keeps_one_message_per_conversation(api, emu):
    emu.advance(1)
    first = emu.inbound(RECIPIENT, LOCAL_MMS, "first").id
    emu.advance(1)
    latest = emu.inbound(RECIPIENT, LOCAL_MMS, "second").id
    emu.advance(1)
    other = emu.inbound(OTHER_RECIPIENT, LOCAL_MMS, "elsewhere", read=True).id
    unread = api.get(STORE, params={"readStatus": "Unread"}).json()["records"]
    assert [r["id"] for r in unread] == [latest, first]
    distinct = api.get(STORE, params={"distinctConversations": "true"}).json()["records"]
    assert [r["id"] for r in distinct] == [other, latest]
    assert api.get(STORE, params={"readStatus": "Seen"}).status_code == 400
    assert api.get(STORE, params={"distinctConversations": "yes"}).status_code == 400


def test_an_inbound_text_to_another_users_number_is_not_in_my_store(api, emu, other_ext):
    message = emu.inbound(RECIPIENT, "+16505550120", "for Grace")
    assert message.extension_id == other_ext.id
    assert read(api, message.id).status_code == 404
    assert api.get(STORE).json()["records"] == []


def test_inbound_refuses_what_ringcentral_would_not_deliver(emu, ext):
    with pytest.raises(ValueError, match="belongs to no extension"):
        emu.inbound(RECIPIENT, "+16505550177", "nobody's number")
    with pytest.raises(ValueError, match="SmsSender"):
        emu.inbound(RECIPIENT, FAX, "to a fax line")
    with pytest.raises(ValueError, match="MmsSender"):
        emu.inbound(RECIPIENT, TOLL_FREE, "", [("a.png", "image/png", PHOTO)])
    with pytest.raises(ValueError, match="E.164"):
        emu.inbound("6505550199", LOCAL_MMS, "no plus")
    with pytest.raises(ValueError, match="text or attachments"):
        emu.inbound(RECIPIENT, LOCAL_MMS, "")
    with pytest.raises(ValueError, match="content type"):
        emu.inbound(RECIPIENT, LOCAL_MMS, "", [("a.exe", "application/x-msdownload", b"MZ")])
    with pytest.raises(ValueError, match="twice"):
        emu.inbound(RECIPIENT, LOCAL_MMS, "hi", also_to=[RECIPIENT])
    with pytest.raises(ValueError, match="not after now"):
        emu.inbound(RECIPIENT, LOCAL_MMS, "from the future", at=emu.now() + 60)
    assert len(emu.messages) == 0


def test_a_back_dated_inbound_text_keeps_its_creation_time(api, emu):
    start = freeze(emu)
    message = emu.inbound(RECIPIENT, LOCAL_MMS, "yesterday", at=start - 86400 + 60)
    record = read(api, message.id).json()
    assert record["creationTime"] == record["lastModifiedTime"] == iso(start - 86400 + 60)
    assert [r["id"] for r in api.get(STORE).json()["records"]] == [message.id]


# -- conversations ----------------------------------------------------------------------------


def test_a_reply_and_the_message_it_answers_share_one_conversation(api, emu):
    sent = api.send_sms("Your order is ready").json()
    reply = emu.inbound(RECIPIENT, LOCAL_MMS, "Thanks!")
    answer = api.send_sms("You're welcome").json()
    ids = {conversation(sent), conversation(read(api, reply.id).json()), conversation(answer)}
    assert len(ids) == 1
    listed = api.get(STORE, params={"conversationId": conversation(sent)}).json()["records"]
    assert len(listed) == 3


def test_another_of_my_numbers_or_another_contact_is_another_conversation(api, emu):
    base = conversation(api.send_sms("hi").json())
    from_other_contact = emu.inbound(OTHER_RECIPIENT, LOCAL_MMS, "hi")
    to_other_number = emu.inbound(RECIPIENT, LOCAL_SMS_ONLY, "hi")
    assert str(from_other_contact.conversation_id) != base
    assert str(to_other_number.conversation_id) != base


def test_a_group_mms_thread_is_one_conversation_in_both_directions(api, emu):
    group = conversation(api.send_sms("Team lunch?", to=[RECIPIENT, OTHER_RECIPIENT]).json())
    answer = emu.inbound(RECIPIENT, LOCAL_MMS, "Yes!", also_to=[OTHER_RECIPIENT])
    record = read(api, answer.id).json()
    assert conversation(record) == group
    assert record["to"][0] == {"phoneNumber": LOCAL_MMS, "name": "Ada Lovelace", "target": True}
    assert record["to"][1:] == [{"phoneNumber": OTHER_RECIPIENT}]
    one_to_one = emu.inbound(RECIPIENT, LOCAL_MMS, "only to you")
    assert str(one_to_one.conversation_id) != group


def test_conversations_are_per_extension(emu, ext, other_ext):
    mine = emu.inbound(RECIPIENT, LOCAL_MMS, "hi Ada")
    theirs = emu.inbound(RECIPIENT, "+16505550120", "hi Grace")
    assert mine.conversation_id != theirs.conversation_id


# -- sent outside the app ---------------------------------------------------------------------


def test_a_text_sent_from_another_ringcentral_app_is_an_outbound_record(api, emu, ext):
    freeze(emu)
    message = emu.outbound_elsewhere(LOCAL_MMS, [RECIPIENT], "Sent from my desk phone")
    record = read(api, message.id).json()
    assert record["direction"] == "Outbound"
    assert record["readStatus"] == "Read"
    assert record["messageStatus"] == "Queued"
    assert record["from"] == {"phoneNumber": LOCAL_MMS, "name": ext.name}
    assert emu.journal_entries(path_contains="/sms") == []
    emu.advance(3)
    assert read(api, message.id).json()["messageStatus"] == "Delivered"
    reply = emu.inbound(RECIPIENT, LOCAL_MMS, "Got it")
    assert reply.conversation_id == message.conversation_id


def test_a_text_sent_elsewhere_follows_the_recipients_behaviour(api, emu):
    emu.set_recipient_behaviour(RECIPIENT, outcome="delivery_failed", error_code="SMS-CAR-411")
    message = emu.outbound_elsewhere(LOCAL_MMS, [RECIPIENT], "landline?")
    emu.advance(5)
    record = read(api, message.id).json()
    assert record["messageStatus"] == "DeliveryFailed"
    assert record["deliveryErrorCode"] == "SMS-CAR-411"


def test_sending_elsewhere_needs_an_owned_texting_number(emu, ext):
    with pytest.raises(ValueError, match="belongs to no extension"):
        emu.outbound_elsewhere("+16505550177", [RECIPIENT], "hi")
    with pytest.raises(ValueError, match="MmsSender"):
        emu.outbound_elsewhere(LOCAL_SMS_ONLY, [RECIPIENT], "", [("a.png", "image/png", PHOTO)])
    with pytest.raises(ValueError, match="list"):
        emu.outbound_elsewhere(LOCAL_MMS, RECIPIENT, "hi")
    with pytest.raises(ValueError, match="UTF-16"):
        emu.outbound_elsewhere(LOCAL_MMS, [RECIPIENT], "x" * 1001)


# -- control API ------------------------------------------------------------------------------


def test_inbound_over_the_control_api_with_a_group_and_a_file(api, emu):
    answer = control(
        emu,
        "POST",
        "inbound",
        json={
            "from": RECIPIENT,
            "to": LOCAL_MMS,
            "text": "Look at this",
            "attachments": [
                {
                    "filename": "pic.png",
                    "content_type": "image/png",
                    "data_base64": base64.b64encode(PHOTO).decode(),
                }
            ],
            "also_to": [OTHER_RECIPIENT],
        },
    )
    assert answer.status_code == 200, answer.text
    record = answer.json()
    assert record["direction"] == "Inbound"
    stored = read(api, record["id"]).json()
    assert stored["attachments"][1]["size"] == len(PHOTO)
    assert [t["phoneNumber"] for t in stored["to"]] == [LOCAL_MMS, OTHER_RECIPIENT]


def test_the_control_api_refuses_bad_inbound_requests(emu, ext):
    cases = [
        {"from": RECIPIENT},
        {"from": RECIPIENT, "to": LOCAL_MMS, "text": "hi", "colour": "red"},
        {"from": RECIPIENT, "to": "+16505550177", "text": "hi"},
        {"from": RECIPIENT, "to": LOCAL_MMS, "text": "hi", "read": "yes"},
        {
            "from": RECIPIENT,
            "to": LOCAL_MMS,
            "attachments": [{"filename": "a.png", "content_type": "image/png", "data_base64": "*"}],
        },
    ]
    for body in cases:
        answer = control(emu, "POST", "inbound", json=body)
        assert answer.status_code == 400, body
        assert "error" in answer.json()
    assert len(emu.messages) == 0


def test_outbound_elsewhere_over_the_control_api(api, emu):
    answer = control(
        emu,
        "POST",
        "outbound-elsewhere",
        json={"from": LOCAL_MMS, "to": [RECIPIENT, OTHER_RECIPIENT], "text": "From the app"},
    )
    assert answer.status_code == 200, answer.text
    record = read(api, answer.json()["id"]).json()
    assert record["direction"] == "Outbound"
    assert [t["phoneNumber"] for t in record["to"]] == [RECIPIENT, OTHER_RECIPIENT]
    bad = control(emu, "POST", "outbound-elsewhere", json={"from": LOCAL_MMS, "to": RECIPIENT})
    assert bad.status_code == 400


# -- attachment content -----------------------------------------------------------------------


def content(api, message, attachment_id, **params):
    return api.get(f"{STORE}/{message.id}/content/{attachment_id}", params=params)


def test_an_inbound_file_downloads_with_its_type_in_the_medium_group(api, emu):
    message = emu.inbound(RECIPIENT, LOCAL_MMS, "pic", [("pic.png", "image/png", PHOTO)])
    [item] = message.attachments
    answer = content(api, message, item.id)
    assert answer.status_code == 200
    assert answer.content == PHOTO
    assert answer.headers["Content-Type"] == "image/png"
    assert "Content-Disposition" not in answer.headers
    assert answer.headers["X-Rate-Limit-Group"] == "medium"
    text = content(api, message, message.text_attachment_id)
    assert text.headers["Content-Type"].startswith("text/plain")
    assert text.text == "pic"


def test_content_disposition_follows_the_query_parameters(api, emu):
    message = emu.inbound(RECIPIENT, LOCAL_MMS, "", [("pic.png", "image/png", PHOTO)])
    item = message.attachments[0].id
    inline = content(api, message, item, contentDisposition="Inline")
    assert inline.headers["Content-Disposition"] == 'inline; filename="pic.png"'
    named = content(
        api, message, item, contentDisposition="Attachment", contentDispositionFilename="café.png"
    )
    assert named.headers["Content-Disposition"] == (
        "attachment; filename=\"caf?.png\"; filename*=UTF-8''caf%C3%A9.png"
    )
    sneaky = content(
        api,
        message,
        item,
        contentDisposition="Attachment",
        contentDispositionFilename="a.png\r\nX-Injected: 1",
    )
    assert "X-Injected" not in sneaky.headers


def test_bad_content_disposition_parameters_are_cmn_101(api, emu):
    message = emu.inbound(RECIPIENT, LOCAL_MMS, "", [("pic.png", "image/png", PHOTO)])
    item = message.attachments[0].id
    wrong = content(api, message, item, contentDisposition="Download")
    assert wrong.status_code == 400 and error_code(wrong) == "CMN-101"
    alone = content(api, message, item, contentDispositionFilename="x.png")
    assert alone.status_code == 400
    assert alone.json()["errors"][0]["parameterName"] == "contentDispositionFilename"


def test_an_unknown_attachment_or_another_users_message_is_404(api, emu, app, other_ext):
    message = emu.inbound(RECIPIENT, LOCAL_MMS, "", [("pic.png", "image/png", PHOTO)])
    missing = content(api, message, 1)
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["parameterName"] == "attachmentId"
    other = Api(api.base_url, emu.issue_tokens(CLIENT_ID, other_ext.id)["access_token"])
    assert content(other, message, message.attachments[0].id).status_code == 404


def test_a_sent_mms_file_downloads_as_it_was_sent(api):
    body, boundary = build_multipart([json_part(message_body()), file_part(PHOTO)])
    sent = api.send_multipart(body, boundary, path="/restapi/v1.0/account/~/extension/~/mms")
    item = sent.json()["attachments"][1]
    answer = api.get(item["uri"].split(api.base_url, 1)[1])
    assert answer.content == PHOTO
    assert answer.headers["Content-Type"] == "image/png"
