"""The operators' history console: a staff member signs in with password and authenticator code,
finds a message that needed two attempts (RingCentral answered 503 once), sees both attempts
on its page, and downloads the list as CSV with the message's row in it.

The message is sent by a real Celery worker to the emulator (tests/e2e/conftest.py).
"""

from __future__ import annotations

import csv
import re

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from playwright.sync_api import expect

from messaging.models import AttemptOutcome, MessageStatus
from messaging.ringcentral.emulator import Fault
from messaging.ringcentral.emulator.demo import DEMO_NUMBER_SMS_MMS, DEMO_RECIPIENT_DELIVERED
from tests.conftest import PASSWORD, make_user
from tests.e2e.conftest import _page
from tests.test_accounts import totp
from tests.worker import wait_for

pytestmark = pytest.mark.e2e

STAFF = "ops@example.com"


@pytest.fixture
def staff_page(browser, request, live_server):
    """The operator's own browser."""
    yield from _page(browser, request, base_url=live_server.url, accept_downloads=True)


@pytest.fixture
def operator(transactional_db, django_user_model):
    """A superuser with an authenticator app; returns (user, TOTP secret)."""
    user = django_user_model.objects.create_superuser("ops", STAFF, PASSWORD)
    EmailAddress.objects.create(user=user, email=STAFF, verified=True, primary=True)
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return user, secret


def test_the_console_lists_the_message_with_its_attempts_and_exports_it(
    page, staff_page, operator, sign_in, backend, rc_world, link_ringcentral, send_text, tmp_path
):
    sender = make_user("sam@example.com")
    sign_in(page, sender)
    page.goto("/dashboard/")
    link_ringcentral(page)
    backend.start()
    # RingCentral stumbles once (503 MSG-290); the worker tries again a second later.
    rc_world.inject(Fault("status", path_contains="/sms", status=503, error_code="MSG-290"))
    message = send_text(page, DEMO_RECIPIENT_DELIVERED, "Invoice 1042 is paid, thank you.")

    def sent():
        message.refresh_from_db()
        return message.status in (MessageStatus.SENT, MessageStatus.DELIVERED)

    wait_for(sent, timeout=30, message="the second attempt to be accepted")

    # Sign-in through the forms: password, then the authenticator's current code.
    _, secret = operator
    admin = staff_page
    admin.goto("/admin/")
    admin.get_by_label("Email:", exact=True).fill(STAFF)
    admin.get_by_label("Password:", exact=True).fill(PASSWORD)
    admin.get_by_role("button", name="Sign In").click()
    admin.get_by_label(re.compile("^(Authenticator )?code", re.I)).fill(totp(secret))
    admin.get_by_role("button", name=re.compile("Sign In|Verify|Continue", re.I)).click()
    expect(admin).to_have_url(re.compile(r"/admin/$"))
    expect(admin.get_by_role("button", name="Log out")).to_be_visible()

    admin.get_by_role("link", name=re.compile("^Outbound messages")).first.click()
    admin.get_by_role("textbox", name=re.compile("Search")).fill("555-0199")
    admin.keyboard.press("Enter")
    rows = admin.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(DEMO_RECIPIENT_DELIVERED)
    expect(rows.first).to_contain_text(DEMO_NUMBER_SMS_MMS)

    # Its page shows both attempts: the 503 and the accepted one.
    rows.first.get_by_role("link", name=str(message.pk), exact=True).click()
    attempts = admin.locator("#send_attempts-group tbody tr.has_original")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(0)).to_contain_text("503")
    expect(attempts.nth(0)).to_contain_text("MSG-290")
    expect(attempts.nth(0)).to_contain_text(AttemptOutcome.RETRYABLE.label)
    expect(attempts.nth(1)).to_contain_text(AttemptOutcome.ACCEPTED.label)

    # The CSV export of the (searched) list.
    admin.go_back()
    with admin.expect_download() as download:
        admin.get_by_role("link", name="Export these messages to CSV").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert re.fullmatch(r"messages-\d{8}-\d{6}\.csv", saved.name)
    with saved.open(newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 1
    row = table[0]
    message.refresh_from_db()
    assert row["id"] == str(message.pk)
    assert row["from"] == DEMO_NUMBER_SMS_MMS
    assert row["to"] == DEMO_RECIPIENT_DELIVERED
    assert row["written_by"] == "sam@example.com"
    assert row["attempts"] == "2"
    assert row["ringcentral_id"] == message.rc_message_id
    assert row["text"] == "Invoice 1042 is paid, thank you."
