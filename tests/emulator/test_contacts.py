"""Scripted contacts answer on the emulator clock: reply, photo, stop."""

from __future__ import annotations

import struct
import zlib

import pytest

from messaging.ringcentral.emulator.contacts import PHOTO_REFUSED, sunset_png

from .helpers import (
    LOCAL_MMS,
    LOCAL_SMS_ONLY,
    OTHER_RECIPIENT,
    RECIPIENT,
    STORE,
    control,
    freeze,
)


def inbound(api) -> list[dict]:
    return api.get(STORE, params={"direction": "Inbound"}).json()["records"]


@pytest.fixture
def start(emu, api):
    return freeze(emu)


def test_a_reply_contact_answers_after_delivery_plus_its_delay(api, emu, start):
    emu.script_contact(RECIPIENT, "reply", delay=5)
    sent = api.send_sms("Your table is ready").json()
    # Delivered at +3 (the fixture's config), answered 5 s later.
    emu.advance(7.9)
    assert inbound(api) == []
    emu.advance(0.1)
    [reply] = inbound(api)
    assert reply["subject"] == "Thanks! Got your message: Your table is ready"
    assert reply["from"]["phoneNumber"] == RECIPIENT
    assert reply["to"][0]["phoneNumber"] == LOCAL_MMS
    assert reply["conversation"] == sent["conversation"]
    assert reply["creationTime"] == reply["lastModifiedTime"]


def test_a_photo_contact_answers_with_a_small_valid_png(api, emu, start):
    emu.script_contact(RECIPIENT, "photo", delay=2)
    api.send_sms("Send me a picture")
    emu.advance(10)
    [reply] = inbound(api)
    text, picture = reply["attachments"]
    assert text["type"] == "Text"
    assert picture["type"] == "MmsAttachment"
    assert picture["contentType"] == "image/png"
    data = api.get(picture["uri"].split(api.base_url, 1)[1]).content
    assert data == sunset_png()
    assert len(data) <= 20_000
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    length = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    rows = zlib.decompress(data[41 : 41 + length])
    assert len(rows) == height * (1 + 3 * width)


def test_a_photo_contact_answers_a_number_without_mms_in_words(api, emu, start):
    emu.script_contact(RECIPIENT, "photo", delay=2)
    api.send_sms("Send me a picture", sender=LOCAL_SMS_ONLY)
    emu.advance(10)
    [reply] = inbound(api)
    assert reply["subject"] == PHOTO_REFUSED
    assert [a["type"] for a in reply["attachments"]] == ["Text"]


def test_a_stop_contact_opts_out_and_later_sends_fail(api, emu, start):
    emu.script_contact(RECIPIENT, "stop", delay=5)
    api.send_sms("Big sale this weekend!")
    emu.advance(10)
    [stop] = inbound(api)
    assert stop["subject"] == "STOP"
    assert emu.opted_out(LOCAL_MMS, RECIPIENT)
    again = api.send_sms("Last chance!").json()["id"]
    emu.advance(10)
    record = api.get(f"{STORE}/{again}").json()
    assert record["messageStatus"] == "SendingFailed"
    assert record["deliveryErrorCode"] == "SMS-RC-413"
    assert len(inbound(api)) == 1  # a blocked text never reaches the contact


def test_a_message_that_fails_is_not_answered(api, emu, start):
    emu.script_contact(RECIPIENT, "reply")
    emu.set_recipient_behaviour(RECIPIENT, outcome="delivery_failed")
    api.send_sms("lost")
    emu.advance(60)
    assert inbound(api) == []


def test_a_contact_in_a_group_answers_the_group(api, emu, start):
    emu.script_contact(RECIPIENT, "reply", delay=1)
    sent = api.send_sms("Lunch?", to=[RECIPIENT, OTHER_RECIPIENT]).json()
    emu.advance(5)
    [reply] = inbound(api)
    assert [t["phoneNumber"] for t in reply["to"]] == [LOCAL_MMS, OTHER_RECIPIENT]
    assert reply["conversation"] == sent["conversation"]


def test_texts_sent_elsewhere_are_answered_too(api, emu, start):
    emu.script_contact(RECIPIENT, "reply", delay=1)
    emu.outbound_elsewhere(LOCAL_MMS, [RECIPIENT], "from my phone")
    emu.advance(5)
    assert inbound(api)[0]["subject"].endswith("from my phone")


def test_scripts_over_control_and_reset_drops_pending_answers(api, emu, start):
    answer = control(
        emu, "POST", "contacts", json={"phone_number": RECIPIENT, "script": "reply", "delay": 1}
    )
    assert answer.status_code == 200
    assert control(emu, "GET", "world").json()["contacts"] == {
        RECIPIENT: {"script": "reply", "delay": 1}
    }
    api.send_sms("hi")
    emu.reset()
    emu.advance(10)
    assert len(emu.messages) == 0
    control(emu, "POST", "contacts", json={"phone_number": RECIPIENT, "script": None})
    api.send_sms("hi again")
    emu.advance(10)
    assert inbound(api) == []
    bad = control(emu, "POST", "contacts", json={"phone_number": RECIPIENT, "script": "sing"})
    assert bad.status_code == 400


def test_an_answer_that_cannot_be_stored_does_not_stop_the_others(api, emu, ext, start, capsys):
    emu.script_contact(RECIPIENT, "reply", delay=1)
    emu.script_contact(OTHER_RECIPIENT, "reply", delay=2)
    api.send_sms("hi")
    api.send_sms("hello", to=[OTHER_RECIPIENT], sender=LOCAL_SMS_ONLY)
    ext.numbers.remove(ext.number(LOCAL_MMS))  # the number left the account meanwhile
    emu.advance(10)
    assert "belongs to no extension" in capsys.readouterr().err
    [answer] = inbound(api)
    assert answer["from"]["phoneNumber"] == OTHER_RECIPIENT
