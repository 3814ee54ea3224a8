"""Opt-out by keyword: STOP blocks the pair (our number, the contact), START lifts it."""

from __future__ import annotations

import pytest

from .helpers import (
    LOCAL_MMS,
    LOCAL_SMS_ONLY,
    OTHER_RECIPIENT,
    RECIPIENT,
    STORE,
    control,
    freeze,
)


def final(api, emu, response) -> dict:
    assert response.status_code == 200, response.text
    emu.advance(5)
    return api.get(f"{STORE}/{response.json()['id']}").json()


@pytest.mark.parametrize(
    "word", ["STOP", "stop", "  Stop\n", "STOPALL", "unsubscribe", "Cancel", "END", "quit"]
)
def test_an_opt_out_keyword_opts_the_pair_out(api, emu, word):
    freeze(emu)
    emu.inbound(RECIPIENT, LOCAL_MMS, word)
    assert emu.opted_out(LOCAL_MMS, RECIPIENT)
    record = final(api, emu, api.send_sms("Still there?"))
    assert record["messageStatus"] == "SendingFailed"
    assert record["deliveryErrorCode"] == "SMS-RC-413"


@pytest.mark.parametrize("text", ["stop it please", "STOP!", "Don't stop", "STOP STOP"])
def test_a_keyword_inside_a_longer_text_is_just_a_text(emu, ext, text):
    emu.inbound(RECIPIENT, LOCAL_MMS, text)
    assert not emu.opted_out(LOCAL_MMS, RECIPIENT)


def test_the_opt_out_is_for_that_pair_only(api, emu):
    freeze(emu)
    emu.inbound(RECIPIENT, LOCAL_MMS, "STOP")
    assert not emu.opted_out(LOCAL_SMS_ONLY, RECIPIENT)
    other_number = final(api, emu, api.send_sms("from my other line", sender=LOCAL_SMS_ONLY))
    assert other_number["messageStatus"] == "Delivered"
    group = final(api, emu, api.send_sms("both of you", to=[RECIPIENT, OTHER_RECIPIENT]))
    assert group["messageStatus"] == "SendingFailed"
    assert [t["messageStatus"] for t in group["to"]] == ["SendingFailed", "Delivered"]
    assert group["deliveryErrorCode"] == "SMS-RC-413"


def test_the_stop_text_itself_is_stored(api, emu):
    message = emu.inbound(RECIPIENT, LOCAL_MMS, "STOP")
    assert api.get(f"{STORE}/{message.id}").json()["subject"] == "STOP"


@pytest.mark.parametrize("word", ["START", "unstop", "Resume", "SUBSCRIBE", "continue"])
def test_an_opt_in_keyword_lifts_the_opt_out(api, emu, word):
    freeze(emu)
    emu.inbound(RECIPIENT, LOCAL_MMS, "STOP")
    emu.inbound(RECIPIENT, LOCAL_MMS, word)
    assert not emu.opted_out(LOCAL_MMS, RECIPIENT)
    assert final(api, emu, api.send_sms("Welcome back"))["messageStatus"] == "Delivered"


def test_an_opt_out_blocks_texts_sent_from_other_apps_too(api, emu):
    freeze(emu)
    emu.inbound(RECIPIENT, LOCAL_MMS, "STOP")
    message = emu.outbound_elsewhere(LOCAL_MMS, [RECIPIENT], "from the desk phone")
    emu.advance(5)
    assert emu.message_status(message.id) == "SendingFailed"


def test_a_send_accepted_before_the_stop_is_not_affected(api, emu):
    freeze(emu)
    sent = api.send_sms("just before")
    emu.inbound(RECIPIENT, LOCAL_MMS, "STOP")
    assert final(api, emu, sent)["messageStatus"] == "Delivered"


def test_opt_outs_are_listed_over_control_and_forgotten_by_reset(emu, ext):
    start = freeze(emu)
    emu.inbound(RECIPIENT, LOCAL_MMS, "STOP")
    assert control(emu, "GET", "opt-outs").json() == {
        "records": [{"from": LOCAL_MMS, "to": RECIPIENT, "since": start}]
    }
    emu.reset()
    assert not emu.opted_out(LOCAL_MMS, RECIPIENT)
