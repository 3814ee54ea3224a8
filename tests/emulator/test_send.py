"""POST .../sms and .../mms: content types, strict multipart, limits, numbers and features."""

from __future__ import annotations

import hashlib
import json

import pytest

from .helpers import (
    FAX,
    INTERNATIONAL,
    LOCAL_MMS,
    LOCAL_SMS_ONLY,
    NO_FEATURES,
    OTHER_RECIPIENT,
    RECIPIENT,
    TOLL_FREE,
    PartSpec,
    build_multipart,
    error_code,
    file_part,
    json_part,
    message_body,
)

SMS = "/restapi/v1.0/account/~/extension/~/sms"
MMS = "/restapi/v1.0/account/~/extension/~/mms"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def send_parts(api, parts, path=SMS, subtype="form-data"):
    body, boundary = build_multipart(parts)
    return api.send_multipart(body, boundary, path=path, subtype=subtype)


def with_files(api, files, body=None, path=SMS):
    return send_parts(api, [json_part(body or message_body()), *files], path=path)


# -- accepted shapes -------------------------------------------------------------------------


def test_a_json_sms_is_accepted_with_ringcentrals_message_json(api, emu, ext):
    response = api.send_sms("Hello there", to=[RECIPIENT, OTHER_RECIPIENT])
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["id"], int)
    assert body["uri"].endswith(f"/extension/{ext.id}/message-store/{body['id']}")
    assert body["type"] == "SMS"
    assert body["direction"] == "Outbound"
    assert body["messageStatus"] == "Queued"
    assert body["availability"] == "Alive"
    assert body["from"]["phoneNumber"] == LOCAL_MMS
    assert body["to"] == [
        {"phoneNumber": RECIPIENT, "messageStatus": "Queued"},
        {"phoneNumber": OTHER_RECIPIENT, "messageStatus": "Queued"},
    ]
    assert body["subject"] == "Hello there"
    assert body["attachments"][0]["type"] == "Text"
    assert body["conversation"]["id"] == str(body["conversationId"])
    assert body["conversation"]["uri"]
    assert body["creationTime"].endswith("Z") and body["lastModifiedTime"].endswith("Z")


def test_the_message_is_stored_for_the_tokens_extension(api, emu, ext):
    message_id = api.send_sms("stored").json()["id"]
    stored = emu.messages.get(message_id)
    assert stored.extension_id == ext.id
    assert stored.to_numbers == [RECIPIENT]
    assert stored.text == "stored"


def test_multipart_built_by_requests_like_the_python_sdk_is_accepted(api, emu):
    files = [
        ("json", ("request.json", json.dumps(message_body()), "application/json")),
        ("attachment", ("cat.png", PNG, "image/png")),
    ]
    response = api.post(SMS, files=files)
    assert response.status_code == 200, response.text
    mms = response.json()["attachments"][1]
    assert mms == {
        "id": mms["id"],
        "uri": mms["uri"],
        "type": "MmsAttachment",
        "contentType": "image/png",
        "fileName": "cat.png",
        "size": len(PNG),
    }


def test_multipart_mixed_is_accepted_on_the_mms_endpoint(api):
    response = send_parts(api, [json_part(message_body()), file_part(PNG)], MMS, "mixed")
    assert response.status_code == 200, response.text


def test_the_mms_endpoint_rejects_json_with_415(api):
    response = api.post(MMS, json=message_body())
    assert response.status_code == 415


