"""Outgoing webhooks and the audit log in a browser: a team admin adds an endpoint, copies its
secret from the page, sends a test event that a real Celery worker signs and delivers to a local
receiver, sees the attempt in the endpoint's log, then finds it all in the team's audit log.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect
from standardwebhooks import Webhook

from messaging.hooks import delivery, endpoints, events
from messaging.models import Membership, WebhookAttempt, WebhookDelivery
from tests import test_hooks
from tests.conftest import make_user
from tests.e2e import test_accessibility as accessibility

pytestmark = pytest.mark.e2e

WAIT = 40_000
receiver = test_hooks.receiver  # a local HTTP receiver (private addresses allowed here)


def test_an_admin_adds_an_endpoint_sends_a_test_event_and_reads_the_audit_log(
    page, sign_in, backend, receiver, monkeypatch
):
    # The worker delivers to this machine too.
    monkeypatch.setenv("HOOKS_ALLOW_PRIVATE_NETWORKS", "true")
    owner = make_user("olga@example.com")
    sign_in(page, owner)
    backend.start()

    page.goto("/team/")
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_role("link", name="Add an endpoint").click()
    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("Description").fill("Booking tool")
    page.get_by_label("Message sent").check()
    page.get_by_label("Contact opted out").check()
    page.get_by_role("button", name="Add endpoint").click()
    secret_box = page.get_by_role("textbox", name="Secret")
    expect(secret_box).to_be_visible()
    secret = secret_box.input_value()
    assert secret.startswith("whsec_")

    page.get_by_role("button", name="Send test event").click()
    expect(page.get_by_text("A test event")).to_be_visible()
    deadline = time.monotonic() + WAIT / 1000
    while not receiver.requests and time.monotonic() < deadline:
        time.sleep(0.2)
    (request,) = receiver.requests
    headers, body, _ = request
    assert Webhook(secret).verify(body, headers)["type"] == "webhook.test"
    page.reload()
    expect(page.locator(".webhook-deliveries")).to_contain_text("HTTP 200", timeout=WAIT)
    # The secret is not shown again.
    expect(page.get_by_role("textbox", name="Secret")).to_have_count(0)

    page.goto("/team/")
    page.get_by_role("link", name="Audit log").click()
    log = page.locator(".audit-log")
    expect(log).to_contain_text("Webhook endpoint created")
    expect(log).to_contain_text("olga@example.com")
    page.get_by_label("Action").select_option("webhook.created")
    page.get_by_role("button", name="Show").click()
    expect(log.locator("tbody tr")).to_have_count(1)


def test_the_webhook_and_audit_pages_pass_the_accessibility_checks(
    page, sign_in, alice, team, settings
):
    settings.HOOKS_ALLOW_PRIVATE_NETWORKS = True
    admin = Membership.objects.select_related("team", "user").get(team=team, user=alice)
    endpoint, _ = endpoints.create(
        admin, url="http://127.0.0.1:9/hook", description="CRM", events=["message.sent"]
    )
    # A delivery in the log without handing it to a worker (no broker in this test).
    test = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id=delivery.new_event_id(),
        event_type="webhook.test",
        payload=events.envelope("webhook.test", {"endpoint_id": endpoint.pk}),
    )
    WebhookAttempt.objects.create(delivery=test, response_code=500, error="HTTP 500")
    sign_in(page, alice, team)
    for path in (
        "/team/webhooks/",
        "/team/webhooks/new/",
        f"/team/webhooks/{endpoint.pk}/",
        "/team/audit/",
    ):
        accessibility.check(page, path)
