"""When RingCentral says no: a send refused on the spot and one reported failed later, each
shown with its reason and what to do on the message page; the refused one sent again with
"Retry" once its cause is gone.

RingCentral is the emulator (demo world); a real Celery worker sends and reads delivery reports
(tests/e2e/conftest.py).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from messaging.core.phones import format_number
from messaging.models import AttemptOutcome, MessageStatus
from messaging.outbox import delivery_errors
from messaging.ringcentral import errors
from messaging.ringcentral.emulator import Fault
from messaging.ringcentral.emulator.demo import (
    DEMO_RECIPIENT_DELIVERED,
    DEMO_RECIPIENT_OPTED_OUT,
)
from tests.conftest import make_user

pytestmark = pytest.mark.e2e

# A send is answered within a second or two; a delivery report is read about 10 s after the
# send (messaging/tracking/polling.py's first check) and the page asks for news every 4 s.
WAIT = 40_000


def test_refused_and_undelivered_messages_show_why_and_what_to_do_and_retry_works(
    page, sign_in, backend, rc_world, link_ringcentral, send_text
):
    user = make_user("rosa@example.com")
    sign_in(page, user)
    page.goto("/dashboard/")
    link_ringcentral(page)
    backend.start()

    # 1. Refused on the spot: RingCentral answers 403 CMN-408 (the RingCentral user may not
    #    send texts) until an administrator grants the permission.
    rc_world.inject(
        Fault("status", path_contains="/sms", status=403, error_code="CMN-408", count=50)
    )
    refused = send_text(page, DEMO_RECIPIENT_DELIVERED, "Your table for four is booked.")
    badge = page.locator(f'[data-status-for="{refused.pk}"]')
    expect(badge).to_have_text("Failed", timeout=WAIT)
    # The page follows the message: the reason and the fix appear without a reload.

    answer = errors.ERROR_TABLE[(403, "CMN-408")]
    problem = page.locator(".message-problem")
    expect(problem).to_contain_text(f"Why: {answer.reason}")
    expect(problem).to_contain_text(f"What to do: {answer.fix}")
    expect(problem).to_contain_text("RingCentral code: CMN-408")
    timeline = page.locator("table.message-timeline")
    expect(timeline).to_contain_text("403")
    expect(timeline).to_contain_text("CMN-408")

    # The administrator fixes the permission; the message goes out on "Retry".
    rc_world.faults.clear()
    page.get_by_role("button", name="Retry").click()
    expect(page.locator(".flash")).to_contain_text("Queued again")
    expect(badge).to_have_text("Sent", timeout=WAIT)

    # 2. Accepted, then reported failed: the recipient has opted out (SMS-RC-413).
    opted_out = send_text(page, DEMO_RECIPIENT_OPTED_OUT, "Reminder: your appointment is at 3.")
    expect(page.locator(f'[data-status-for="{opted_out.pk}"]')).to_have_text(
        "Sending failed", timeout=WAIT
    )
    # The page follows the message: the reason and the fix appear without a reload.
    explained = delivery_errors.explain("SMS-RC-413")
    problem = page.locator(".message-problem")
    expect(problem).to_contain_text(f"Why: {explained.reason}")
    expect(problem).to_contain_text(f"What to do: {explained.fix}")
    expect(problem).to_contain_text("RingCentral code: SMS-RC-413")
    recipients = page.locator("table.message-recipients")
    expect(recipients).to_contain_text(format_number(DEMO_RECIPIENT_OPTED_OUT))
    expect(recipients).to_contain_text(explained.reason)
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)  # retrying cannot help

    # The retried message made it all the way.
    page.goto(f"/messages/{refused.pk}/")
    expect(page.locator(f'[data-status-for="{refused.pk}"]')).to_have_text(
        "Delivered", timeout=WAIT
    )
    refused.refresh_from_db()
    opted_out.refresh_from_db()
    assert refused.status == MessageStatus.DELIVERED
    assert [a.outcome for a in refused.send_attempts.order_by("number")] == [
        AttemptOutcome.PERMANENT,
        AttemptOutcome.ACCEPTED,
    ]
    assert opted_out.status == MessageStatus.SENDING_FAILED
    assert opted_out.error_code == "SMS-RC-413"
