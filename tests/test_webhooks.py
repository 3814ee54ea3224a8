"""Webhooks: the subscription's life at RingCentral (created through the real Validation-Token
handshake against a live server, renewed before it lapses, re-created when blacklisted or gone,
deleted on disconnect) and the endpoint (handshake answer, constant-time token check, 403/400,
a quick 200 and a read of the connection's messages afterwards)."""

import http.client
import json
import socket
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.utils import timezone

from messaging.links import connections
from messaging.models import MessageEvent, MessageStatus, OutboundMessage, WebhookStatus
from messaging.models import WebhookSubscription as Subscription
from messaging.tracking import subscriptions as tracking
from messaging.tracking.tasks import refresh_after_webhook
from tests.rc_fixtures import journal
from tests.tracking_helpers import fresh_limits, link_sender, send  # noqa: F401 - fixture
from tests.worker import celery_worker, wait_for

pytestmark = pytest.mark.usefixtures("fresh_limits")

WEBHOOK = "/ringcentral/webhook/"
RECIPIENT = "+16505550201"
DAY = 24 * 3600


def notification(sub, *, updated=1, new=0, new_ids=()):
    """A delivery body shaped like RingCentral's message-store event."""
    return {
        "uuid": "0b5f4d3c-6a44-4f44-9d0a-3f1f2f7c0c11",
        "event": "/restapi/v1.0/account/1/extension/2/message-store?type=SMS&direction=Outbound",
        "timestamp": "2026-03-02T09:00:00.000Z",
        "subscriptionId": sub.rc_subscription_id,
        "ownerId": "2",
        "body": {
            "changes": [
                {
                    "type": "SMS",
                    "newCount": new,
                    "updatedCount": updated,
                    "newMessageIds": list(new_ids),
                }
            ]
        },
    }


# --- with RingCentral's subscription service ------------------------------------------------------


@pytest.fixture
def reachable(emulator, live_server, team, alice, rc_user, settings):
    """Alice's linked connection, and the portal reachable at the live server's address."""
    settings.TRACKING_MIN_READ_INTERVAL = 0
    emulator.update_config(refresh_token_ttl=30 * DAY)  # the clock moves by days here
    connection, number = link_sender(emulator, team, alice, rc_user)
    settings.PUBLIC_BASE_URL = live_server.url
    return connection, number


def remote_subscriptions(emulator):
    return list(emulator.subscriptions.subscriptions.values())


def test_creating_the_subscription_passes_ringcentrals_handshake_over_a_socket(
    emulator, reachable, live_server, rc_user
):
    connection, _ = reachable

    assert tracking.maintain_subscription(connection.pk) == "created"

    sub = Subscription.objects.get(connection=connection)
    [remote] = remote_subscriptions(emulator)
    assert sub.status == WebhookStatus.ACTIVE
    assert sub.rc_subscription_id == remote.id
    assert remote.status == "Active"
    assert remote.address == f"{live_server.url}{WEBHOOK}"
    store = f"/restapi/v1.0/account/{rc_user.account_id}/extension/{rc_user.id}/message-store"
    assert remote.event_filters == [
        f"{store}?type=SMS&direction=Outbound",
        f"{store}/instant?type=SMS",
        f"/restapi/v2/accounts/{rc_user.account_id}/sms/consents",
    ]
    # The per-subscription secret went to RingCentral and is stored only encrypted.
    assert remote.verification_token == sub.verification_token
    assert sub.verification_token not in sub.verification_token_ciphertext
    assert remote.expires_at - emulator.now() == pytest.approx(7 * DAY, abs=5)
    assert sub.expires_at - timezone.now() == pytest.approx(timedelta(days=7), abs=timedelta(60))
    [create] = [e for e in journal(emulator, "/restapi/v1.0/subscription") if e.method == "POST"]
    assert create.status == 200


def test_the_handshake_answer_echoes_the_token_quickly_in_a_tiny_json_reply(reachable, live_server):
    parts = urlsplit(live_server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=3)
    conn.request("POST", WEBHOOK, body=b"", headers={"Validation-Token": "c2lnbmVkLXRva2Vu-42"})
    answer = conn.getresponse()
    body = answer.read()
    headers = answer.getheaders()
    conn.close()

    assert answer.status == 200
    assert answer.getheader("Validation-Token") == "c2lnbmVkLXRva2Vu-42"
    assert answer.getheader("Content-Type") == "application/json"
    assert len(body) <= 2
    # RingCentral measures status line, headers and body together against 1024 bytes.
    size = len(f"HTTP/1.1 {answer.status} {answer.reason}\r\n") + 2 + len(body)
    size += sum(len(k) + len(v) + 4 for k, v in headers)
    assert size < 700, headers


