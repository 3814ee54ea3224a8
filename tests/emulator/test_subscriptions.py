"""Webhook subscriptions: handshake, CRUD, renewal, expiry, deliveries and blacklisting."""

from __future__ import annotations

import socket
import time

import pytest

from messaging.ringcentral.emulator import EmulatorConfig

from .helpers import CLIENT_ID, error_code

SUBSCRIPTION = "/restapi/v1.0/subscription"
STORE_FILTER = "/restapi/v1.0/account/~/extension/~/message-store?type=SMS&direction=Outbound"


@pytest.fixture
def config() -> EmulatorConfig:
    # Long delays so only explicit ``advance`` calls change statuses (the ticker runs meanwhile).
    return EmulatorConfig(sent_after=10.0, delivered_after=20.0, webhook_timeout=1.0)


def subscribe(api, address, filters=None, token="s3cret-token", **extra):
    mode = {"transportType": "WebHook", "address": address}
    if token is not None:
        mode["verificationToken"] = token
    body = {"eventFilters": filters or [STORE_FILTER], "deliveryMode": mode, **extra}
    return api.post(SUBSCRIPTION, json=body)


def test_creation_runs_the_validation_handshake_first(api, ext, webhook):
    response = subscribe(api, webhook.url, expiresIn=3600)
    assert response.status_code == 200, response.text
    [handshake] = webhook.handshakes()
    assert handshake.headers["Validation-Token"]
    body = response.json()
    assert body["status"] == "Active"
    assert body["expiresIn"] == 3600
    assert body["expirationTime"].endswith("Z")
    assert body["eventFilters"] == [
        f"/restapi/v1.0/account/{ext.account_id}/extension/{ext.id}/message-store"
        "?type=SMS&direction=Outbound"
    ]
    assert body["deliveryMode"] == {
        "transportType": "WebHook",
        "encryption": False,
        "address": webhook.url,
    }
    assert "verificationToken" not in str(body)


def test_a_handshake_without_the_echoed_token_fails_with_sub_525(api, webhook):
    webhook.echo = False
    response = subscribe(api, webhook.url)
    assert response.status_code == 400
    assert error_code(response) == "SUB-525"
    assert api.get(SUBSCRIPTION).json()["records"] == []


def test_a_handshake_answered_with_non_200_fails_with_sub_525(api, webhook):
    webhook.status = 204
    assert error_code(subscribe(api, webhook.url)) == "SUB-525"


def test_a_handshake_slower_than_the_timeout_fails_with_sub_525(api, emu, webhook):
    emu.update_config(webhook_timeout=0.3)
    webhook.delay = 0.6
    assert error_code(subscribe(api, webhook.url)) == "SUB-525"


def test_a_handshake_answer_over_1024_bytes_fails_with_sub_525(api, webhook):
    webhook.padding = 1024
    assert error_code(subscribe(api, webhook.url)) == "SUB-525"


def test_an_unreachable_address_fails_with_sub_525(api):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert error_code(subscribe(api, f"http://127.0.0.1:{port}/hook")) == "SUB-525"


def test_an_unknown_event_filter_is_sub_508(api, webhook):
    response = subscribe(api, webhook.url, filters=["/restapi/v1.0/account/~/telepathy"])
    assert response.status_code == 400
    assert error_code(response) == "SUB-508"
    assert webhook.handshakes() == []


def test_a_filter_for_another_extension_is_sub_405(api, webhook, other_ext):
    filters = [f"/restapi/v1.0/account/~/extension/{other_ext.id}/message-store"]
    response = subscribe(api, webhook.url, filters=filters)
    assert response.status_code == 403
    assert error_code(response) == "SUB-405"


def test_a_transport_other_than_webhook_is_rejected(api, webhook):
    body = {
        "eventFilters": [STORE_FILTER],
        "deliveryMode": {"transportType": "PubNub", "address": webhook.url},
    }
    response = api.post(SUBSCRIPTION, json=body)
    assert response.status_code == 400
    assert error_code(response) == "CMN-101"


def test_expires_in_is_capped_at_ten_years(api, webhook):
    assert subscribe(api, webhook.url, expiresIn=315360000).status_code == 200
    too_long = subscribe(api, webhook.url, expiresIn=315360001)
    assert too_long.status_code == 400


def test_the_default_lifetime_is_seven_days(api, webhook):
    assert subscribe(api, webhook.url).json()["expiresIn"] == 604800


def test_a_new_message_is_notified_with_the_verification_token(api, emu, ext, webhook):
    subscription = subscribe(api, webhook.url).json()
    message_id = api.send_sms().json()["id"]
    assert emu.wait_for_deliveries()
    [notification] = webhook.notifications()
    assert notification.headers["Verification-Token"] == "s3cret-token"
    assert notification.headers["Content-Type"] == "application/json"
    payload = notification.json()
    assert payload["uuid"]
    assert payload["event"] == subscription["eventFilters"][0]
    assert payload["subscriptionId"] == subscription["id"]
    assert payload["ownerId"] == str(ext.id)
    assert payload["timestamp"].endswith("Z")
    assert payload["body"]["extensionId"] == str(ext.id)
    assert payload["body"]["lastUpdated"].endswith("Z")
    assert payload["body"]["changes"] == [
        {"type": "SMS", "newCount": 1, "updatedCount": 0, "newMessageIds": [message_id]}
    ]


