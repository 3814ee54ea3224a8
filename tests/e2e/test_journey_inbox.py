"""The team inbox in a browser: linking imports the history; a contact's reply appears in the
open list and thread without a reload; a reply with a photo; assign, note, close, reopen; a
viewer reads but cannot reply; an outsider sees nothing.

RingCentral is the emulator (demo world, whose contacts answer a few seconds after a message
reaches them); a real Celery worker sends, syncs and fetches files (tests/e2e/conftest.py).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from messaging.core.phones import format_number
from messaging.models import Conversation, Membership, Role
from messaging.ringcentral.emulator.demo import (
    DEMO_CONTACT_PHOTO,
    DEMO_CONTACT_REPLIES,
)
from tests import media_samples as samples
from tests.conftest import make_user

pytestmark = pytest.mark.e2e

WAIT = 40_000


def test_a_conversation_from_history_to_reply_assign_note_close_and_reopen(
    page, sign_in, backend, rc_world, link_ringcentral, send_text, tmp_path, browser, live_server
):
    owner = make_user("olga@example.com")
    sign_in(page, owner)
    page.goto("/dashboard/")
    backend.start()
    link_ringcentral(page)
    team = Membership.objects.get(user=owner, team__is_personal=True).team

    # 1. The history arrives with the link: the seeded conversations, the photo among them.
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name=re.compile("Inbox")
    ).click()
    rows = page.locator(".inbox-row")
    expect(rows.filter(has_text=format_number(DEMO_CONTACT_PHOTO))).to_have_count(1, timeout=WAIT)
    expect(rows.filter(has_text=format_number(DEMO_CONTACT_REPLIES))).to_contain_text(
        "Can you call me back"
    )

    # 2. A message to the contact who answers; their reply appears on the open list, unread.
    other = page.context.new_page()
    other.goto("/dashboard/")
    send_text(other, DEMO_CONTACT_REPLIES, "We can call at 4 pm today.")
    other.close()
    replies = rows.filter(has_text=format_number(DEMO_CONTACT_REPLIES))
    expect(replies).to_contain_text("Thanks! Got your message", timeout=WAIT)
    expect(replies).to_contain_text("unread")
    expect(page.locator("[data-inbox-badge]")).not_to_be_hidden()

    # 3. The thread shows the whole exchange; the reply box sends a photo from the same number.
    replies.get_by_role("link").click()
    thread = page.locator(".inbox-thread")
    expect(thread).to_contain_text("We can call at 4 pm today.")
    expect(thread).to_contain_text("Thanks! Got your message")
    photo = tmp_path / "map.jpg"
    photo.write_bytes(samples.jpeg(800, 600))
    page.get_by_label("Message", exact=True).fill("Here is a map to our office.")
    page.get_by_label(re.compile("Photos or files")).set_input_files(str(photo))
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator(".flash")).to_contain_text("Reply queued")
    mine = thread.locator(".inbox-outbound").filter(has_text="Here is a map to our office.")
    expect(mine.locator("img")).to_have_count(1)
    expect(mine).to_contain_text(re.compile("Sent|Delivered"), timeout=WAIT)
    # The contact answers this one too, without a reload.
    expect(thread.locator(".inbox-inbound").filter(has_text="Here is a map")).to_have_count(
        1, timeout=WAIT
    )

    # 4. Working as a team: assign to me, a note, close, reopen.
    page.get_by_label("Assign to").select_option(label=f"{owner.email} (me)")
    page.get_by_role("button", name="Assign").click()
    expect(page.locator(".flash")).to_contain_text("Assigned to you")
    page.get_by_label(re.compile("^Note")).fill("Customer prefers calls after 4.")
    page.get_by_role("button", name="Add note").click()
    expect(thread.locator(".inbox-note")).to_contain_text("Customer prefers calls after 4.")
    page.get_by_role("button", name="Close").click()
    expect(page.locator("[data-conversation-state]")).to_have_text("Closed")
    page.get_by_role("button", name="Reopen").click()
    expect(page.locator("[data-conversation-state]")).to_have_text("Open")
    conversation = Conversation.objects.get(team=team, contact_key=DEMO_CONTACT_REPLIES)
    assert conversation.assignee == owner

    # 5. A viewer of the team reads the thread but has no reply box; an outsider gets 404.
    viewer = make_user("vera@example.com")
    Membership.objects.create(team=team, user=viewer, role=Role.VIEWER)
    viewer_context = browser.new_context(base_url=live_server.url)
    viewer_page = viewer_context.new_page()
    sign_in(viewer_page, viewer, team)
    viewer_page.goto(f"/inbox/{conversation.pk}/")
    expect(viewer_page.locator(".inbox-thread")).to_contain_text("Here is a map to our office.")
    expect(viewer_page.get_by_role("button", name="Send reply")).to_have_count(0)
    expect(viewer_page.locator("main")).to_contain_text("viewer role")
    viewer_context.close()

    outsider = make_user("otto@example.com")
    outsider_context = browser.new_context(base_url=live_server.url)
    outsider_page = outsider_context.new_page()
    sign_in(outsider_page, outsider)
    answer = outsider_page.goto(f"/inbox/{conversation.pk}/")
    assert answer.status == 404
    outsider_page.goto("/inbox/")
    expect(outsider_page.locator("main")).not_to_contain_text(format_number(DEMO_CONTACT_REPLIES))
    outsider_context.close()
