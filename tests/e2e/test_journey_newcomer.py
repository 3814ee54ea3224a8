"""What a newcomer met in the browser, each fixed: files that followed them to other messages,
"send again" that said nothing of known problems, a file status line that named one file, and
an admin list too wide for a laptop. (Live pages: tests/e2e/test_outbox_browser.py.)"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.utils import timezone
from playwright.sync_api import expect

from messaging.compose.drafts import store_bytes
from messaging.models import Attachment, MessageStatus, RecipientStatus
from tests import media_samples as samples
from tests.e2e.test_compose_browser import bob_ready  # noqa: F401 - fixture
from tests.factories import make_connection, make_message, make_number, message_in

pytestmark = pytest.mark.e2e


def attached(page):
    return page.locator("#attachment-list li")


def open_compose(page, url="/messages/compose/"):
    page.goto(url)
    expect(page.locator("#compose-form.js-enhanced")).to_be_visible()


def mms_with(number, user, names):
    message = make_message(number, user, text="Plans for Saturday")
    for position, name in enumerate(names):
        data = samples.jpeg(64, 48)
        Attachment.objects.create(
            message=message,
            file=store_bytes(number.connection.team_id, data, "image/jpeg"),
            original_name=name,
            content_type="image/jpeg",
            size=len(data),
            sha256="0" * 64,
            position=position,
        )
    return message


def test_files_stay_with_the_message_they_were_attached_to(page, sign_in, bob_ready, team):  # noqa: F811
    number = team.rc_connections.get().numbers.get()
    text_only = make_number(number.connection, "+16505550101", mms=False)
    sign_in(page, bob_ready, team)

    # A photo attached while a text-only number is chosen: refused, and then left.
    open_compose(page)
    page.get_by_label("From", exact=True).select_option(str(text_only.pk))
    page.get_by_label("Attach files", exact=True).set_input_files(
        [{"name": "leftover.jpg", "mimeType": "image/jpeg", "buffer": samples.jpeg(80, 60)}]
    )
    expect(page.locator("#attachment-list li[data-state=done]")).to_have_count(1)
    expect(page.locator('[data-errors-for="sender"]')).to_contain_text("not enabled for MMS")

    # A new compose page starts empty.
    open_compose(page)
    expect(attached(page)).to_have_count(0)

    # "Send again" of a text message brings no file.
    sms = make_message(number, bob_ready, text="Running late")
    open_compose(page, f"/messages/compose/?again={sms.pk}")
    expect(page.get_by_label("Message", exact=True)).to_have_value("Running late")
    expect(attached(page)).to_have_count(0)

    # "Send again" of an MMS brings exactly its files, each once, however often it is opened.
    mms = mms_with(number, bob_ready, ["one.jpg", "two.jpg"])
    for _ in range(2):
        open_compose(page, f"/messages/compose/?again={mms.pk}")
        expect(attached(page)).to_have_count(2)
        expect(page.locator("#attachment-list")).to_contain_text("one.jpg")
        expect(page.locator("#attachment-list")).to_contain_text("two.jpg")


def test_send_again_warns_of_an_opted_out_and_a_landline_recipient(
    page,
    sign_in,
    bob_ready,  # noqa: F811
    team,
):
    number = team.rc_connections.get().numbers.get()
    for to, code in (("+16505550198", "SMS-RC-413"), ("+16505550197", "SMS-CAR-411")):
        failed = message_in(number, bob_ready, MessageStatus.DELIVERY_FAILED, to=(to,))
        failed.recipients.update(
            status=RecipientStatus.DELIVERY_FAILED,
            error_code=code,
            updated_at=timezone.now() - timedelta(days=2),
        )
    group = make_message(number, bob_ready, to=("+16505550198", "+16505550197"), text="Hi")
    sign_in(page, bob_ready, team)
    open_compose(page, f"/messages/compose/?again={group.pk}")
    warnings = page.locator("#recipient-warnings")
    expect(warnings).to_contain_text("+1 650-555-0198 opted out of texts from +1 650-555-0100")
    expect(warnings).to_contain_text("+1 650-555-0197 cannot receive texts")


def test_compose_starts_from_the_usable_number_and_names_every_attached_file(
    page,
    sign_in,
    bob_ready,  # noqa: F811
    team,
):
    number = team.rc_connections.get().numbers.get()
    sign_in(page, bob_ready, team)
    open_compose(page)
    expect(page.get_by_label("From", exact=True)).to_have_value(str(number.pk))
    page.get_by_label("Attach files", exact=True).set_input_files(
        [
            {"name": "first.jpg", "mimeType": "image/jpeg", "buffer": samples.jpeg(80, 60)},
            {"name": "second.png", "mimeType": "image/png", "buffer": samples.png(60, 40)},
        ]
    )
    expect(page.locator("#attachment-list li[data-state=done]")).to_have_count(2)
    status = page.locator("#compose-status")
    expect(status).to_contain_text("first.jpg")
    expect(status).to_contain_text("second.png")
    page.get_by_role("button", name="Remove first.jpg").click()
    expect(status).to_have_text(re.compile(r"“first\.jpg” removed\. Attached: “second\.png”\."))


@pytest.mark.parametrize(
    "changelist", ["/admin/messaging/outboundmessage/", "/admin/messaging/ringcentralconnection/"]
)
def test_the_console_lists_fit_a_1280_pixel_screen(page, sign_in, team, alice, changelist):
    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create_superuser("ops", "ops@example.com", "x" * 20)
    TOTP.activate(staff, generate_totp_secret())
    connection = make_connection(
        team, alice, extension_name="Front Desk Reception Line", company_name="Acme Dental"
    )
    number = make_number(connection, "+16505550100")
    for index in range(3):
        failed = message_in(
            number,
            alice,
            MessageStatus.DELIVERY_FAILED,
            to=("+16505550111", "+16505550112"),
            text=f"Reminder {index}: your appointment is tomorrow at 9:30, reply to confirm.",
            error_code="SMS-CAR-411",
            error_reason="The number cannot receive texts: it is invalid or a landline.",
        )
        assert failed.pk
    sign_in(page, staff)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(changelist)
    expect(page.locator("#result_list")).to_be_visible()
    overflow = page.evaluate(
        """() => {
            const table = document.querySelector('#result_list');
            const box = table.closest('.results') || table.parentElement;
            return {table: table.scrollWidth, box: box.clientWidth,
                    page: document.documentElement.scrollWidth, screen: window.innerWidth};
        }"""
    )
    assert overflow["table"] <= overflow["box"], overflow
    assert overflow["page"] <= overflow["screen"], overflow
    expect(page.locator("#result_list")).to_contain_text("alice@example.com")
