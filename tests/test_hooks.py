"""Outgoing webhooks: endpoints on their pages, signed deliveries to a real local receiver made
by the delivery task (run in this process, the way a worker runs it), retries with backoff,
an endpoint disabled after a day of failures, SSRF refusals, and each event by its cause.

Hand-offs to a worker are recorded instead of queued (`handed`); a test runs the task for
them. Other rooms' tasks go to a queue no worker reads (test_send_task's `_isolated`).
"""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks import Webhook

from messaging.hooks import addresses, delivery, endpoints, events, tasks
from messaging.inbox import storing
from messaging.models import (
    TEST_EVENT,
    Conversation,
    DeliveryStatus,
    HookEvent,
    Membership,
    MessageSource,
    SenderNumber,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from messaging.ringcentral.records import parse_message
from messaging.tracking import polling as tracking_polling
from tests import test_send_task as sending
from tests import tracking_helpers
from tests.factories import make_connection, make_message, make_number
from tests.test_inbox import CONTACT, OURS, inbound

# The send tests' fixtures: a link to the emulator with its numbers, an SMS, isolated tasks.
_isolated, linked, sms, send = sending._isolated, sending.linked, sending.sms, sending.send
fresh_limits = tracking_helpers.fresh_limits

README = Path(__file__).resolve().parents[1] / "README.md"


class Receiver:
    """A small HTTP server that records what it is sent and answers with `codes` in turn."""

    def __init__(self):
        self.requests: list[tuple[dict, bytes, str]] = []
        self.codes: list[int] = []
        self.url = ""

    def bodies(self):
        return [json.loads(body) for _, body, _ in self.requests]


@pytest.fixture
def receiver(settings):
    settings.HOOKS_ALLOW_PRIVATE_NETWORKS = True
    found = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {key.lower(): value for key, value in self.headers.items()}
            found.requests.append((headers, body, self.path))
            code = found.codes.pop(0) if found.codes else 200
            self.send_response(code)
            if 300 <= code < 400:
                self.send_header("location", "http://127.0.0.1:1/elsewhere")
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{server.server_port}/hooks/mmsportal?source=test"
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture
def handed(monkeypatch):
    """Delivery ids handed to a worker, in order (the task is run by `run_handed`)."""
    ids: list[int] = []
    monkeypatch.setattr(tasks, "_hand_off", lambda pk, countdown=0: ids.append(pk))
    return ids


def run_handed(handed: list[int]) -> None:
    while handed:
        tasks.deliver_webhook(handed.pop(0))


def membership(team, user) -> Membership:
    return Membership.objects.select_related("team", "user").get(team=team, user=user)


@pytest.fixture
def endpoint(team, alice, receiver):
    found, secret = endpoints.create(
        membership(team, alice), url=receiver.url, description="CRM", events=HookEvent.values
    )
    found.plain_secret = secret
    return found


def verified(secret: str, request) -> dict:
    headers, body, _ = request
    return Webhook(secret).verify(body, headers)


def make_due(found: WebhookDelivery) -> None:
    WebhookDelivery.objects.filter(pk=found.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


# --- pages ------------------------------------------------------------------------------------


def test_an_admin_registers_an_endpoint_sees_the_secret_once_and_a_test_event_verifies(
    alice_client, team, receiver, handed, django_capture_on_commit_callbacks
):
    answer = alice_client.post(
        "/team/webhooks/new/",
        {"url": receiver.url, "description": "Booking tool", "events": ["message.sent"]},
    )
    assert answer.status_code == 201
    secret = answer.context["secret"]
    assert secret.startswith("whsec_") and secret in answer.content.decode()
    found = WebhookEndpoint.objects.get(team=team)
    assert secret not in found.secret_ciphertext and found.secret == secret
    assert secret not in alice_client.get(f"/team/webhooks/{found.pk}/").content.decode()
    assert secret not in alice_client.get("/team/webhooks/").content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        assert alice_client.post(f"/team/webhooks/{found.pk}/test/").status_code == 302
    run_handed(handed)
    (request,) = receiver.requests
    payload = verified(secret, request)
    assert payload["type"] == TEST_EVENT and payload["data"]["endpoint_id"] == found.pk
    headers, _, path = request
    assert path == "/hooks/mmsportal?source=test"
    assert headers["webhook-id"].startswith("msg_")
    assert headers["host"] == receiver.url.split("/")[2]
    attempt = WebhookAttempt.objects.get()
    assert attempt.succeeded and attempt.response_code == 200 and attempt.next_attempt_at is None
    page = alice_client.get(f"/team/webhooks/{found.pk}/").content.decode()
    assert "HTTP 200" in page and headers["webhook-id"] in page


def test_rotating_the_secret_shows_a_new_one_that_signs_from_then_on(
    alice_client, endpoint, receiver, handed, django_capture_on_commit_callbacks
):
    answer = alice_client.post(f"/team/webhooks/{endpoint.pk}/rotate/")
    new = answer.context["secret"]
    assert new != endpoint.plain_secret
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(f"/team/webhooks/{endpoint.pk}/test/")
    run_handed(handed)
    verified(new, receiver.requests[0])
    with pytest.raises(Exception, match="signature"):
        verified(endpoint.plain_secret, receiver.requests[0])


def test_redelivery_sends_the_same_event_again(
    alice_client, endpoint, receiver, handed, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(f"/team/webhooks/{endpoint.pk}/test/")
    run_handed(handed)
    found = WebhookDelivery.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        url = f"/team/webhooks/{endpoint.pk}/deliveries/{found.pk}/redeliver/"
        assert alice_client.post(url).status_code == 302
    run_handed(handed)
    first, second = receiver.requests
    assert first[0]["webhook-id"] == second[0]["webhook-id"] == found.event_id
    assert verified(endpoint.plain_secret, second)["type"] == TEST_EVENT
    assert WebhookAttempt.objects.filter(delivery=found, succeeded=True).count() == 2


def test_disable_enable_and_delete(alice_client, endpoint, team):
    alice_client.post(f"/team/webhooks/{endpoint.pk}/toggle/")
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert endpoints.events_of(team.pk) == frozenset()
    alice_client.post(f"/team/webhooks/{endpoint.pk}/toggle/")
    endpoint.refresh_from_db()
    assert endpoint.is_active and "message.sent" in endpoints.events_of(team.pk)
    assert alice_client.post(f"/team/webhooks/{endpoint.pk}/delete/").status_code == 302
    assert not WebhookEndpoint.objects.exists()
    assert endpoints.events_of(team.pk) == frozenset()


def test_only_team_admins_reach_the_pages(bob_client, victor_client, charlie_client, endpoint):
    pages = ["/team/webhooks/", "/team/webhooks/new/", f"/team/webhooks/{endpoint.pk}/"]
    for url in pages:
        assert bob_client.get(url).status_code == 403
        assert victor_client.get(url).status_code == 403
    # charlie's current team is his own: Acme's endpoint does not exist for him.
    assert charlie_client.get(pages[2]).status_code == 404
    assert charlie_client.post(f"/team/webhooks/{endpoint.pk}/delete/").status_code == 404
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_a_form_without_events_or_with_a_bad_url_is_a_400(alice_client, receiver):
    answer = alice_client.post("/team/webhooks/new/", {"url": receiver.url})
    assert answer.status_code == 400 and "Pick at least one event" in answer.content.decode()
    for url in ["ftp://example.com/", "not a url", "http://user:pw@example.com/"]:
        answer = alice_client.post("/team/webhooks/new/", {"url": url, "events": ["message.sent"]})
        assert answer.status_code == 400, url
    assert not WebhookEndpoint.objects.exists()


# --- SSRF -------------------------------------------------------------------------------------

REFUSED = [
    "http://127.0.0.1/hook",
    "http://10.1.2.3/hook",
    "http://192.168.1.10/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://224.0.0.1/",
    "http://0.0.0.0/",
    "http://100.64.0.1/",
    "http://localhost:8000/hook",
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_addresses_are_refused_when_saved(alice_client, url):
    answer = alice_client.post("/team/webhooks/new/", {"url": url, "events": ["message.sent"]})
    assert answer.status_code == 400
    assert "public addresses" in answer.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_a_public_address_passes_the_check():
    addresses.check("https://93.184.215.14/hooks")
    addresses.check("http://[2606:4700:4700::1111]/")


def test_private_addresses_are_refused_at_delivery_too(
    settings, team, alice, receiver, handed, django_capture_on_commit_callbacks
):
    port = receiver.url.split(":")[2].split("/")[0]
    for url in [receiver.url, f"http://localhost:{port}/hook"]:
        found, _ = endpoints.create(
            membership(team, alice), url=url, description="", events=["message.sent"]
        )
        settings.HOOKS_ALLOW_PRIVATE_NETWORKS = False
        with django_capture_on_commit_callbacks(execute=True):
            test = events.send_test(found)
        run_handed(handed)
        test.refresh_from_db()
        assert test.status == DeliveryStatus.PENDING and test.next_attempt_at is not None
        assert "public addresses" in test.last_error
        settings.HOOKS_ALLOW_PRIVATE_NETWORKS = True
    assert receiver.requests == []


def test_redirects_are_not_followed(endpoint, receiver, handed, django_capture_on_commit_callbacks):
    receiver.codes = [302]
    with django_capture_on_commit_callbacks(execute=True):
        test = events.send_test(endpoint)
    run_handed(handed)
    test.refresh_from_db()
    assert len(receiver.requests) == 1
    assert test.status == DeliveryStatus.PENDING and test.last_response_code == 302


# --- retries, backoff, disabling --------------------------------------------------------------


def test_a_failed_delivery_is_retried_after_the_backoff_then_succeeds(
    endpoint, receiver, handed, django_capture_on_commit_callbacks
):
    receiver.codes = [500, 200]
    with django_capture_on_commit_callbacks(execute=True):
        test = events.send_test(endpoint)
    before = timezone.now()
    with django_capture_on_commit_callbacks() as later:
        run_handed(handed)
    assert len(later) == 1  # the retry is handed off after commit, with its countdown
    test.refresh_from_db()
    assert test.status == DeliveryStatus.PENDING and test.last_response_code == 500
    wait = (test.next_attempt_at - before).total_seconds()
    assert delivery.RETRY_SCHEDULE[0] - 1 <= wait <= delivery.RETRY_SCHEDULE[0] + 1
    assert tasks.deliver_webhook(test.pk) is None  # not due yet: nothing is sent
    assert len(receiver.requests) == 1
    make_due(test)
    tasks.deliver_webhook(test.pk)
    test.refresh_from_db()
    assert test.status == DeliveryStatus.SUCCEEDED
    tries = list(test.tries.order_by("at", "pk").values_list("response_code", "succeeded"))
    assert tries == [(500, False), (200, True)]
    first, second = receiver.requests
    assert first[0]["webhook-id"] == second[0]["webhook-id"]
    verified(endpoint.plain_secret, second)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_the_backoff_grows_and_the_delivery_fails_after_the_last_retry(
    endpoint, receiver, handed, django_capture_on_commit_callbacks
):
    receiver.codes = [503] * 20
    with django_capture_on_commit_callbacks(execute=True):
        test = events.send_test(endpoint)
    waits = []
    for _ in range(len(delivery.RETRY_SCHEDULE) + 1):
        make_due(test)
        waits.append(tasks.deliver_webhook(test.pk))
    assert waits == [*delivery.RETRY_SCHEDULE, None]
    test.refresh_from_db()
    assert test.status == DeliveryStatus.FAILED
    assert test.tries.count() == len(delivery.RETRY_SCHEDULE) + 1
    assert test.tries.exclude(next_attempt_at=None).count() == len(delivery.RETRY_SCHEDULE)


def test_an_endpoint_failing_for_a_day_is_disabled_and_its_admins_emailed(
    endpoint, receiver, handed, dana, bob, team, django_capture_on_commit_callbacks
):
    receiver.codes = [500, 500]
    with django_capture_on_commit_callbacks(execute=True):
        first = events.send_test(endpoint)
        second = events.send_test(endpoint)
    handed.clear()  # run by hand below
    tasks.deliver_webhook(first.pk)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None and endpoint.is_active
    # A day later (simulated): the first failure was 24 h and a minute ago.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        failing_since=timezone.now() - timedelta(hours=24, minutes=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.deliver_webhook(second.pk) is None
    endpoint.refresh_from_db()
    assert not endpoint.is_active and "a day" in endpoint.disabled_reason
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).count() == 0
    (email,) = mail.outbox
    assert sorted(email.to) == ["alice@example.com", "dana@example.com"]
    assert endpoint.url in email.body and "disabled" in email.subject
    assert endpoints.events_of(team.pk) == frozenset()
    # Nothing more goes to a disabled endpoint.
    with django_capture_on_commit_callbacks(execute=True):
        events.publish(team.pk, HookEvent.MESSAGE_SENT, {"message_id": 1})
    assert handed == [] and len(receiver.requests) == 2


def test_the_sweep_hands_off_due_deliveries(endpoint, handed):
    found = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id=delivery.new_event_id(),
        event_type=TEST_EVENT,
        payload={"type": TEST_EVENT},
        next_attempt_at=timezone.now() - timedelta(minutes=2),
    )
    WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id=delivery.new_event_id(),
        event_type=TEST_EVENT,
        payload={"type": TEST_EVENT},
        next_attempt_at=timezone.now() + timedelta(hours=1),
    )
    assert tasks.deliver_due_webhooks() == 1
    assert handed == [found.pk]


# --- events from their causes -----------------------------------------------------------------


def test_message_sent_through_the_emulator(
    team, alice, sms, receiver, handed, django_capture_on_commit_callbacks
):
    found, secret = endpoints.create(
        membership(team, alice), url=receiver.url, description="", events=["message.sent"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        send(sms)
    run_handed(handed)
    (request,) = receiver.requests
    payload = verified(secret, request)
    assert payload["type"] == "message.sent"
    data = payload["data"]
    assert data["message_id"] == sms.pk and data["status"] == "sent"
    assert data["to"] == ["+16505550181"] and data["ringcentral_message_id"]
    assert data["recipients"][0]["number"] == "+16505550181"


def test_message_failed_when_ringcentral_refuses_it(
    team, alice, linked, receiver, handed, django_capture_on_commit_callbacks
):
    found, secret = endpoints.create(
        membership(team, alice), url=receiver.url, description="", events=["message.failed"]
    )
    foreign = SenderNumber.objects.create(
        connection=linked, phone_number="+16505550199", can_sms=True, can_mms=True
    )
    message = make_message(foreign, alice, to=("+16505550181",), text="Hi")
    with django_capture_on_commit_callbacks(execute=True):
        assert send(message) == "failed"
    run_handed(handed)
    (request,) = receiver.requests
    data = verified(secret, request)["data"]
    assert data["message_id"] == message.pk and data["status"] == "failed"
    assert data["error_code"] == "MSG-245" and data["reason"]


def test_no_endpoint_for_the_event_means_no_work(
    team, alice, sms, receiver, handed, django_capture_on_commit_callbacks
):
    endpoints.create(
        membership(team, alice), url=receiver.url, description="", events=["message.received"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        send(sms)
    assert handed == [] and not WebhookDelivery.objects.exists()


def test_message_delivered_and_failed_from_ringcentrals_delivery_reports(
    emulator, team, alice, rc_user, settings, receiver, handed, fresh_limits,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    settings.TRACKING_MIN_READ_INTERVAL = 0
    _, number = tracking_helpers.link_sender(emulator, team, alice, rc_user)
    timeline = tracking_helpers.Timeline(emulator)
    found, secret = endpoints.create(
        membership(team, alice),
        url=receiver.url,
        description="",
        events=["message.delivered", "message.failed"],
    )
    emulator.set_recipient_behaviour("+16505550201", "delivered", delivered_after=3)
    emulator.set_recipient_behaviour(
        "+16505550202", "delivery_failed", error_code="SMS-CAR-411", delivered_after=3
    )
    with django_capture_on_commit_callbacks(execute=True):
        delivered = tracking_helpers.send(
            emulator, number, alice, ["+16505550201"], timeline=timeline
        )
        failed = tracking_helpers.send(emulator, number, alice, ["+16505550202"], timeline=timeline)
        tracking_polling.poll(now=timeline.at(10))
    run_handed(handed)
    by_type = {verified(secret, r)["type"]: verified(secret, r)["data"] for r in receiver.requests}
    assert set(by_type) == {"message.delivered", "message.failed"}
    assert by_type["message.delivered"]["message_id"] == delivered.pk
    assert by_type["message.delivered"]["status"] == "delivered"
    failure = by_type["message.failed"]
    assert failure["message_id"] == failed.pk and failure["status"] == "delivery_failed"
    assert failure["recipients"][0]["error_code"] == "SMS-CAR-411"
    assert "landline" in failure["reason"]


@pytest.fixture
def inbox_link(team, alice):
    connection = make_connection(team, alice, shared=True)
    make_number(connection, OURS)
    return connection


def test_message_received_and_conversation_assigned(
    team, alice, bob, bob_client, inbox_link, endpoint, receiver, handed,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    record = parse_message(inbound("Is my order ready?"))
    with django_capture_on_commit_callbacks(execute=True):
        storing.store_record(inbox_link, record, source=MessageSource.WEBHOOK)
        storing.store_record(inbox_link, record, source=MessageSource.SYNC)  # stored once
    run_handed(handed)
    (received,) = receiver.bodies()
    assert received["type"] == "message.received"
    assert received["data"]["from"] == CONTACT and received["data"]["to"] == [OURS]
    assert received["data"]["text"] == "Is my order ready?"
    conversation = Conversation.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        answer = bob_client.post(f"/inbox/{conversation.pk}/assign/", {"assignee": alice.pk})
        assert answer.status_code == 302
    run_handed(handed)
    assigned = receiver.bodies()[1]
    assert assigned["type"] == "conversation.assigned"
    assert assigned["data"]["assignee"] == {"id": alice.pk, "email": "alice@example.com"}
    assert assigned["data"]["assigned_by"] == "bob@example.com"
    assert assigned["data"]["contact_numbers"] == [CONTACT]
    for request in receiver.requests:
        verified(endpoint.plain_secret, request)


def test_contact_opted_out_from_the_consent_page(
    alice_client, endpoint, receiver, handed, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        answer = alice_client.post(
            "/consent/", {"number": "+16505550199", "action": "opt_out", "note": "asked"}
        )
        assert answer.status_code == 302
    run_handed(handed)
    (payload,) = receiver.bodies()
    assert payload["type"] == "contact.opted_out"
    assert payload["data"]["number"] == "+16505550199"
    assert payload["data"]["source"] == "manual" and payload["data"]["note"] == "asked"
    verified(endpoint.plain_secret, receiver.requests[0])


def test_campaign_finished_when_a_campaign_is_canceled(
    team, alice, endpoint, receiver, handed, django_capture_on_commit_callbacks
):
    from messaging.campaigns import creation, running
    from messaging.models import Contact, ContactNumber, Tag

    number = make_number(make_connection(team, alice, shared=True), OURS)
    tag = Tag.objects.create(team=team, name="spring")
    for n in range(3):
        contact = Contact.objects.create(team=team, name=f"Pat {n}")
        ContactNumber.objects.create(contact=contact, team=team, number=f"+1650555017{n}")
        contact.tags.add(tag)
    ask = creation.Request(
        name="Spring sale", sender_ids=[str(number.pk)], text="Hi {first_name}", tag="spring"
    )
    campaign = creation.create(membership(team, alice), ask)
    with django_capture_on_commit_callbacks(execute=True):
        running.start(campaign)
        running.cancel(campaign)
    run_handed(handed)
    (payload,) = [body for body in receiver.bodies() if body["type"] == "campaign.finished"]
    assert payload["data"]["campaign_id"] == campaign.pk
    assert payload["data"]["name"] == "Spring sale"
    assert payload["data"]["status"] == "canceled"


# --- README -----------------------------------------------------------------------------------


def test_the_readme_example_verifies_a_real_delivery(
    endpoint, receiver, handed, django_capture_on_commit_callbacks, capsys
):
    text = README.read_text()
    block = re.search(
        r"<!-- webhook-verify:begin -->\s*```python\n(.*?)```\s*<!-- webhook-verify:end -->",
        text,
        re.S,
    )
    assert block, "README: the webhook verification example is missing"
    with django_capture_on_commit_callbacks(execute=True):
        events.send_test(endpoint)
    run_handed(handed)
    headers, body, _ = receiver.requests[0]
    namespace = {}
    # The README's own code, run as a reader would paste it.
    exec(compile(block.group(1), "README.md", "exec"), namespace)  # noqa: S102
    event = namespace["verify"](endpoint.plain_secret, body, headers)
    assert event["type"] == TEST_EVENT
    with pytest.raises(Exception):  # noqa: B017 - any refusal will do
        namespace["verify"](endpoint.plain_secret, body + b" ", headers)
