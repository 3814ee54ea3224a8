"""A newcomer's first message, end to end: sign up, confirm the address from the email, sign in,
link RingCentral on its sign-in page, write a text with three photos (one HEIC, one too large
to send as it is), queue it, and watch the outbox follow it to "Delivered" without reloading.

RingCentral is the emulator (demo world), reached over real sockets by the live server and by a
real Celery worker; see tests/e2e/conftest.py.
"""

from __future__ import annotations

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from messaging.core.phones import format_number
from messaging.models import MessageStatus
from messaging.ringcentral import limits
from messaging.ringcentral.emulator.demo import DEMO_RECIPIENT_DELIVERED
from tests import media_samples as samples
from tests.conftest import PASSWORD

pytestmark = pytest.mark.e2e

EMAIL = "nora@example.com"
# The emulator reports delivery 3 s after a send; the first delivery check follows 10 s after
# acceptance (messaging/tracking/polling.py), and the page asks for news every 4 s.
DELIVERY_WAIT = 40_000


def confirmation_link(address: str) -> str:
    sent = [m for m in mail.outbox if address in m.to]
    assert sent, f"no email to {address}"
    found = re.search(r"https?://\S+/accounts/confirm-email/\S+/", sent[-1].body)
    assert found, sent[-1].body
    return found.group(0)


def sign_up_and_confirm(page, email: str):
    """Create an account through the forms and confirm it from the emailed link."""
    page.goto("/")
    page.get_by_role("main").get_by_role("link", name="Create an account").click()
    page.get_by_label("Email:", exact=True).fill(email)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_label("Password (again):", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign Up").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Verify")

    page.goto(confirmation_link(email))
    page.get_by_role("button", name="Confirm").click()


def sign_in_through_form(page, email: str):
    page.goto("/accounts/login/")
    page.get_by_label("Email:", exact=True).fill(email)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(re.compile(r"/dashboard/$"))


def test_a_new_user_signs_up_links_ringcentral_and_sees_a_photo_message_delivered(
    page, backend, link_ringcentral, send_text, rc_world
):
    sign_up_and_confirm(page, EMAIL)
    # Confirming in the browser that signed up signs the new user in; sign out and in again
    # through the form, the way they will every day.
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator(".flash")).to_contain_text("You have signed out.")
    sign_in_through_form(page, EMAIL)
    expect(page.get_by_text(EMAIL, exact=True)).to_be_visible()
    # allauth names the person by their email, not by the username it made up.
    expect(page.locator(".flash")).to_contain_text(f"Successfully signed in as {EMAIL}")

    link_ringcentral(page)

    big = samples.photo(4000, 3000)
    assert len(big) > limits.MAX_ATTACHMENTS_BYTES  # must be reduced to be sent at all
    message = send_text(
        page,
        DEMO_RECIPIENT_DELIVERED,
        "Your order is ready: photos attached.",
        files=[
            {"name": "front.png", "mimeType": "image/png", "buffer": samples.png(800, 600)},
            {"name": "IMG_0042.HEIC", "mimeType": "image/heic", "buffer": samples.heic(640, 480)},
            {"name": "counter.jpg", "mimeType": "image/jpeg", "buffer": big},
        ],
    )
    flash = page.locator(".flash")
    expect(flash).to_contain_text(
        f"Photos reduced to fit RingCentral's {limits.format_size(limits.MAX_ATTACHMENTS_BYTES)}"
    )
    expect(flash).to_contain_text("counter.jpg")
    files = list(message.attachments.order_by("position"))
    assert [f.original_name for f in files] == ["front.png", "IMG_0042.jpg", "counter.jpg"]
    assert files[1].content_type == "image/jpeg" and files[1].was_converted
    assert files[2].original_size == len(big)
    assert sum(f.size for f in files) <= limits.MAX_ATTACHMENTS_BYTES

    # No worker is running yet: the outbox shows the message queued.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Outbox").click()
    page.evaluate("window.__sameDocument = true")
    badge = page.locator(f'[data-status-for="{message.pk}"]')
    expect(badge).to_have_text("Queued")

    backend.start()
    expect(badge).to_have_text("Sent", timeout=DELIVERY_WAIT)
    expect(badge).to_have_text("Delivered", timeout=DELIVERY_WAIT)
    expect(badge).to_have_attribute("data-final", "true")
    expect(page.locator("[data-outbox-announcer]")).to_contain_text("is now Delivered")
    assert page.evaluate("window.__sameDocument") is True  # followed live, never reloaded

    # The message page tells the same story; RingCentral got the three files.
    page.get_by_role("link", name=re.compile("Your order is ready")).click()
    expect(page.locator(f'[data-status-for="{message.pk}"]')).to_have_text("Delivered")
    recipients = page.locator("table.message-recipients")
    expect(recipients).to_contain_text(format_number(DEMO_RECIPIENT_DELIVERED))
    expect(recipients).to_contain_text("Delivered")
    expect(page.locator(".message-attachments li")).to_have_count(3)

    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    stored = rc_world.messages.get(int(message.rc_message_id))
    assert stored is not None and len(stored.attachments) == 3
