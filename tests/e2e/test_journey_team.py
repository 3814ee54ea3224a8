"""A team at work: the owner creates a team, links and shares RingCentral, sends a message and
invites a colleague; the colleague joins from the emailed link and finds the team's outbox with
that message (its status following along); someone outside the team finds nothing at all.

RingCentral is the emulator (demo world); a real Celery worker sends (tests/e2e/conftest.py).
"""

from __future__ import annotations

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from messaging.models import Membership, Role, Team
from messaging.ringcentral.emulator.demo import DEMO_RECIPIENT_DELIVERED
from tests.conftest import PASSWORD, make_user
from tests.e2e.conftest import _page

pytestmark = pytest.mark.e2e

TEAMMATE = "theo@example.com"
WAIT = 40_000


@pytest.fixture
def second_page(browser, request, live_server):
    """Another person's browser: a context of its own, so no cookies are shared."""
    yield from _page(browser, request, base_url=live_server.url)


@pytest.fixture
def third_page(browser, request, live_server):
    yield from _page(browser, request, base_url=live_server.url)


def invitation_link(address: str) -> str:
    sent = [m for m in mail.outbox if address in m.to]
    assert sent, f"no invitation to {address}"
    found = re.search(r"https?://\S+/invitations/\S+/", sent[-1].body)
    assert found, sent[-1].body
    return found.group(0)


def test_an_invited_colleague_shares_the_outbox_and_an_outsider_sees_nothing(
    page, second_page, third_page, sign_in, backend, link_ringcentral, send_text
):
    owner = make_user("olivia@example.com")
    sign_in(page, owner)
    backend.start()

    # The owner sets the team up: a name, a shared RingCentral link, a first message.
    page.goto("/teams/new/")
    page.get_by_label("Team name").fill("Front Desk")
    page.get_by_role("button", name="Create team").click()
    expect(page.locator(".flash")).to_contain_text("Front Desk is ready")
    team = Team.objects.get(name="Front Desk")
    link_ringcentral(page)
    page.get_by_role("button", name=re.compile("Share with the team")).click()
    expect(page.locator(".flash")).to_contain_text("Everyone in Front Desk can now send")
    message = send_text(page, DEMO_RECIPIENT_DELIVERED, "We open at 9 tomorrow.")

    # The invitation.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Team").click()
    page.get_by_role("link", name="Invite someone").click()
    page.get_by_label("Email address").fill(TEAMMATE)
    page.get_by_label("Role").select_option(Role.SENDER)
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".flash")).to_contain_text(TEAMMATE)

    # The colleague opens the emailed link in their own browser and signs up from it: the
    # link itself proves the address, so no confirmation email is needed.
    colleague = second_page
    colleague.goto(invitation_link(TEAMMATE))
    expect(colleague.get_by_role("heading", level=1)).to_have_text("Join Front Desk")
    colleague.get_by_role("main").get_by_role("link", name="Create an account").click()
    expect(colleague.get_by_label("Email:", exact=True)).to_have_value(TEAMMATE)
    colleague.get_by_label("Password:", exact=True).fill(PASSWORD)
    colleague.get_by_label("Password (again):", exact=True).fill(PASSWORD)
    colleague.get_by_role("button", name="Sign Up").click()
    colleague.get_by_role("button", name="Join Front Desk").click()
    expect(colleague.locator(".flash")).to_contain_text(
        "Welcome to Front Desk! You joined as sender"
    )
    members = colleague.locator("table.members")
    expect(members).to_contain_text("olivia@example.com")
    expect(members).to_contain_text(TEAMMATE)

    colleague.get_by_role("navigation", name="Main").get_by_role("link", name="Outbox").click()
    row = colleague.locator("table.outbox-table tbody tr", has_text="We open at 9 tomorrow.")
    expect(row).to_contain_text("olivia@example.com")
    expect(row.locator(f'[data-status-for="{message.pk}"]')).to_have_text("Delivered", timeout=WAIT)
    # The shared link's numbers are theirs to send from too.
    colleague.get_by_role("navigation", name="Main").get_by_role("link", name="Compose").click()
    expect(colleague.get_by_label("From", exact=True)).to_contain_text("Main line")
    assert Membership.objects.get(team=team, user__email=TEAMMATE).role == Role.SENDER

    # Someone outside the team: every page of it is "not found", and their outbox is empty.
    outsider = make_user("mallory@example.com")
    sign_in(third_page, outsider)
    for path in (
        f"/messages/{message.pk}/",
        f"/teams/{team.slug}/",
        f"/teams/{team.slug}/invite/",
        f"/ringcentral/{message.connection_id}/disconnect/",
    ):
        response = third_page.goto(path)
        assert response.status == 404, path
        expect(third_page.get_by_role("heading", level=1)).to_have_text("Not found")
        expect(third_page.get_by_role("main")).not_to_contain_text("We open at 9")
    answer = third_page.request.get(f"/messages/status/?ids={message.pk}")
    assert answer.ok and answer.json().get("messages") == []
    third_page.goto("/messages/")
    expect(third_page.get_by_role("main")).to_contain_text("No messages yet.")
