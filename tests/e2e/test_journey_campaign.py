"""A campaign in a browser: upload a CSV, read the pre-flight page, start, pause, resume, watch
the progress move without reloading, and download the per-recipient report.

A real Celery worker sends; RingCentral is the emulator (tests/e2e/conftest.py); the feeder
runs on the journey's beat ticker. 60 recipients at RingCentral's 40 sends a minute: the
campaign lasts long enough to be paused while it waits for the next minute's budget.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from messaging.campaigns import running
from messaging.core.phones import format_number
from messaging.models import Campaign, CampaignStatus, Membership
from messaging.ringcentral.emulator.demo import DEMO_NUMBER_SMS_MMS
from tests.conftest import make_user

pytestmark = pytest.mark.e2e

WAIT = 150_000

LIST = (
    "Name,Mobile,Appointment\n"
    + "".join(f"Person {i},(650) 555-{3000 + i},Monday {9 + i % 8}:00\n" for i in range(60))
    + "Again,650-555-3000,Monday\nNobody,12,Monday\n"
)


def test_upload_preflight_start_pause_resume_and_download_the_report(
    page, sign_in, backend, rc_world, link_ringcentral, tmp_path, monkeypatch
):
    # The feeder runs on the ticker, where the journey's queue is the default.
    monkeypatch.setattr(running, "_feed_soon", None)
    owner = make_user("olga@example.com")
    sign_in(page, owner)
    page.goto("/dashboard/")
    backend.start()
    link_ringcentral(page)
    team = Membership.objects.get(user=owner, team__is_personal=True).team

    # 1. A new campaign from a CSV: its columns are merge fields.
    people = tmp_path / "people.csv"
    people.write_text(LIST)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()
    page.get_by_label("Name", exact=True).fill("Monday reminders")
    page.get_by_label(re.compile(re.escape(format_number(DEMO_NUMBER_SMS_MMS)))).check()
    page.get_by_label("An uploaded list (CSV or Excel)").check()
    page.get_by_label("List (CSV or Excel)", exact=True).set_input_files(str(people))
    page.get_by_label("Text", exact=True).fill("Hi {first_name}, see you {appointment}.")
    page.get_by_role("button", name="Check the campaign").click()

    # 2. The pre-flight page: counts, the problems listed, the duration; nothing sent yet.
    preflight = page.locator("#preflight")
    expect(preflight.locator('[data-preflight="total"]')).to_have_text("62")
    expect(preflight.locator('[data-preflight="to_send"]')).to_have_text("60")
    expect(preflight.locator('[data-preflight="duplicate"]')).to_have_text("1")
    expect(preflight.locator('[data-preflight="invalid"]')).to_have_text("1")
    expect(preflight.locator('[data-preflight="segments"]')).to_have_text("60")
    expect(preflight.locator('[data-preflight="duration"]')).to_contain_text("40 messages a minute")
    preflight.get_by_text("Duplicate number: 1").click()
    expect(preflight).to_contain_text("Row 62")
    campaign = Campaign.objects.get(team=team)
    assert campaign.status == CampaignStatus.DRAFT

    # 3. Start: the progress moves without a reload.
    page.get_by_role("button", name="Start the campaign").click()
    progress = page.locator("#campaign-progress")
    expect(progress.locator('[data-field="status_label"]')).to_have_text("Running")
    expect(
        progress.locator('[data-field="sent"], [data-field="delivered"]').first
    ).not_to_have_text("0", timeout=WAIT)

    # 4. Pause, then resume.
    page.get_by_role("button", name="Pause").click()
    expect(progress.locator('[data-field="status_label"]')).to_have_text("Paused")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED
    page.get_by_role("button", name="Resume").click()
    expect(progress.locator('[data-field="status_label"]')).to_have_text("Running")

    # 5. It finishes by itself: the page follows it there, counts and all.
    expect(progress.locator('[data-field="status_label"]')).to_have_text("Done", timeout=WAIT)
    expect(progress.locator('[data-field="waiting"]')).to_have_text("0")
    expect(progress.locator('[data-field="skipped"]')).to_have_text("2")

    # 6. The report: one row per recipient of the list, with what became of it.
    with page.expect_download() as download:
        page.locator("#report-link").click()
    saved = tmp_path / "report.csv"
    download.value.save_as(saved)
    text = saved.read_text(encoding="utf-8-sig")
    lines = text.strip().splitlines()
    assert len(lines) == 63
    assert "Hi Person, see you Monday 9:00." in text and "Delivered" in text
    assert "Skipped: duplicate number" in text and "Skipped: invalid number" in text
