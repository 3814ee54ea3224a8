"""A campaign started from a template in a real Chromium: the picker fills the text, the
missing-field policy and the fallback text, the template's photo goes into the campaign, and
the pre-flight page shows the merged messages' length; the picker also works without
JavaScript."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from playwright.sync_api import expect

from messaging.compose.picker import add_files
from messaging.core.phones import format_number
from messaging.models import Campaign, Contact, ContactNumber, MessageTemplate, Tag
from tests import media_samples as samples
from tests.factories import make_connection, make_number

pytestmark = pytest.mark.e2e

OURS = "+16505550100"


@pytest.fixture
def bob_ready(bob, team, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media", "base_url": None},
        },
    }
    make_number(make_connection(team, bob), OURS)
    patients = Tag.objects.create(team=team, name="patients")
    for name, phone, company in (
        ("Ann Lee", "+16505550111", "Acme Dental"),
        ("Bo Ray", "+16505550122", ""),
    ):
        contact = Contact.objects.create(team=team, name=name, company=company)
        ContactNumber.objects.create(contact=contact, team=team, number=phone)
        contact.tags.add(patients)
    template = MessageTemplate.objects.create(
        team=team,
        name="Directions",
        text="Hi {first_name}, {company} is expecting you.",
        missing_policy="fallback",
        fallback="our office",
    )
    png = SimpleUploadedFile("map.png", samples.png(), content_type="image/png")
    assert add_files(template, [png]) == []
    return bob


def pick_directions(page):
    page.goto("/campaigns/new/")
    page.get_by_label("Template", exact=True).select_option(label="Directions (team)")
    page.get_by_role("button", name="Use template").click()
    expect(page.locator("#template-picked")).to_contain_text("Template “Directions”.")
    expect(page.get_by_label("Text", exact=True)).to_have_value(
        "Hi {first_name}, {company} is expecting you."
    )
    expect(page.get_by_label("Use the fallback text")).to_be_checked()
    expect(page.get_by_role("textbox", name="Fallback text")).to_have_value("our office")
    expect(page.locator("#template-picked")).to_contain_text("map.png")
    expect(page.locator("#campaign-text-length")).to_contain_text("GSM-7 · 1 SMS segment")


def test_a_template_picked_on_the_campaign_page_fills_it_and_brings_its_photo(
    page, sign_in, bob_ready, team
):
    sign_in(page, bob_ready, team)
    pick_directions(page)
    page.get_by_label("Name", exact=True).fill("Visit")
    page.get_by_label(re.compile(re.escape(format_number(OURS)))).check()
    page.get_by_label("Contacts with a tag").check()
    page.get_by_label("Tag", exact=True).select_option("patients")
    page.get_by_role("button", name="Check the campaign").click()

    preflight = page.locator("#preflight")
    expect(preflight.locator('[data-preflight="to_send"]')).to_have_text("2")
    expect(preflight.locator('[data-preflight="length"]')).to_have_text(
        "From 35 UTF-16 units · GSM-7 · 1 SMS segment to 37 UTF-16 units · GSM-7 · 1 SMS segment"
    )
    expect(page.get_by_text("Files sent to everyone: map.png")).to_be_visible()
    campaign = Campaign.objects.get()
    assert sorted(r.text for r in campaign.recipients.all()) == [
        "Hi Ann, Acme Dental is expecting you.",
        "Hi Bo, our office is expecting you.",
    ]


def test_the_campaign_template_picker_works_without_javascript(
    page_without_js, sign_in, bob_ready, team
):
    sign_in(page_without_js, bob_ready, team)
    pick_directions(page_without_js)
