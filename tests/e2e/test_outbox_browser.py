"""The outbox and a message's page, live in a real Chromium: badges change in place as the outbox
moves a message and the change is announced politely; new messages appear on top; a message's
page changes whole; polling pauses while the tab is hidden."""

import re

import pytest
from playwright.sync_api import expect

from messaging.outbox import states as outbox
from tests.factories import make_connection, make_message, make_number

pytestmark = pytest.mark.e2e

# outbox.js polls every 4 s; two and a half periods is long enough to see one if it happened.
QUIET = 10_000


@pytest.fixture
def queued(team, alice):
    number = make_number(make_connection(team, alice, shared=True))
    return make_message(number, alice, to=("+16505550111",))


def watch_polls(page):
    polls = []
    page.on("request", lambda r: polls.append(r.url) if "/messages/live/" in r.url else None)
    return polls


def asks_for_statuses(url: str) -> bool:
    return "ids=" in url and not re.search(r"ids=(&|$)", url)


def test_statuses_change_in_place_and_a_finished_page_asks_only_for_new_messages(
    page, sign_in, alice, team, queued
):
    sign_in(page, alice, team)
    polls = watch_polls(page)
    page.goto("/messages/")
    page.evaluate("window.__sameDocument = true")
    badge = page.locator(f'[data-status-for="{queued.pk}"]')
    expect(badge).to_have_text("Queued")

    message, attempt = outbox.claim(queued.pk)
    outbox.record_success(message, attempt, outbox.Accepted(rc_message_id="5550001"))
    expect(badge).to_have_text("Sent")
    expect(page.locator("[data-outbox-announcer]")).to_have_text(
        re.compile(r"Message to \+1 650-555-0111 is now Sent")
    )

    outbox.apply_delivery_report(message, [outbox.DeliveryReport("+16505550111", "Delivered")])
    expect(badge).to_have_text("Delivered")
    expect(badge).to_have_attribute("class", "badge badge-ok")
    expect(badge).to_have_attribute("data-final", "true")

    settled = len(polls)
    page.wait_for_timeout(QUIET)
    # Still listening for new messages, but asking about none of the finished ones.
    assert not any(asks_for_statuses(url) for url in polls[settled:])
    assert page.evaluate("window.__sameDocument") is True  # never reloaded


def test_new_messages_appear_on_top_with_the_counts_without_a_reload(
    page, sign_in, alice, bob, team, queued
):
    sign_in(page, alice, team)
    page.goto("/messages/")
    page.evaluate("window.__sameDocument = true")
    rows = page.locator(".outbox-table tbody tr")
    expect(rows).to_have_count(1)
    expect(page.locator('[data-count-for="all"]')).to_have_text("1")

    # A teammate writes one (any tab, any browser: it is in the database).
    newer = make_message(queued.sender_number, bob, to=("+16505550112",), text="From bob")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("From bob")
    expect(page.locator(f'[data-status-for="{newer.pk}"]')).to_have_text("Queued")
    expect(page.locator('[data-count-for="all"]')).to_have_text("2")
    expect(page.locator("[data-outbox-announcer]")).to_contain_text("1 new message")
    assert page.evaluate("window.__sameDocument") is True


def test_the_first_message_replaces_the_empty_outbox(page, sign_in, alice, team):
    number = make_number(make_connection(team, alice, shared=True))
    sign_in(page, alice, team)
    page.goto("/messages/")
    expect(page.get_by_text("No messages yet.")).to_be_visible()
    make_message(number, alice, text="The very first")
    # Nothing shown is on its way, so the page asks at its slower, idle pace.
    expect(page.locator(".outbox-table tbody tr")).to_have_count(1, timeout=15_000)
    expect(page.get_by_text("No messages yet.")).to_be_hidden()


def test_polling_pauses_while_the_tab_is_hidden_and_catches_up_when_shown(
    page, sign_in, alice, team, queued
):
    sign_in(page, alice, team)
    polls = watch_polls(page)
    page.goto("/messages/")
    expect(page.locator(f'[data-status-for="{queued.pk}"]')).to_have_text("Queued")
    page.evaluate(
        """() => {
            Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    hidden_at = len(polls)
    page.wait_for_timeout(QUIET)
    assert len(polls) == hidden_at

    page.evaluate(
        """() => {
            Object.defineProperty(document, "hidden", {configurable: true, get: () => false});
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    page.wait_for_timeout(1_000)  # well under one polling period: this poll is the catch-up
    assert len(polls) > hidden_at


def test_the_message_page_follows_its_message_whole(page, sign_in, alice, team, queued):
    sign_in(page, alice, team)
    page.goto(f"/messages/{queued.pk}/")
    page.evaluate("window.__sameDocument = true")
    live = page.locator(".message-live")
    expect(live.get_by_role("button", name="Cancel sending")).to_be_visible()
    expect(live).to_contain_text("Waiting for a worker")

    message, attempt = outbox.claim(queued.pk)
    outbox.record_success(message, attempt, outbox.Accepted(rc_message_id="5550002"))
    outbox.apply_delivery_report(message, [outbox.DeliveryReport("+16505550111", "Delivered")])

    expect(live.locator("[data-status-label]")).to_have_text("Delivered")
    # Everything else moved with the badge: explanation, progress, recipient, timeline, actions.
    expect(live).not_to_contain_text("Waiting for a worker")
    expect(live.get_by_role("button", name="Cancel sending")).to_have_count(0)
    expect(live.locator(".message-progress")).not_to_contain_text("Not yet")
    expect(live.locator(".message-recipients")).to_contain_text("Delivered")
    expect(live.locator(".message-recipients")).not_to_contain_text("Pending")
    expect(live.locator(".message-timeline")).to_contain_text("Delivered to +1 650-555-0111.")
    expect(page.get_by_text("Reload the page")).to_have_count(0)
    expect(page.locator("[data-live-announcer]")).to_have_text("This message is now Delivered.")
    assert page.evaluate("window.__sameDocument") is True
