"""Contacts in a browser: import a CSV with problems, download the problem rows, fix them and
import them again; then pick contacts and a tag on the compose page, see who the tag stands
for, and queue.

A real Celery worker runs the import (and sends); RingCentral is the emulator
(tests/e2e/conftest.py).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from messaging.core.phones import format_number
from messaging.models import Contact, Membership, OutboundMessage
from messaging.ringcentral.emulator.demo import DEMO_NUMBER_SMS_MMS
from tests.conftest import make_user

pytestmark = pytest.mark.e2e

WAIT = 40_000

PEOPLE = (
    "Name,Phone,Email,Tags,Opted out\n"
    "Ann Lee,(650) 555-0101,ann@example.com,patients,no\n"
    "Bob Roe,650.555.0102,,staff,yes\n"
    "Cy Twig,555-12,,patients,\n"
    "Dee Fox,,dee@example.com,,\n"
    "Ann Lee,+1 650 555 0101,,vip,\n"
)


def test_import_with_problems_fix_and_reimport_then_compose_to_a_tag(
    page, sign_in, backend, rc_world, link_ringcentral, tmp_path
):
    owner = make_user("olga@example.com")
    sign_in(page, owner)
    page.goto("/dashboard/")
    backend.start()
    link_ringcentral(page)
    team = Membership.objects.get(user=owner, team__is_personal=True).team

    # 1. Upload a CSV: the columns are guessed and the first rows shown before anything starts.
    people = tmp_path / "people.csv"
    people.write_text(PEOPLE)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Contacts").click()
    page.get_by_role("link", name="Import").click()
    page.get_by_label("File").set_input_files(str(people))
    page.get_by_role("button", name="Upload").click()
    preview = page.locator(".import-preview")
    expect(preview).to_contain_text("Bob Roe")
    expect(page.get_by_label("Phone")).to_have_value("number")
    expect(page.get_by_label("Opted out")).to_have_value("opted_out")
    page.get_by_role("button", name="Import").click()

    # 2. The progress bar runs to the end; the problems are listed and downloadable.
    progress = page.locator("#import-progress")
    expect(progress).to_contain_text("Imported", timeout=WAIT)
    expect(page.locator("#refused-rows")).to_contain_text("Row 4")
    expect(page.locator("#refused-rows")).to_contain_text("Row 5: Missing phone number")
    with page.expect_download() as download:
        page.locator("#problems-link").click()
    problems = tmp_path / "problems.csv"
    download.value.save_as(problems)
    text = problems.read_text(encoding="utf-8-sig")
    assert "Cy Twig" in text and "Dee Fox" in text and "Import problem" in text
    assert Contact.objects.filter(team=team).count() == 2

    # 3. Fix the two refused rows in the downloaded file and import it again.
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(
        text.replace("555-12", "650-555-0103").replace("Dee Fox,,", "Dee Fox,650-555-0104,"),
        encoding="utf-8",
    )
    page.goto("/contacts/import/")
    page.get_by_label("File").set_input_files(str(fixed))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".import-preview")).to_contain_text("Cy Twig")
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-progress")).to_contain_text("Imported", timeout=WAIT)
    expect(page.locator("#import-progress")).to_contain_text("0 rows not imported")
    page.goto("/contacts/")
    table = page.locator(".contacts-table")
    for name in ("Ann Lee", "Bob Roe", "Cy Twig", "Dee Fox"):
        expect(table).to_contain_text(name)

    # 4. Bob was marked opted out: his page says so, with where it came from.
    table.get_by_role("link", name="Bob Roe").click()
    expect(page.locator(".contact-number")).to_contain_text("Opted out")
    expect(page.locator(".contact-number")).to_contain_text("Imported from people.csv")

    # 5. Compose: a contact by name and a tag from "Add from contacts".
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Compose").click()
    expect(page.locator("#compose-form.js-enhanced")).to_be_visible()
    sender = page.get_by_label("From", exact=True)
    sender.select_option(
        sender.locator("option", has_text=format_number(DEMO_NUMBER_SMS_MMS)).get_attribute("value")
    )
    picker = page.get_by_label("Add from contacts")
    picker.fill("Dee")
    page.locator(".contact-picker-choice", has_text="Dee Fox").click()
    picker.fill("pati")
    page.locator(".contact-picker-choice", has_text="Everyone tagged “patients”").click()
    to = page.get_by_label("To", exact=True)
    expect(to).to_have_value(re.compile(r"\+16505550104\s+tag:patients"))
    page.get_by_label("Message", exact=True).fill("The clinic is closed on Friday.")
    expect(page.locator("#recipients-preview")).to_contain_text("Dee Fox")
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="Queue message").click()

    # 6. The tag is shown as the people it stands for; nothing is queued until the second press.
    expansion = page.locator("#tag-expansion")
    expect(expansion).to_contain_text("Everyone tagged “patients”")
    for name in ("Ann Lee", "Cy Twig"):
        expect(expansion).to_contain_text(name)
    expect(expansion).not_to_contain_text("Bob Roe")
    assert not OutboundMessage.objects.filter(team=team).exists()
    expect(to).to_have_value(re.compile(r"650-555-0103"))
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="Queue message").click()
    page.wait_for_url(re.compile(r"/messages/"))
    queued = OutboundMessage.objects.filter(team=team)
    assert sorted(r.phone_number for m in queued for r in m.recipients.all()) == [
        "+16505550101",
        "+16505550103",
        "+16505550104",
    ]