def test_a_verified_delivery_from_ringcentral_updates_the_message(
    emulator, reachable, settings, alice
):
    connection, number = reachable
    assert tracking.maintain_subscription(connection.pk) == "created"
    env = {
        "DEMO_EMULATOR_URL": emulator.base_url,
        "PUBLIC_BASE_URL": settings.PUBLIC_BASE_URL,
        "TRACKING_MIN_READ_INTERVAL": "0",
    }
    with celery_worker(concurrency=1, **env):
        message = send(emulator, number, alice, [RECIPIENT])
        # The emulator reports Sent, then Delivered, to the live server; the endpoint queues a
        # read, the worker reads the message store.
        wait_for(
            lambda: OutboundMessage.objects.get(pk=message.pk).status == MessageStatus.DELIVERED,
            timeout=30,
            message="the webhook-triggered read",
        )
    delivered = [d for d in emulator.deliveries if d.payload["body"]["changes"][0]["updatedCount"]]
    assert delivered and all(d.ok and d.status == 200 for d in emulator.deliveries)
    sub = Subscription.objects.get(connection=connection)
    assert sub.last_delivery_at is not None


def test_the_subscription_is_renewed_a_day_before_it_lapses(emulator, reachable):
    connection, _ = reachable
    tracking.maintain_subscription(connection.pk)
    [remote] = remote_subscriptions(emulator)
    created_expiry = remote.expires_at

    emulator.advance(5 * DAY)
    assert tracking.maintain_subscription(connection.pk, now=timezone.now() + timedelta(5)) == (
        "checked"
    )
    assert remote.expires_at == created_expiry

    emulator.advance(1.5 * DAY)
    later = timezone.now() + timedelta(6.5)
    assert tracking.maintain_subscription(connection.pk, now=later) == "renewed"

    assert remote.expires_at == pytest.approx(emulator.now() + 7 * DAY, abs=5)
    sub = Subscription.objects.get(connection=connection)
    assert sub.renewed_at == later and sub.status == WebhookStatus.ACTIVE
    assert [e.path for e in journal(emulator, "/renew") if e.status == 200] == [
        f"/restapi/v1.0/subscription/{remote.id}/renew"
    ]


def test_a_subscription_ringcentral_forgot_is_created_again(emulator, reachable):
    connection, _ = reachable
    tracking.maintain_subscription(connection.pk)
    old = Subscription.objects.get(connection=connection).rc_subscription_id

    emulator.advance(7 * DAY + 60)  # never renewed: expired at RingCentral (404 SUB-507)
    assert tracking.maintain_subscription(connection.pk, verify=True) == "created"

    sub = Subscription.objects.get(connection=connection)
    assert sub.status == WebhookStatus.ACTIVE and sub.rc_subscription_id != old
    assert emulator.subscriptions.subscriptions[sub.rc_subscription_id].status == "Active"


def test_a_blacklisted_subscription_is_replaced_with_a_new_token(emulator, reachable, alice):
    connection, number = reachable
    tracking.maintain_subscription(connection.pk)
    sub = Subscription.objects.get(connection=connection)
    old_id, old_token = sub.rc_subscription_id, sub.verification_token
    # Our copy of the token no longer matches: every delivery is refused (403) and RingCentral
    # blacklists the subscription after three failures in a row.
    sub.verification_token = f"{sub.pk}.not-the-token-ringcentral-has"
    sub.save()
    emulator.update_config(rate_limits={"Medium": 1000})
    for i in range(3):
        send(emulator, number, alice, [f"+1650555{3100 + i}"])
    emulator.wait_for_deliveries()
    assert emulator.subscriptions.subscriptions[old_id].status == "Blacklisted"
    assert all(d.status == 403 for d in emulator.deliveries)

    later = timezone.now() + timedelta(hours=2)  # nothing heard for a while: ask RingCentral
    assert tracking.maintain_subscription(connection.pk, now=later) == "created"

    sub.refresh_from_db()
    assert sub.status == WebhookStatus.ACTIVE
    assert sub.rc_subscription_id != old_id
    assert sub.verification_token not in (old_token, f"{sub.pk}.not-the-token-ringcentral-has")
    [remote] = remote_subscriptions(emulator)  # the blacklisted one was deleted
    assert remote.id == sub.rc_subscription_id and remote.status == "Active"
    assert remote.verification_token == sub.verification_token


def test_disconnecting_deletes_the_subscription_at_ringcentral(emulator, reachable):
    connection, _ = reachable
    tracking.maintain_subscription(connection.pk)
    assert remote_subscriptions(emulator)

    connections.disconnect(connection)

    assert remote_subscriptions(emulator) == []
    assert not Subscription.objects.filter(connection=connection).exists()


