"""API keys in a browser: a team owner makes a key on the team's page, sees it once, uses it,
revokes it; the API's documentation renders from the portal's own files under its CSP."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from messaging.models import Membership
from tests.conftest import make_user
from tests.e2e.test_accessibility import audit, focus_problems

pytestmark = pytest.mark.e2e


def test_make_use_and_revoke_a_key_then_read_the_docs(page, sign_in, live_server):
    owner = make_user("olga@example.com")
    team = Membership.objects.get(user=owner, team__is_personal=True).team
    sign_in(page, owner, team)
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))

    page.goto(f"/teams/{team.slug}/")
    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name=f"API keys of {team.name}")).to_be_visible()
    page.get_by_label("Name").fill("Booking system")
    page.get_by_label("Role").select_option("viewer")
    page.get_by_role("button", name="Make key").click()

    shown = page.get_by_role("textbox", name="Key", exact=True)
    secret = shown.input_value()
    assert secret.startswith("mp_live_")
    problems = audit(page) + focus_problems(page)
    assert not problems, "\n".join(problems)
    expect(page.locator("table.api-keys")).to_contain_text(secret[:16])
    api = f"{live_server.url}/api/v1/messages"
    assert requests.get(api, headers={"Authorization": f"Bearer {secret}"}, timeout=10).ok

    page.goto(f"/teams/{team.slug}/api-keys/")
    expect(page.get_by_role("textbox", name="Key", exact=True)).to_have_count(0)  # shown once
    page.get_by_role("button", name="Revoke Booking system").click()
    expect(page.locator("table.api-keys")).to_contain_text("Revoked")
    answer = requests.get(api, headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert answer.status_code == 401
    assert answer.headers["Content-Type"].startswith("application/problem+json")

    page.goto("/api/v1/docs/")
    expect(page.locator(".swagger-ui .title")).to_contain_text("mmsportal API", timeout=20_000)
    expect(page.get_by_text("/api/v1/messages").first).to_be_visible()
    assert not [e for e in errors if "Content Security Policy" in e], errors
