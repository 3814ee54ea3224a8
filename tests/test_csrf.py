"""CSRF on every state-changing request, and the secrets that stand in for it where a CSRF token
cannot be used (the OAuth `state` of the RingCentral link, the webhook's verification token).

The walk covers every URL pattern of the project, allauth's and the admin's included, with a
client that enforces CSRF checks. Each URL is filled with real objects that the signed-in user
may act on (alice owns Acme; the admin is staff with two-factor authentication), so a POST that
got past CSRF would really rename, remove, disconnect or delete something. Without a token every
one must be answered by our CSRF failure page (403) and change nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from messaging.models import (
    ConnectionStatus,
    DraftAttachment,
    Membership,
    OutboundMessage,
    RingCentralConnection,
    Role,
    WebhookStatus,
    WebhookSubscription,
)
from messaging.teams import actions as teams
from messaging.tracking import subscriptions as tracking
from tests import media_samples as samples
from tests.factories import make_connection, make_number
from tests.rc_fixtures import (
    callback_path,
    consent,
    link_through_browser,
    query_of,
    start_link,
    token_requests,
)
from tests.test_isolation import (
    Acme,
    build_acme,
    changed_tables,
    snapshot,
    url_for,
    use_private_media,
    walk_urls,
)


@pytest.fixture(autouse=True)
def _private_media(tmp_path, settings):
    use_private_media(tmp_path, settings)


@pytest.fixture
def acme(team, alice, bob, alice_client) -> Acme:
    """Acme with one of everything a URL can name (tests/test_isolation.py)."""
    return build_acme(team, alice, bob, alice_client)


CSRF_PAGE = b"This form has expired"

# Views that take POSTs without a CSRF token, on purpose, and why.
EXEMPT = {
    # RingCentral posts here from its servers, with no browser session and no cookie; each
    # delivery proves itself with the subscription's verification token instead (tests below
    # and tests/test_webhooks.py).
    "messaging.tracking.views.ringcentral_webhook",
}
# Views marked csrf_exempt only so that an oversized upload is refused from its Content-Length
# before the body is read; they run csrf_protect themselves right after, so a POST without a
# token must still be a 403.
PROTECTED_AFTER_SIZE_CHECK = {
    "messaging.compose.views.compose_view",
    "messaging.compose.views.upload",
    "messaging.inbox.views.inbox_reply",
    "messaging.contacts.views.imports.import_upload",
    "messaging.compose.views.template_files",
}

# The REST API authenticates with a key, not a cookie, so Django's middleware leaves its views
# alone; for a browser session DRF checks the CSRF token itself and answers a POST without one
# with a 403 problem document. The schema and docs take no POST (405); other /api/ addresses
# are 404.
API_VIEWS = (
    "messaging.api.views.resources.",
    "messaging.api.views.campaigns.",
    "messaging.api.views.docs.",
    "messaging.api.problems.",
)


def is_api(view: str) -> bool:
    return view.startswith(API_VIEWS)


def api_refusal(response) -> bool:
    if response.status_code == 403:
        return response["Content-Type"].startswith("application/problem+json") and (
            b"CSRF" in response.content
        )
    return response.status_code in (404, 405)


# Would do something on most pages if it got through.
FORM = {
    "name": "Hijacked",
    "role": Role.VIEWER,
    "email": "intruder@example.com",
    "shared": "1",
    "team": "acme",
    "text": "hello",
    "to": "+16505550999",
    "password": "x",
    "action": "delete_selected",
    "post": "yes",
}


@pytest.fixture
def csrf_clients(alice, admin_user, team):
    """Clients that enforce CSRF, signed in as alice (in Acme) and as the admin."""
    # Made here, not by the first page the admin opens, so the walk's snapshot holds still.
    teams.ensure_personal_team(admin_user)
    clients = {}
    for who, user in (("alice", alice), ("admin", admin_user)):
        client = Client(enforce_csrf_checks=True)
        client.force_login(user)
        if who == "alice":
            session = client.session
            session["current_team_id"] = team.pk
            session.save()
        clients[who] = client
    return clients


def test_every_post_without_a_token_is_refused_and_changes_nothing(acme, alice, csrf_clients):
    routes = list(walk_urls())
    before = snapshot()
    refused, exempt, problems = [], [], []

    for route in routes:
        url = url_for(route, acme, alice)
        client = csrf_clients["admin" if route.origin == "admin" else "alice"]
        response = client.post(url, FORM)
        if is_api(route.view):
            exempt.append(route.view)
            if not api_refusal(response):
                problems.append(
                    f"{url}: expected the API's CSRF refusal, got {response.status_code}"
                )
        elif route.view in EXEMPT:
            exempt.append(route.view)
            # Still refused, but by the view's own check, not by the CSRF middleware.
            if response.status_code != 403 or CSRF_PAGE in response.content:
                problems.append(f"{url}: expected the view's own 403, got {response.status_code}")
        elif response.status_code != 403 or CSRF_PAGE not in response.content:
            problems.append(f"{url} ({route.view}): {response.status_code}, not the CSRF 403")
        else:
            refused.append(url)

    assert not problems, "\n".join(problems)
    assert not changed_tables(before, snapshot())
    assert sorted(v for v in set(exempt) if not is_api(v)) == sorted(EXEMPT)
    assert len(refused) == len(routes) - len(exempt) >= 100
    # Nobody was signed out by the logout URL either.
    assert csrf_clients["alice"].get("/dashboard/").status_code == 200


def test_the_exemptions_are_exactly_the_listed_views():
    marked = {r.view for r in walk_urls() if getattr(r.pattern.callback, "csrf_exempt", False)}
    assert {v for v in marked if not is_api(v)} == EXEMPT | PROTECTED_AFTER_SIZE_CHECK


def test_a_token_from_another_session_is_refused(alice, team):
    mine, theirs = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    mine.force_login(alice)
    # Both browsers hold a CSRF cookie of their own; mine sends the other one's token.
    mine.get(f"/teams/{team.slug}/rename/")
    theirs.get("/accounts/login/")
    foreign = theirs.cookies["csrftoken"].value
    assert foreign != mine.cookies["csrftoken"].value

    response = mine.post(
        f"/teams/{team.slug}/rename/", {"name": "X", "csrfmiddlewaretoken": foreign}
    )

    assert response.status_code == 403 and CSRF_PAGE in response.content
    team.refresh_from_db()
    assert team.name == "Acme"


def test_the_views_that_check_the_size_first_still_refuse_a_complete_form_without_a_token(
    alice, team
):
    """compose and upload skip the CSRF middleware so an oversized body is refused unread, then
    check the token themselves: a complete, valid submission without one does nothing."""
    connection = make_connection(team, alice)
    number = make_number(connection)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    session = client.session
    session["current_team_id"] = team.pk
    session.save()

    photo = SimpleUploadedFile("p.jpg", samples.jpeg(40, 30), content_type="image/jpeg")
    upload = client.post("/messages/compose/upload/", {"file": photo})
    compose = client.post(
        "/messages/compose/",
        {"sender": str(number.pk), "to": "+16505550111", "text": "Hi", "mode": "separate"},
    )

    for response in (upload, compose):
        assert response.status_code == 403 and CSRF_PAGE in response.content
    assert not DraftAttachment.objects.exists()
    assert not OutboundMessage.objects.exists()


# --- The OAuth state of the RingCentral link ---------------------------------------------------


def test_a_state_started_in_another_session_of_the_same_user_is_refused(
    alice, alice_client, team, emulator, rc_user
):
    other_browser = Client()
    other_browser.force_login(alice)
    location = consent(emulator, start_link(other_browser), extension_id=rc_user.id)

    response = alice_client.get(callback_path(location))

    assert response.status_code == 400
    assert not RingCentralConnection.objects.exists()
    assert token_requests(emulator) == []


def test_a_code_cannot_be_used_with_another_links_state(alice_client, emulator, rc_user):
    """Two links started side by side: the code of the first brought back with the state of
    the second fails PKCE at RingCentral (each state keeps its own verifier)."""
    first = consent(emulator, start_link(alice_client), extension_id=rc_user.id)
    second = consent(emulator, start_link(alice_client), extension_id=rc_user.id)
    swapped = {"code": query_of(first)["code"], "state": query_of(second)["state"]}

    response = alice_client.get("/ringcentral/callback/", swapped)

    assert response.status_code == 400
    assert not RingCentralConnection.objects.exists()
    [exchange] = token_requests(emulator, "authorization_code")
    assert exchange.status == 400


def test_a_refused_consent_uses_up_its_state(alice_client, emulator, rc_user):
    authorize = start_link(alice_client)
    denied = consent(emulator, authorize, extension_id=rc_user.id, approve=False)
    assert alice_client.get(callback_path(denied)).status_code == 200

    # The same state, now with a code obtained for it some other way, is no longer accepted.
    approved = consent(emulator, authorize, extension_id=rc_user.id)
    response = alice_client.get(callback_path(approved))

    assert response.status_code == 400
    assert not RingCentralConnection.objects.exists()
    assert token_requests(emulator) == []


def test_a_replayed_callback_after_a_successful_link_changes_nothing(
    alice_client, emulator, rc_user
):
    first = link_through_browser(alice_client, emulator, rc_user)
    assert first.status_code == 302
    before = snapshot()
    location = consent(emulator, start_link(alice_client), extension_id=rc_user.id)
    assert alice_client.get(callback_path(location)).status_code == 302
    after_second = snapshot()

    replay = alice_client.get(callback_path(location))

    assert replay.status_code == 400
    assert not changed_tables(after_second, snapshot())
    assert changed_tables(before, after_second)  # the control: the real callback did change it


def test_a_sender_demoted_to_viewer_during_the_round_trip_links_nothing(
    alice, bob_client, bob, team, emulator, rc_user
):
    location = consent(emulator, start_link(bob_client), extension_id=rc_user.id)
    Membership.objects.filter(team=team, user=bob).update(role=Role.VIEWER)

    response = bob_client.get(callback_path(location))

    assert response.status_code == 403
    assert not RingCentralConnection.objects.exists()
    assert token_requests(emulator) == []


def test_a_member_who_left_the_team_during_the_round_trip_links_nothing(
    bob_client, bob, team, emulator, rc_user
):
    location = consent(emulator, start_link(bob_client), extension_id=rc_user.id)
    Membership.objects.filter(team=team, user=bob).delete()

    response = bob_client.get(callback_path(location))

    assert response.status_code == 404
    assert not RingCentralConnection.objects.filter(status=ConnectionStatus.LINKED).exists()
    assert token_requests(emulator) == []


# --- The webhook's verification token ------------------------------------------------------------

WEBHOOK = "/ringcentral/webhook/"


@pytest.fixture
def subscriptions(team, alice, bob):
    """Two active subscriptions (alice's and bob's links), each with its own token."""
    rows = []
    for user, extension in ((alice, "101"), (bob, "102")):
        connection = make_connection(team, user, extension_id=extension)
        sub = WebhookSubscription.objects.create(
            connection=connection, status=WebhookStatus.PENDING
        )
        sub.verification_token = tracking.new_verification_token(sub.pk)
        sub.rc_subscription_id = f"sub-{user.pk}"
        sub.status = WebhookStatus.ACTIVE
        sub.expires_at = timezone.now() + timedelta(days=7)
        sub.save()
        rows.append(sub)
    return rows


def deliver(client, token_headers: dict):
    body = '{"subscriptionId": "sub", "body": {"changes": []}}'
    return client.post(WEBHOOK, body, content_type="application/json", headers=token_headers)


def last_deliveries():
    return list(
        WebhookSubscription.objects.order_by("pk").values_list("last_delivery_at", flat=True)
    )


def test_an_empty_token_is_refused(client, subscriptions):
    for headers in ({"Verification-Token": ""}, {"Validation-Token": "", "Verification-Token": ""}):
        assert deliver(client, headers).status_code == 403
    assert last_deliveries() == [None, None]


def test_the_header_name_is_case_insensitive_but_the_token_is_not(client, subscriptions):
    sub = subscriptions[0]
    prefix, secret = sub.verification_token.split(".", 1)

    assert deliver(client, {"verification-token": f"{prefix}.{secret.swapcase()}"}).status_code == (
        403
    )
    assert last_deliveries() == [None, None]
    assert deliver(client, {"VERIFICATION-TOKEN": sub.verification_token}).status_code == 200
    assert last_deliveries()[0] is not None


def test_one_subscriptions_secret_does_not_open_another(client, subscriptions):
    first, second = subscriptions
    _, secret = first.verification_token.split(".", 1)

    answer = deliver(client, {"Verification-Token": f"{second.pk}.{secret}"})

    assert answer.status_code == 403
    assert last_deliveries() == [None, None]