def test_without_a_verification_token_no_header_is_sent(api, emu, webhook):
    subscribe(api, webhook.url, token=None)
    api.send_sms()
    assert emu.wait_for_deliveries()
    assert "Verification-Token" not in webhook.notifications()[0].headers


def test_status_changes_are_notified_when_the_clock_makes_them_due(api, emu, webhook):
    subscribe(api, webhook.url)
    api.send_sms()
    emu.advance(10)
    emu.tick()
    assert emu.wait_for_deliveries()
    changes = [n.json()["body"]["changes"][0] for n in webhook.notifications()]
    assert changes[1] == {"type": "SMS", "newCount": 0, "updatedCount": 1, "newMessageIds": []}
    emu.tick()
    assert emu.wait_for_deliveries()
    assert len(webhook.notifications()) == 2


def test_an_inbound_only_filter_gets_no_outbound_notifications(api, emu, webhook):
    filters = ["/restapi/v1.0/account/~/extension/~/message-store?direction=Inbound"]
    subscribe(api, webhook.url, filters=filters)
    api.send_sms()
    assert emu.wait_for_deliveries()
    assert webhook.notifications() == []


def test_get_list_and_delete(api, webhook):
    created = subscribe(api, webhook.url).json()
    assert api.get(f"{SUBSCRIPTION}/{created['id']}").json()["id"] == created["id"]
    assert [r["id"] for r in api.get(SUBSCRIPTION).json()["records"]] == [created["id"]]
    assert api.delete(f"{SUBSCRIPTION}/{created['id']}").status_code == 204
    gone = api.get(f"{SUBSCRIPTION}/{created['id']}")
    assert gone.status_code == 404
    assert api.get(SUBSCRIPTION).json()["records"] == []


def test_renew_restores_the_full_lifetime(api, emu, webhook):
    created = subscribe(api, webhook.url, expiresIn=1000).json()
    emu.advance(400)
    assert api.get(f"{SUBSCRIPTION}/{created['id']}").json()["expiresIn"] == 600
    renewed = api.post(f"{SUBSCRIPTION}/{created['id']}/renew")
    assert renewed.status_code == 200
    assert renewed.json()["expiresIn"] == 1000


def test_put_replaces_filters_and_renews(api, emu, webhook):
    created = subscribe(api, webhook.url, expiresIn=1000).json()
    emu.advance(400)
    new_filter = "/restapi/v1.0/account/~/extension/~/message-store"
    updated = api.put(
        f"{SUBSCRIPTION}/{created['id']}", json={"eventFilters": [new_filter], "expiresIn": 2000}
    )
    assert updated.status_code == 200
    assert updated.json()["expiresIn"] == 2000
    assert updated.json()["eventFilters"][0].endswith("/message-store")


def test_an_expired_subscription_is_sub_507_and_gets_nothing(api, emu, ext, app, webhook):
    created = subscribe(api, webhook.url, expiresIn=60).json()
    emu.advance(61)
    api.token = emu.issue_tokens(CLIENT_ID, ext.id)["access_token"]
    response = api.get(f"{SUBSCRIPTION}/{created['id']}")
    assert response.status_code == 404
    assert error_code(response) == "SUB-507"
    api.send_sms()
    assert emu.wait_for_deliveries()
    assert webhook.notifications() == []


def test_repeated_failed_deliveries_blacklist_the_subscription(api, emu, webhook):
    created = subscribe(api, webhook.url).json()
    webhook.status = 500
    for _ in range(3):
        api.send_sms()
    assert emu.wait_for_deliveries()
    body = api.get(f"{SUBSCRIPTION}/{created['id']}").json()
    assert body["status"] == "Blacklisted"
    assert body["blacklistedData"]["blacklistedAt"].endswith("Z")
    assert body["blacklistedData"]["reason"]
    webhook.status = 200
    api.send_sms()
    assert emu.wait_for_deliveries()
    assert len(webhook.notifications()) == 3
    assert [d.ok for d in emu.deliveries] == [False, False, False]


def test_a_successful_delivery_resets_the_failure_count(api, emu, webhook):
    created = subscribe(api, webhook.url).json()
    for status in (500, 500, 200, 500, 500):
        webhook.status = status
        api.send_sms()
        assert emu.wait_for_deliveries()
    assert api.get(f"{SUBSCRIPTION}/{created['id']}").json()["status"] == "Active"


def test_the_thirty_first_subscription_is_sub_505(api, webhook):
    for _ in range(30):
        assert subscribe(api, webhook.url).status_code == 200
    response = subscribe(api, webhook.url)
    assert response.status_code == 403
    assert error_code(response) == "SUB-505"


@pytest.mark.parametrize(
    "config", [EmulatorConfig(sent_after=0.2, delivered_after=0.4, tick_interval=0.1)]
)
def test_the_background_ticker_emits_due_notifications_without_tick(api, emu, webhook):
    subscribe(api, webhook.url)
    api.send_sms()
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline and len(webhook.notifications()) < 3:
        time.sleep(0.05)
    changes = [n.json()["body"]["changes"][0] for n in webhook.notifications()]
    assert [c["newCount"] for c in changes] == [1, 0, 0]
    assert [c["updatedCount"] for c in changes] == [0, 1, 1]
