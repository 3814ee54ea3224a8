"""Webhook deliveries for inbound texts: the instant-message event and message-store changes."""

from __future__ import annotations

import pytest

from messaging.ringcentral.emulator import EmulatorConfig

from .helpers import LOCAL_MMS, OTHER_RECIPIENT, RECIPIENT, STORE, control, subscribe

INSTANT = "/restapi/v1.0/account/~/extension/~/message-store/instant?type=SMS"
ALL_CHANGES = "/restapi/v1.0/account/~/extension/~/message-store"
PHOTO = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def config() -> EmulatorConfig:
    return EmulatorConfig(sent_after=10.0, delivered_after=20.0, webhook_timeout=1.0)


def events(webhook) -> list[dict]:
    return [n.json() for n in webhook.notifications()]


def test_an_inbound_text_is_delivered_whole_to_the_instant_filter(api, emu, ext, webhook):
    subscription = subscribe(api, webhook.url, [INSTANT]).json()
    message = emu.inbound(
        RECIPIENT, LOCAL_MMS, "Hello!", [("pic.png", "image/png", PHOTO)], also_to=[OTHER_RECIPIENT]
    )
    assert emu.wait_for_deliveries()
    [notification] = webhook.notifications()
    assert notification.headers["Verification-Token"] == "s3cret-token"
    assert notification.headers["Content-Type"] == "application/json"
    payload = notification.json()
    assert payload["event"] == (
        f"/restapi/v1.0/account/{ext.account_id}/extension/{ext.id}/message-store/instant?type=SMS"
    )
    assert payload["event"] == subscription["eventFilters"][0]
    assert payload["subscriptionId"] == subscription["id"]
    assert payload["ownerId"] == str(ext.id)
    assert payload["uuid"] and payload["timestamp"].endswith("Z")

    body = payload["body"]
    stored = api.get(f"{STORE}/{message.id}").json()
    # The event schema types the ids as strings; the rest is the stored record.
    assert body["id"] == str(message.id)
    assert body["conversationId"] == str(stored["conversationId"])
    assert body["conversation"] == stored["conversation"]
    assert body["ownerId"] == str(ext.id)
    assert body["eventType"] == "Create"
    for name in ("from", "to", "attachments", "subject", "creationTime", "lastModifiedTime"):
        assert body[name] == stored[name], name
    assert body["direction"] == "Inbound"
    assert body["messageStatus"] == "Received"
    assert body["readStatus"] == "Unread"
    assert body["type"] == "SMS"
    assert body["owner"]["extensionId"] == str(ext.id)
    assert [a["type"] for a in body["attachments"]] == ["Text", "MmsAttachment"]

    [delivery] = emu.deliveries
    assert delivery.ok and delivery.payload == payload


def test_an_outbound_send_gets_no_instant_event(api, emu, webhook):
    subscribe(api, webhook.url, [INSTANT])
    api.send_sms()
    emu.outbound_elsewhere(LOCAL_MMS, [RECIPIENT], "from the desk phone")
    assert emu.wait_for_deliveries()
    assert webhook.notifications() == []


def test_the_plain_message_store_filter_gets_changes_in_both_directions(api, emu, webhook):
    subscribe(api, webhook.url, [ALL_CHANGES])
    received = emu.inbound(RECIPIENT, LOCAL_MMS, "in").id
    sent = api.send_sms("out").json()["id"]
    assert emu.wait_for_deliveries()
    changes = [e["body"]["changes"][0]["newMessageIds"] for e in events(webhook)]
    assert changes == [[received], [sent]]


def test_direction_filters_take_only_their_direction(api, emu, webhook):
    outbound = "/restapi/v1.0/account/~/extension/~/message-store?type=SMS&direction=Outbound"
    inbound = "/restapi/v1.0/account/~/extension/~/message-store?direction=Inbound"
    subscribe(api, webhook.url, [outbound])
    emu.inbound(RECIPIENT, LOCAL_MMS, "in")
    assert emu.wait_for_deliveries()
    assert webhook.notifications() == []
    subscribe(api, webhook.url, [inbound])
    received = emu.inbound(RECIPIENT, LOCAL_MMS, "in again").id
    assert emu.wait_for_deliveries()
    [event] = events(webhook)
    assert event["event"].endswith("/message-store?direction=Inbound")
    assert event["body"]["changes"][0]["newMessageIds"] == [received]


def test_both_filters_in_one_subscription_get_one_event_each(api, emu, webhook):
    subscribe(api, webhook.url, [ALL_CHANGES, INSTANT])
    emu.inbound(RECIPIENT, LOCAL_MMS, "hi")
    assert emu.wait_for_deliveries()
    kinds = sorted("changes" in e["body"] for e in events(webhook))
    assert kinds == [False, True]


def test_failed_instant_deliveries_blacklist_the_subscription(api, emu, webhook):
    created = subscribe(api, webhook.url, [INSTANT]).json()
    webhook.status = 500
    for text in ("one", "two", "three"):
        emu.inbound(RECIPIENT, LOCAL_MMS, text)
    assert emu.wait_for_deliveries()
    body = api.get(f"/restapi/v1.0/subscription/{created['id']}").json()
    assert body["status"] == "Blacklisted"
    assert [d.ok for d in emu.deliveries] == [False, False, False]
    webhook.status = 200
    emu.inbound(RECIPIENT, LOCAL_MMS, "four")
    assert emu.wait_for_deliveries()
    assert len(emu.deliveries) == 3


def test_instant_deliveries_are_in_the_control_api(api, emu, webhook):
    subscribe(api, webhook.url, [INSTANT])
    emu.inbound(RECIPIENT, LOCAL_MMS, "hi")
    assert emu.wait_for_deliveries()
    records = control(emu, "GET", "deliveries").json()["records"]
    assert records[0]["payload"]["body"]["subject"] == "hi"
    assert records[0]["headers"]["Verification-Token"] == "s3cret-token"


def test_notifications_can_be_lost_or_sent_twice(api, emu, ext, webhook):
    subscribe(api, webhook.url, [INSTANT])
    emu.subscriptions.drop_next(1)
    emu.subscriptions.repeat_next(1)
    for text in ("first", "second", "third"):  # lost, sent twice, sent once
        emu.inbound(RECIPIENT, LOCAL_MMS, text)
    assert emu.wait_for_deliveries()
    assert [e["body"]["subject"] for e in events(webhook)] == ["second", "second", "third"]