def test_the_renewal_task_creates_missing_subscriptions_and_is_off_without_a_public_url(
    emulator, reachable, settings
):
    connection, _ = reachable
    from messaging.tracking.tasks import renew_subscriptions

    assert renew_subscriptions() == {"created": 1}
    assert renew_subscriptions() == {"ok": 1}
    settings.PUBLIC_BASE_URL = ""
    assert renew_subscriptions() == {"off": 1}


# --- the endpoint on its own -------------------------------------------------------------------


@pytest.fixture
def subscribed(emulator, team, alice, rc_user, settings):
    """An active subscription row (as after creation) for alice's connection."""
    settings.TRACKING_MIN_READ_INTERVAL = 0
    connection, number = link_sender(emulator, team, alice, rc_user)
    sub = Subscription.objects.create(connection=connection, status=WebhookStatus.PENDING)
    sub.verification_token = tracking.new_verification_token(sub.pk)
    sub.rc_subscription_id = "6a1e4b6e-5b8d-4d1a-8f1e-3c3e2a1d9b10"
    sub.status = WebhookStatus.ACTIVE
    sub.expires_at = timezone.now() + timedelta(days=7)
    sub.save()
    return sub, number


def deliver(client, sub, body, **headers):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(WEBHOOK, data=data, content_type="application/json", headers=headers)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Verification-Token": "wrong"},
        {"Verification-Token": "1.wrong-secret-of-the-right-length-0123456789abc"},
        {"Validation-Token": "garbage", "Verification-Token": "garbage"},
    ],
    ids=["missing", "malformed", "wrong", "both-wrong"],
)
def test_a_delivery_without_the_right_token_is_refused_and_changes_nothing(
    client, subscribed, alice, emulator, headers, django_capture_on_commit_callbacks
):
    sub, number = subscribed
    message = send(emulator, number, alice, [RECIPIENT])
    events = MessageEvent.objects.count()
    if "1.wrong" in headers.get("Verification-Token", ""):
        headers = {"Verification-Token": f"{sub.pk}.{'x' * 43}"}

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        answer = deliver(client, sub, notification(sub), **headers)

    assert answer.status_code == 403
    assert callbacks == []
    sub.refresh_from_db()
    assert sub.last_delivery_at is None and sub.refresh_requested_at is None
    assert OutboundMessage.objects.get(pk=message.pk).status == MessageStatus.SENT
    assert MessageEvent.objects.count() == events


def test_a_delivery_that_is_not_a_json_object_is_a_400(client, subscribed):
    sub, _ = subscribed
    for body in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        answer = deliver(client, sub, body, **{"Verification-Token": sub.verification_token})
        assert answer.status_code == 400
    sub.refresh_from_db()
    assert sub.last_delivery_at is None


def test_a_valid_delivery_is_answered_at_once_and_a_sync_brings_the_report(
    client, subscribed, alice, emulator, django_capture_on_commit_callbacks
):
    from messaging.inbox.tasks import sync_inbox

    sub, number = subscribed
    sync_inbox(sub.connection_id)  # the link's first sync
    message = send(emulator, number, alice, [RECIPIENT])
    emulator.advance(5)  # RingCentral has the delivery receipt by now
    syncs_before = len(journal(emulator, "/message-sync"))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        answer = deliver(
            client, sub, notification(sub), **{"Verification-Token": sub.verification_token}
        )

    # Answered before anything was read: the sync waits in the queue, asked for at once.
    assert answer.status_code == 200
    assert answer.json() == {}
    assert [c.__qualname__ for c in callbacks] == ["after_commit.<locals>.hand_over"]
    assert len(journal(emulator, "/message-sync")) == syncs_before
    assert OutboundMessage.objects.get(pk=message.pk).status == MessageStatus.SENT

    sync_inbox(sub.connection_id)  # what the worker runs

    assert OutboundMessage.objects.get(pk=message.pk).status == MessageStatus.DELIVERED
    sub.refresh_from_db()
    assert sub.last_delivery_at is not None
    assert mail.outbox == []


def test_without_a_working_sync_the_delivery_is_read_at_once(
    client, subscribed, alice, emulator, django_capture_on_commit_callbacks
):
    from messaging.models import InboxSync

    sub, number = subscribed
    InboxSync.objects.update_or_create(connection_id=sub.connection_id, defaults={"failures": 2})
    message = send(emulator, number, alice, [RECIPIENT])
    emulator.advance(5)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        deliver(client, sub, notification(sub), **{"Verification-Token": sub.verification_token})
    assert len(callbacks) == 1
    refresh_after_webhook(sub.connection_id)  # what the worker runs, with no settling delay
    assert OutboundMessage.objects.get(pk=message.pk).status == MessageStatus.DELIVERED
    sub.refresh_from_db()
    assert sub.refresh_requested_at is None


