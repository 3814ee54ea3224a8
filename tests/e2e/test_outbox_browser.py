"""Live statuses in a real Chromium: badges change in place as the outbox moves a message, the
change is announced politely, and polling stops when everything is final or the tab is hidden."""

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
    page.on("request", lambda r: polls.append(r.url) if "/messages/status/" in r.url else None)
    return polls


def test_statuses_change_in_place_and_polling_stops_once_final(page, sign_in, alice, team, queued):
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
    assert len(polls) == settled  # nothing left to follow
    assert page.evaluate("window.__sameDocument") is True  # never reloaded


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


def test_the_message_page_follows_its_status_and_offers_a_reload(
    page, sign_in, alice, team, queued
):
    sign_in(page, alice, team)
    page.goto(f"/messages/{queued.pk}/")
    notice = page.locator("[data-reload-notice]")
    expect(notice).to_be_hidden()
    message, attempt = outbox.claim(queued.pk)
    outbox.record_success(message, attempt, outbox.Accepted(rc_message_id="5550002"))
    expect(page.locator(f'[data-status-for="{queued.pk}"]')).to_have_text("Sent")
    expect(notice).to_be_visible()


def test_a_finished_outbox_loads_no_script(page, sign_in, alice, team, queued):
    outbox.cancel(queued)
    sign_in(page, alice, team)
    polls = watch_polls(page)
    page.goto("/messages/")
    expect(page.locator(f'[data-status-for="{queued.pk}"]')).to_have_text("Canceled")
    page.wait_for_timeout(5_000)
    assert polls == []
