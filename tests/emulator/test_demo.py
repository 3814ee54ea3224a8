"""The demo world and running the emulator as its own process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from messaging.ringcentral.emulator import serve_forever
from messaging.ringcentral.emulator.demo import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_CONTACT_CUSTOMER,
    DEMO_CONTACT_DELAY,
    DEMO_CONTACT_PHOTO,
    DEMO_CONTACT_REPLIES,
    DEMO_CONTACT_STOPS,
    DEMO_NUMBER_FAX,
    DEMO_NUMBER_HIGH_VOLUME,
    DEMO_NUMBER_NO_FEATURES,
    DEMO_NUMBER_SMS_MMS,
    DEMO_NUMBER_SMS_ONLY,
    DEMO_NUMBER_TOLL_FREE,
    DEMO_RECIPIENT_DELIVERED,
    DEMO_RECIPIENT_LANDLINE,
    DEMO_RECIPIENT_NO_RECEIPT,
    DEMO_RECIPIENT_OPTED_OUT,
    DEMO_REDIRECT_URIS,
    seed_demo,
)

from .helpers import STORE, Api, error_code, freeze

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo(emu):
    world = seed_demo(emu)
    tokens = emu.issue_tokens(DEMO_CLIENT_ID, world.office.id)
    return world, Api(emu.base_url, tokens["access_token"])


def features(api) -> dict[str, list[str]]:
    records = api.get("/restapi/v1.0/account/~/extension/~/phone-number").json()["records"]
    return {r["phoneNumber"]: r["features"] for r in records}


def test_the_demo_office_has_one_number_of_each_kind(demo):
    _, api = demo
    found = features(api)
    assert set(found[DEMO_NUMBER_SMS_MMS]) >= {"SmsSender", "MmsSender"}
    assert "SmsSender" in found[DEMO_NUMBER_SMS_ONLY]
    assert "MmsSender" not in found[DEMO_NUMBER_SMS_ONLY]
    assert "SmsSender" in found[DEMO_NUMBER_TOLL_FREE]
    assert "MmsSender" not in found[DEMO_NUMBER_TOLL_FREE]
    assert found[DEMO_NUMBER_FAX] == []
    assert found[DEMO_NUMBER_NO_FEATURES] == []
    assert "A2PSmsSender" in found[DEMO_NUMBER_HIGH_VOLUME]
    assert "SmsSender" not in found[DEMO_NUMBER_HIGH_VOLUME]


def test_the_demo_high_volume_number_sends_batches_and_no_single_texts(demo):
    _, api = demo
    body = {"from": DEMO_NUMBER_HIGH_VOLUME, "text": "Hi", "messages": [{"to": ["+16505550170"]}]}
    assert api.post("/restapi/v1.0/account/~/a2p-sms/batches", json=body).status_code == 201
    assert error_code(api.send_sms(sender=DEMO_NUMBER_HIGH_VOLUME)) == "MSG-367"


def test_demo_senders_fail_the_way_their_features_say(demo):
    _, api = demo
    assert error_code(api.send_sms(sender=DEMO_NUMBER_FAX)) == "MSG-241"
    assert error_code(api.send_sms(sender=DEMO_NUMBER_NO_FEATURES)) == "MSG-367"
    assert api.send_sms(sender=DEMO_NUMBER_TOLL_FREE).status_code == 200


def test_demo_recipients_end_with_their_scripted_outcomes(demo, emu):
    _, api = demo
    to = [
        DEMO_RECIPIENT_DELIVERED,
        DEMO_RECIPIENT_OPTED_OUT,
        DEMO_RECIPIENT_LANDLINE,
        DEMO_RECIPIENT_NO_RECEIPT,
    ]
    ids = [api.send_sms(to=[number]).json()["id"] for number in to]
    emu.advance(60)
    bodies = [api.get(f"/restapi/v1.0/account/~/extension/~/message-store/{i}").json() for i in ids]
    assert [b["messageStatus"] for b in bodies] == [
        "Delivered",
        "SendingFailed",
        "DeliveryFailed",
        "Sent",
    ]
    assert bodies[1]["deliveryErrorCode"] == "SMS-RC-413"
    assert bodies[2]["deliveryErrorCode"] == "SMS-CAR-411"


def test_a_newly_linked_demo_account_already_has_conversations(demo, emu):
    world, api = demo
    listed = api.get(STORE, params={"dateFrom": "2000-01-01T00:00:00Z"}).json()["records"]
    assert [r["id"] for r in listed] == [m.id for m in reversed(world.history)]
    assert {r["direction"] for r in listed} == {"Inbound", "Outbound"}
    ages = [emu.now() - m.created_at for m in world.history]
    assert max(ages) >= 2 * 86400 and min(ages) <= 3600
    by_contact = {}
    for record in listed:
        contact = record["from"]["phoneNumber"]
        if record["direction"] == "Outbound":
            contact = record["to"][0]["phoneNumber"]
        by_contact.setdefault(contact, set()).add(record["conversation"]["id"])
    assert set(by_contact) == {DEMO_CONTACT_CUSTOMER, DEMO_CONTACT_PHOTO, DEMO_CONTACT_REPLIES}
    assert all(len(ids) == 1 for ids in by_contact.values())
    [mms] = [r for r in listed if len(r["attachments"]) > 1]
    photo = mms["attachments"][1]
    assert photo["contentType"] == "image/png"
    data = api.get(photo["uri"].split(emu.base_url, 1)[1]).content
    assert data.startswith(b"\x89PNG")
    unread = [r["subject"] for r in listed if r["readStatus"] == "Unread"]
    assert unread == ["Can you call me back when you have a minute?"]
    assert all(r["messageStatus"] in ("Received", "Delivered") for r in listed)


def test_demo_contacts_answer_a_few_seconds_later(demo, emu):
    _, api = demo
    freeze(emu)
    contacts = [DEMO_CONTACT_REPLIES, DEMO_CONTACT_PHOTO, DEMO_CONTACT_STOPS]
    for number in contacts:
        assert api.send_sms("Hello from the demo", to=[number]).status_code == 200
    inbound = {"direction": "Inbound"}
    before = len(api.get(STORE, params=inbound).json()["records"])
    emu.advance(emu.config.delivered_after + DEMO_CONTACT_DELAY)
    answers = api.get(STORE, params=inbound).json()["records"][: len(contacts)]
    assert len(api.get(STORE, params=inbound).json()["records"]) == before + len(contacts)
    by_contact = {r["from"]["phoneNumber"]: r for r in answers}
    assert by_contact[DEMO_CONTACT_REPLIES]["subject"] == (
        "Thanks! Got your message: Hello from the demo"
    )
    photo = by_contact[DEMO_CONTACT_PHOTO]["attachments"]
    assert [a["type"] for a in photo] == ["Text", "MmsAttachment"]
    assert photo[1]["size"] <= 20_000
    assert by_contact[DEMO_CONTACT_STOPS]["subject"] == "STOP"
    assert emu.opted_out(DEMO_NUMBER_SMS_MMS, DEMO_CONTACT_STOPS)
    blocked = api.send_sms("Are you sure?", to=[DEMO_CONTACT_STOPS]).json()["id"]
    emu.advance(60)
    body = api.get(f"{STORE}/{blocked}").json()
    assert body["messageStatus"] == "SendingFailed"
    assert body["deliveryErrorCode"] == "SMS-RC-413"


def test_the_demo_app_accepts_the_local_portal_callback(demo, emu):
    world, _ = demo
    assert world.app.client_secret == DEMO_CLIENT_SECRET
    code = emu.authorize_code(DEMO_CLIENT_ID, DEMO_REDIRECT_URIS[0], world.second.id)
    answer = requests.post(
        f"{emu.base_url}/restapi/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": DEMO_REDIRECT_URIS[0],
        },
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        timeout=10,
    )
    assert answer.json()["owner_id"] == str(world.second.id)


def test_serve_forever_runs_until_stopped():
    stop = threading.Event()
    started: list = []

    def ready(emu):
        started.append(emu.base_url)

    thread = threading.Thread(
        target=serve_forever,
        kwargs={"host": "127.0.0.1", "port": 0, "ready": ready, "stop_event": stop},
        daemon=True,
    )
    thread.start()
    try:
        for _ in range(200):
            if started:
                break
            threading.Event().wait(0.01)
        health = requests.get(f"{started[0]}/_emulator/health", timeout=5).json()
        assert health["ok"] is True
        world = requests.get(f"{started[0]}/_emulator/world", timeout=5).json()
        assert world["apps"][0]["client_id"] == DEMO_CLIENT_ID
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()


def test_the_module_runs_standalone_without_django():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    process = subprocess.Popen(
        [sys.executable, "-m", "messaging.ringcentral.emulator", "--port", "0"],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stderr.readline()
        base_url = line.strip().rsplit(" ", 1)[-1]
        assert base_url.startswith("http://127.0.0.1:")
        assert requests.get(f"{base_url}/_emulator/health", timeout=5).json()["ok"] is True
        assert "django" not in requests.get(f"{base_url}/_emulator/world", timeout=5).text
    finally:
        process.terminate()
        process.wait(timeout=5)
    assert process.returncode == 0