def test_the_token_is_also_accepted_in_the_validation_token_header(client, subscribed):
    sub, _ = subscribed
    answer = deliver(client, sub, notification(sub), **{"Validation-Token": sub.verification_token})
    assert answer.status_code == 200


def test_deliveries_for_unknown_subscriptions_or_messages_are_still_answered_200(
    client, subscribed, django_capture_on_commit_callbacks
):
    sub, _ = subscribed
    body = notification(sub, updated=0, new=1, new_ids=[999999])
    body["subscriptionId"] = "no-such-subscription"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        answer = deliver(client, sub, body, **{"Verification-Token": sub.verification_token})
    assert answer.status_code == 200
    # A new message (one sent from a desk phone, say) is fetched by a message sync.
    assert [c.__qualname__ for c in callbacks] == ["after_commit.<locals>.hand_over"]


def test_a_burst_of_deliveries_queues_one_read(
    client, subscribed, django_capture_on_commit_callbacks
):
    sub, _ = subscribed
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        for _ in range(5):
            answer = deliver(
                client, sub, notification(sub), **{"Verification-Token": sub.verification_token}
            )
            assert answer.status_code == 200
    assert len(callbacks) == 1


def test_linking_queues_the_subscription_only_when_the_portal_is_reachable(
    emulator, team, alice, rc_user, settings, django_capture_on_commit_callbacks
):
    from tests.rc_fixtures import link_directly

    def subscribing(callbacks):
        # A link also asks the inbox for a sync; only tracking's work is counted here.
        return [c for c in callbacks if c.__qualname__.startswith("subscribe_new_link")]

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        link_directly(emulator, team, alice, rc_user)
    assert subscribing(callbacks) == []
    settings.PUBLIC_BASE_URL = "https://portal.example"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        link_directly(emulator, team, alice, rc_user)
    assert len(subscribing(callbacks)) == 1


def test_a_refused_creation_is_tried_again_after_a_backoff(
    emulator, team, alice, rc_user, settings
):
    connection, _ = link_sender(emulator, team, alice, rc_user)
    with socket.socket() as probe:  # a port nobody listens on: the handshake cannot succeed
        probe.bind(("127.0.0.1", 0))
        settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{probe.getsockname()[1]}"
    now = timezone.now()

    assert tracking.maintain_subscription(connection.pk, now=now) == "failed"
    sub = Subscription.objects.get(connection=connection)
    assert sub.status == WebhookStatus.FAILED and sub.failures == 1
    assert "SUB-525" in sub.last_error
    assert sub.retry_at == now + timedelta(minutes=5)
    assert tracking.maintain_subscription(connection.pk, now=now + timedelta(minutes=4)) == (
        "waiting"
    )
    assert tracking.maintain_subscription(connection.pk, now=now + timedelta(minutes=6)) == (
        "failed"
    )
    sub.refresh_from_db()
    assert sub.failures == 2 and sub.retry_at == now + timedelta(minutes=21)
    assert remote_subscriptions(emulator) == []


def test_a_creation_in_progress_elsewhere_is_left_alone(emulator, reachable):
    connection, _ = reachable
    Subscription.objects.create(connection=connection, status=WebhookStatus.PENDING)

    assert tracking.maintain_subscription(connection.pk) == "waiting"
    assert remote_subscriptions(emulator) == []
    # A creation abandoned by a dead worker is taken over after a while.
    later = timezone.now() + timedelta(minutes=6)
    assert tracking.maintain_subscription(connection.pk, now=later) == "created"


def test_a_subscription_made_without_the_instant_messages_filter_is_made_again(
    emulator, reachable, rc_user
):
    connection, _ = reachable
    assert tracking.maintain_subscription(connection.pk) == "created"
    # As a subscription made before the inbox existed is stored.
    Subscription.objects.filter(connection=connection).update(event_filters=[])
    assert tracking.maintain_subscription(connection.pk) == "created"
    active = [s for s in remote_subscriptions(emulator) if s.status == "Active"]
    assert any("/instant" in f for s in active for f in s.event_filters)


def test_in_demo_mode_the_emulator_delivers_to_the_local_server(settings):
    settings.PUBLIC_BASE_URL = ""
    settings.DEMO_PORTAL_URL = "http://127.0.0.1:8000"
    assert tracking.webhook_address() == "http://127.0.0.1:8000/ringcentral/webhook/"
    settings.PUBLIC_BASE_URL = "https://sms.example.com"
    assert tracking.webhook_address() == "https://sms.example.com/ringcentral/webhook/"
    settings.PUBLIC_BASE_URL = settings.DEMO_PORTAL_URL = ""
    assert tracking.webhook_address() == ""
