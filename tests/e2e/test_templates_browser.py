"""Templates and scheduled sends in a real Chromium: a template with a merge field and its live
preview, picked in compose with one contact (merged, with its SMS segments), scheduled for later
in the browser's time zone, found in the Scheduled folder and canceled there."""

import pytest
from playwright.sync_api import expect

from messaging.models import (
    Contact,
    ContactNumber,
    MessageStatus,
    MessageTemplate,
    OutboundMessage,
)
from messaging.outbox import scheduling
from tests.factories import make_connection, make_number

pytestmark = pytest.mark.e2e

ANN = "+16505550111"


@pytest.fixture
def bob_ready(bob, team, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media", "base_url": None},
        },
    }
    make_number(make_connection(team, bob), "+16505550100")
    ann = Contact.objects.create(team=team, name="Ann Lee", company="Acme Dental")
    ContactNumber.objects.create(contact=ann, team=team, number=ANN)
    return bob


def test_a_template_is_made_picked_in_compose_scheduled_and_canceled(
    page, sign_in, bob_ready, team
):
    sign_in(page, bob_ready, team)

    # A template with a field, previewed with a real contact while it is typed.
    page.goto("/templates/new/")
    page.get_by_label("Name").fill("Reminder")
    page.get_by_label("Message").fill("Hi {first_name}, see you at {company}")
    page.get_by_label("Merged with").select_option(label="Ann Lee")
    expect(page.locator("#preview-text")).to_have_text("Hi Ann, see you at Acme Dental")
    expect(page.locator("#preview-length")).to_contain_text("GSM-7 · 1 SMS segment")
    page.get_by_label("Message").fill("Hi {first_name} 😀, see you at {company}")
    expect(page.locator("#preview-length")).to_contain_text("UCS-2")
    page.get_by_role("button", name="Save template").click()
    expect(page.get_by_text("Template “Reminder” saved.")).to_be_visible()
    template = MessageTemplate.objects.get()

    # Picked in compose for one contact: merged, with its length.
    page.goto("/messages/compose/")
    page.get_by_label("To", exact=True).fill(ANN)
    page.get_by_label("Start from a template").select_option(str(template.pk))
    page.get_by_role("button", name="Use template").click()
    expect(page.get_by_label("Message", exact=True)).to_have_value(
        "Hi Ann 😀, see you at Acme Dental"
    )
    picked = page.locator("#template-picked")
    expect(picked).to_contain_text("Merged with Ann Lee.")
    expect(picked).to_contain_text("UCS-2 · 1 SMS segment")

    # Scheduled for later, in the browser's time zone.
    page.get_by_label("Send later").check()
    page.get_by_label("Send at").fill("2030-07-01T09:15")
    page.get_by_role("button", name="Queue message").click()
    expect(page.locator(".flash-success")).to_contain_text("Scheduled for Mon 01 Jul 2030, 09:15")
    message = OutboundMessage.objects.get()
    assert message.status == MessageStatus.SCHEDULED
    assert scheduling.input_value(message.scheduled_for, message.scheduled_zone) == (
        "2030-07-01T09:15"
    )

    # In the Scheduled folder, and canceled from its page.
    page.goto("/messages/?folder=scheduled")
    row = page.locator("tr", has_text="Hi Ann")
    expect(row).to_contain_text("Scheduled")
    expect(row).to_contain_text("Mon 01 Jul 2030, 09:15")
    row.get_by_role("link").first.click()
    page.get_by_role("button", name="Cancel sending").click()
    expect(page.get_by_text("Canceled. The message was not sent and will not be.")).to_be_visible()
    message.refresh_from_db()
    assert message.status == MessageStatus.CANCELED