def test_an_unsupported_request_content_type_is_415(api):
    response = api.post(SMS, data=b"hello", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


def test_attachment_bytes_can_be_downloaded_from_the_content_uri(api):
    body = with_files(api, [file_part(PNG)]).json()
    uri = body["attachments"][1]["uri"].replace(api.base_url, "")
    content = api.get(uri)
    assert content.status_code == 200
    assert content.content == PNG
    assert content.headers["Content-Type"] == "image/png"


# -- strict multipart ------------------------------------------------------------------------


def test_a_json_part_that_is_not_first_is_rejected(api, emu):
    response = send_parts(api, [file_part(PNG), json_part(message_body())])
    assert response.status_code == 400
    assert error_code(response) == "CMN-104"
    assert len(emu.messages) == 0


def test_a_first_part_without_application_json_content_type_is_rejected(api):
    part = PartSpec(
        json.dumps(message_body()).encode(),
        [("Content-Disposition", 'form-data; name="json"'), ("Content-Type", "text/plain")],
    )
    response = send_parts(api, [part, file_part(PNG)])
    assert response.status_code == 400


def test_an_unparsable_json_part_is_cmn_103(api):
    part = PartSpec(b"{not json", [("Content-Type", "application/json")])
    response = send_parts(api, [part, file_part(PNG)])
    assert response.status_code == 400
    assert error_code(response) == "CMN-103"


def test_an_attachment_without_content_disposition_is_msg_350(api):
    part = PartSpec(PNG, [("Content-Type", "image/png")])
    response = with_files(api, [part])
    assert response.status_code == 400
    assert error_code(response) == "MSG-350"


def test_an_attachment_without_a_filename_is_msg_351(api):
    response = with_files(api, [file_part(PNG, filename=None)])
    assert response.status_code == 400
    assert error_code(response) == "MSG-351"


def test_an_empty_attachment_is_msg_347(api):
    response = with_files(api, [file_part(b"")])
    assert response.status_code == 400
    assert error_code(response) == "MSG-347"


def test_an_unsupported_attachment_type_is_415_msg_348(api):
    response = with_files(api, [file_part(b"MZ...", "tool.exe", "application/x-msdownload")])
    assert response.status_code == 415
    assert error_code(response) == "MSG-348"


def test_an_attachment_without_content_type_is_415_msg_348(api):
    response = with_files(api, [file_part(PNG, content_type=None)])
    assert response.status_code == 415
    assert error_code(response) == "MSG-348"


def test_a_body_without_its_closing_boundary_is_rejected(api):
    body, boundary = build_multipart([json_part(message_body()), file_part(PNG)])
    truncated = body[: body.rindex(b"--" + boundary.encode() + b"--")]
    response = api.send_multipart(truncated, boundary)
    assert response.status_code == 400
    assert error_code(response) == "CMN-104"


def test_a_multipart_content_type_without_boundary_is_rejected(api):
    body, _ = build_multipart([json_part(message_body())])
    response = api.post(SMS, data=body, headers={"Content-Type": "multipart/form-data"})
    assert response.status_code == 400


# -- limits ----------------------------------------------------------------------------------


def test_ten_attachments_are_accepted(api):
    files = [file_part(PNG, f"p{i}.png") for i in range(10)]
    response = with_files(api, files)
    assert response.status_code == 200, response.text
    assert len(response.json()["attachments"]) == 11


def test_the_eleventh_attachment_is_rejected_with_msg_379(api, emu):
    files = [file_part(PNG, f"p{i}.png") for i in range(11)]
    response = with_files(api, files)
    assert response.status_code == 400
    assert error_code(response) == "MSG-379"
    assert len(emu.messages) == 0


def test_attachments_totalling_exactly_1500000_bytes_are_accepted(api):
    files = [file_part(b"a" * 750_000, "a.png"), file_part(b"b" * 750_000, "b.png")]
    response = with_files(api, files)
    assert response.status_code == 200, response.text


def test_attachments_totalling_1500001_bytes_are_rejected_with_msg_337(api):
    files = [file_part(b"a" * 750_000, "a.png"), file_part(b"b" * 750_001, "b.png")]
    response = with_files(api, files)
    assert response.status_code == 400
    assert error_code(response) == "MSG-337"


def test_a_request_body_over_10_mb_is_413(api, emu):
    response = api.post(
        SMS, data=b"x" * (10 * 1024 * 1024 + 1), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert len(emu.messages) == 0


def test_text_of_1000_utf16_units_including_emoji_is_accepted(api):
    text = "\U0001f600" * 499 + "ab"
    assert len(text.encode("utf-16-le")) // 2 == 1000
    response = api.send_sms(text)
    assert response.status_code == 200, response.text


def test_text_of_1001_utf16_units_is_rejected_with_msg_338(api):
    text = "\U0001f600" * 500 + "a"
    assert len(text) == 501
    response = api.send_sms(text)
    assert response.status_code == 400
    assert error_code(response) == "MSG-338"


def test_ten_recipients_are_accepted(api):
    to = [f"+1650555{2000 + i}" for i in range(10)]
    assert api.send_sms(to=to).status_code == 200


def test_eleven_recipients_are_rejected_with_msg_381(api):
    to = [f"+1650555{2000 + i}" for i in range(11)]
    response = api.send_sms(to=to)
    assert response.status_code == 400
    assert error_code(response) == "MSG-381"


# -- fields ----------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["6505550199", "+0650555", "+1 650 555 0199", ""])
def test_a_recipient_that_is_not_e164_is_cmn_101(api, number):
    response = api.send_sms(to=[number])
    assert response.status_code == 400
    assert error_code(response) == "CMN-101"


def test_a_sender_that_is_not_e164_is_cmn_101(api):
    response = api.send_sms(sender="16505550100")
    assert response.status_code == 400
    assert error_code(response) == "CMN-101"


def test_a_recipient_with_extension_number_is_msg_246(api):
    body = message_body()
    body["to"] = [{"phoneNumber": RECIPIENT, "extensionNumber": ""}]
    response = api.post(SMS, json=body)
    assert response.status_code == 400
    assert error_code(response) == "MSG-246"


def test_a_duplicate_recipient_is_cmn_406(api):
    response = api.send_sms(to=[RECIPIENT, RECIPIENT])
    assert response.status_code == 400
    assert error_code(response) == "CMN-406"


def test_an_sms_without_text_is_rejected(api):
    body = message_body()
    del body["text"]
    assert api.post(SMS, json=body).status_code == 400


def test_country_with_both_id_and_iso_code_is_msg_365(api):
    body = message_body()
    body["country"] = {"id": "1", "isoCode": "US"}
    response = api.post(SMS, json=body)
    assert response.status_code == 400
    assert error_code(response) == "MSG-365"


# -- numbers and features --------------------------------------------------------------------


def test_a_sender_number_of_another_user_is_msg_245(api, other_ext):
    response = api.send_sms(sender="+16505550120")
    assert response.status_code == 400
    assert error_code(response) == "MSG-245"


def test_a_sender_without_sms_sender_is_403_msg_367(api):
    response = api.send_sms(sender=NO_FEATURES)
    assert response.status_code == 403
    assert error_code(response) == "MSG-367"


def test_a_fax_number_sender_is_403_msg_241(api):
    response = api.send_sms(sender=FAX)
    assert response.status_code == 403
    assert error_code(response) == "MSG-241"


def test_attachments_from_a_toll_free_number_are_403_msg_242(api):
    response = with_files(api, [file_part(PNG)], body=message_body(sender=TOLL_FREE))
    assert response.status_code == 403
    assert error_code(response) == "MSG-242"


def test_attachments_from_an_sms_only_number_are_403_msg_242(api):
    response = with_files(api, [file_part(PNG)], body=message_body(sender=LOCAL_SMS_ONLY))
    assert response.status_code == 403
    assert error_code(response) == "MSG-242"


def test_text_from_a_toll_free_number_is_accepted(api):
    assert api.send_sms(sender=TOLL_FREE).status_code == 200


def test_international_sms_without_the_feature_is_403_msg_240(api):
    response = api.send_sms(to=["+442071838750"])
    assert response.status_code == 403
    assert error_code(response) == "MSG-240"


def test_international_sms_with_the_feature_is_accepted(api):
    assert api.send_sms(to=["+442071838750"], sender=INTERNATIONAL).status_code == 200


def test_international_mms_is_403_msg_383(api):
    body = message_body(to=["+442071838750"], sender=INTERNATIONAL)
    response = with_files(api, [file_part(PNG)], body=body)
    assert response.status_code == 403
    assert error_code(response) == "MSG-383"


def test_stored_attachments_keep_their_bytes(api, emu):
    message_id = with_files(api, [file_part(PNG, "x.png")]).json()["id"]
    stored = emu.messages.get(message_id).attachments[0]
    assert stored.sha256 == hashlib.sha256(PNG).hexdigest()
    assert stored.filename == "x.png"


def test_an_unreadable_content_disposition_is_rejected_not_a_server_error(api):
    part = PartSpec(
        PNG,
        [
            ("Content-Disposition", 'form-data; filename="unterminated'),
            ("Content-Type", "image/png"),
        ],
    )
    response = with_files(api, [part])
    assert response.status_code == 400
    assert error_code(response) == "CMN-104"
