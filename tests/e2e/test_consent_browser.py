"""Consent in a real Chromium: a contact who opted out is refused at compose with the reason
(live while typing, and on submit), a team admin opts a number out by hand and back in, and the
compose counter counts the team's opt-out line."""

import pytest
from playwright.sync_api import expect

from messaging.consent import ledger
from messaging.models import (
    ConsentRecord,
    ConsentSource,
    ConsentState,
    OutboundMessage,
    TeamMessagingSettings,
)
from tests.factories import make_connection, make_number
from tests.test_compose import sent  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e

OURS = "+16505550100"
PAT = "+16505550150"
REASON = "+1 650-555-0150 opted out of texts from +1 650-555-0100 on"


@pytest.fixture
def number(team, bob):
    return make_number(make_connection(team, bob, shared=True), OURS)


def test_an_opted_out_contact_is_refused_at_compose_with_the_reason(
    page,
    sign_in,
    bob,
    team,
    number,
    sent,  # noqa: F811
):
    ledger.record(
        team,
        PAT,
        ConsentState.OPTED_OUT,
        ConsentSource.KEYWORD,
        account_id=number.connection.account_id,
        from_number=OURS,
        note="Replied STOP",
    )
    sign_in(page, bob, team)
    page.goto("/messages/compose/")
    expect(page.locator("#compose-form.js-enhanced")).to_be_visible()

    page.get_by_role("textbox", name="To").fill("(650) 555-0150")
    page.get_by_role("textbox", name="Message").fill("Your order is ready")
    errors = page.locator('[data-errors-for="to"]')
    expect(errors).to_contain_text(REASON)  # the server's verdict while typing
    expect(errors).to_contain_text("(replied STOP)")

    page.get_by_role("button", name="Queue message").click()
    expect(page.locator('[data-errors-for="to"]')).to_contain_text(REASON)
    assert not OutboundMessage.objects.exists() and sent == []


def test_an_admin_opts_a_number_out_by_hand_and_back_in(page, sign_in, alice, team, number):
    sign_in(page, alice, team)
    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Consent").click()
    expect(page.get_by_role("heading", name="Consent", exact=True)).to_be_visible()
    expect(page.get_by_text("Nobody has opted out.")).to_be_visible()

    page.get_by_label("Contact's number").fill("650 555 0150")
    page.get_by_label("Opt out: no texts from any of the team's numbers").check()
    page.get_by_label("Note").fill("Asked us by phone")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_text("+1 650-555-0150 opted out of texts from the team")).to_be_visible()
    row = page.locator("table.consent-list tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Asked us by phone")
    assert ConsentRecord.objects.get(contact_number=PAT).state == ConsentState.OPTED_OUT

    page.get_by_label("Contact's number").fill("+16505550150")
    page.get_by_label("Opt back in: they agreed to get texts again").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Nobody has opted out.")).to_be_visible()

    # A number that is not one is a field error on the page.
    page.get_by_label("Contact's number").fill("555")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".field-errors")).to_contain_text("not a valid phone number")


def test_the_counter_counts_the_opt_out_line(page, sign_in, bob, team, number):
    TeamMessagingSettings.objects.create(team=team, opt_out_line_enabled=True)
    sign_in(page, bob, team)
    page.goto("/messages/compose/")
    expect(page.locator("#compose-form.js-enhanced")).to_be_visible()
    page.get_by_role("textbox", name="Message").fill("Hello")
    line = len("\n\nReply STOP to opt out")
    expect(page.locator("#text-counter")).to_contain_text(
        f"{5 + line} of 1,000 characters (with the opt-out line)"
    )
