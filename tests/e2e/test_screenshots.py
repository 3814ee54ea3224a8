"""The README's screenshots, taken from the running app: `SCREENSHOTS=1 make e2e`
(or `SCREENSHOTS=1 .venv/bin/python -m pytest tests/e2e/test_screenshots.py`) rewrites
docs/screenshots/*.png. Skipped otherwise, so ordinary runs never touch the repository.

The messages are written on the compose page and then moved along by the outbox's own state
machine, with the delivery reports the demo recipients produce (emulator/demo.py).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import expect

from messaging.core.phones import format_number
from messaging.models import OutboundMessage
from messaging.outbox import states as outbox
from messaging.ringcentral.emulator.demo import (
    DEMO_NUMBER_SMS_MMS,
    DEMO_RECIPIENT_DELIVERED,
    DEMO_RECIPIENT_LANDLINE,
    DEMO_RECIPIENT_OPTED_OUT,
)
from tests import media_samples as samples
from tests.factories import make_connection, make_message, make_number
from tests.test_compose import sent  # noqa: F401 - fixture: records the enqueue, sends nothing

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.environ.get("SCREENSHOTS") != "1", reason="set SCREENSHOTS=1"),
]

OUT = Path(django_settings.BASE_DIR) / "docs" / "screenshots"
VIEWPORT = {"width": 1100, "height": 760}


def accept(message, rc_id: str):
    claimed, attempt = outbox.claim(message.pk)
    outbox.record_success(claimed, attempt, outbox.Accepted(rc_message_id=rc_id))


def report(message, number: str, status: str, code: str = ""):
    outbox.apply_delivery_report(message, [outbox.DeliveryReport(number, status, code)])


def shoot(page, name: str, full_page: bool = False):
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=full_page)


def test_screenshots_for_the_readme(
    page,
    sign_in,
    alice,
    team,
    journey_media,
    settings,
    sent,  # noqa: F811
):
    settings.DEMO_MODE = False  # the pictures show the portal as an office runs it
    page.set_viewport_size(VIEWPORT)
    connection = make_connection(
        team, alice, shared=True, extension_name="Front desk", company_name="Acme Dental"
    )
    main = make_number(connection, DEMO_NUMBER_SMS_MMS, label="Main line")

    # Older messages, in each state the outbox can show.
    delivered = make_message(main, alice, to=(DEMO_RECIPIENT_DELIVERED,), text="See you at 3!")
    accept(delivered, "880001")
    report(delivered, DEMO_RECIPIENT_DELIVERED, "Delivered")
    landline = make_message(main, alice, to=(DEMO_RECIPIENT_LANDLINE,), text="Your invoice")
    accept(landline, "880002")
    report(landline, DEMO_RECIPIENT_LANDLINE, "DeliveryFailed", "SMS-CAR-411")
    opted_out = make_message(
        main, alice, to=(DEMO_RECIPIENT_OPTED_OUT,), text="Reminder: cleaning on Tuesday at 10."
    )
    accept(opted_out, "880003")
    report(opted_out, DEMO_RECIPIENT_OPTED_OUT, "SendingFailed", "SMS-RC-413")

    # A new message with photos, on the compose page.
    sign_in(page, alice, team)
    page.goto("/messages/compose/")
    expect(page.locator("#compose-form.js-enhanced")).to_be_visible()
    sender = page.get_by_label("From", exact=True)
    sender.select_option(
        sender.locator("option", has_text=format_number(DEMO_NUMBER_SMS_MMS)).get_attribute("value")
    )
    page.get_by_label("Attach files", exact=True).set_input_files(
        [
            {
                "name": "waiting-room.jpg",
                "mimeType": "image/jpeg",
                "buffer": samples.photo(1600, 1200),
            },
            {"name": "IMG_2041.HEIC", "mimeType": "image/heic", "buffer": samples.heic(800, 600)},
        ]
    )
    expect(page.locator("#attachment-list li[data-state=done]")).to_have_count(2, timeout=30_000)
    page.get_by_label("To", exact=True).fill("(650) 555-0199, (650) 555-0177")
    page.get_by_label("Message", exact=True).fill(
        "Hi! Here are the photos from today's visit. Call us with any questions."
    )
    expect(page.locator("#recipients-preview")).to_be_visible()
    page.wait_for_load_state("networkidle")
    page.evaluate("document.activeElement.blur()")
    shoot(page, "compose", full_page=True)

    page.get_by_role("button", name="Queue message").click()
    page.wait_for_url(re.compile(r"/messages/(\d+/)?$"))
    new = list(OutboundMessage.objects.filter(pk__in=sent).order_by("pk"))
    assert len(new) == 2
    accept(new[0], "880004")
    report(new[0], DEMO_RECIPIENT_DELIVERED, "Delivered")
    accept(new[1], "880005")

    page.goto("/messages/")
    expect(page.locator("table.outbox-table tbody tr")).to_have_count(5)
    shoot(page, "outbox")

    page.goto(f"/messages/{opted_out.pk}/")
    expect(page.locator(".message-problem")).to_be_visible()
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 1000})
    shoot(page, "message")
