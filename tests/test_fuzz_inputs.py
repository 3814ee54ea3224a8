"""Hostile input, generated: whatever reaches the webhook, the OAuth callback, an invitation link,
the team forms or the outbox's search and paging, the answer is a clear 4xx (or the page), never
a server error, and nothing changes that the request had no right to change.

Requests go through the Django test client with `raise_request_exception=False`, so a crash is
seen as the 500 a browser would get. The number of examples comes from the hypothesis profile
registered in tests/conftest.py (a quick run by default, HYPOTHESIS_PROFILE=full for 5,000).
"""

from __future__ import annotations

import json
import string
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone
from hypothesis import assume, given, note
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from messaging.models import (
    Invitation,
    Membership,
    MessageEvent,
    RingCentralConnection,
    Role,
    SenderNumber,
    Team,
    WebhookStatus,
    WebhookSubscription,
)
from messaging.teams import actions as teams
from messaging.teams import invitations
from messaging.tracking import subscriptions as tracking
from tests.conftest import client_for
from tests.factories import make_connection, make_message, make_number
from tests.test_isolation import (
    Acme,
    build_acme,
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


# Header values as an HTTP server hands them to Django: Latin-1, no line breaks or controls.
HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=80,
)
# Values that have broken web apps before, tried often rather than left to chance.
NASTY = [
    "\x00",
    "a\x00b",
    "%00",
    "\u202egnp.exe",
    "' OR '1'='1' --",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "\r\nSet-Cookie: x=1",
    "\ufeff",
    "²",
    "١٢٣",
    "1e999",
    "-0",
    "NaN",
]
# Anything a browser can put in a form or a URL (UTF-8 cannot carry lone surrogates).
ANY_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=120),
    st.sampled_from(NASTY),
    st.integers(200, 5000).map(lambda n: "x" * n),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12,
)


def crashing_client(user=None, team=None) -> Client:
    if user is None:
        return Client(raise_request_exception=False)
    return client_for(lambda: Client(raise_request_exception=False), user, team)


# Near misses of a real secret (cut, extended, one character changed, case flipped), as edits
# that do not depend on the secret: the strategy stays the same from one example to the next
# even where the secret does not (signed links carry a timestamp, every OAuth state is new).
MUTATIONS = st.one_of(
    st.integers(0, 200).map(lambda i: lambda value: value[: i % (len(value) or 1)]),
    HEADER_TEXT.map(lambda extra: lambda value: value + extra),
    st.tuples(st.integers(0, 200), st.sampled_from("aZ0-_.~+/=²")).map(
        lambda change: (
            lambda value: (
                value[: change[0] % (len(value) or 1)]
                + change[1]
                + value[change[0] % (len(value) or 1) + 1 :]
            )
        )
    ),
    st.just(str.swapcase),
    st.just(str.upper),
)


def mutations(value: str):
    return MUTATIONS.map(lambda edit: edit(value))


# --- The webhook --------------------------------------------------------------------------------


@pytest.fixture
def subscription(team, alice):
    connection = make_connection(team, alice)
    number = make_number(connection)
    make_message(number, alice)
    sub = WebhookSubscription.objects.create(connection=connection, status=WebhookStatus.PENDING)
    sub.verification_token = tracking.new_verification_token(sub.pk)
    sub.rc_subscription_id = "6a1e4b6e-5b8d-4d1a-8f1e-3c3e2a1d9b10"
    sub.status = WebhookStatus.ACTIVE
    sub.expires_at = timezone.now() + timedelta(days=7)
    sub.save()
    return sub


def tracked_state():
    return (
        list(WebhookSubscription.objects.order_by("pk").values()),
        MessageEvent.objects.count(),
    )


@hypothesis_settings(max_examples=20)
@given(
    depth=st.integers(min_value=5_000, max_value=200_000),
    opener=st.sampled_from(["[", '{"a":']),
    huge=st.booleans(),
)
def test_deeply_nested_or_huge_json_from_a_verified_sender_is_a_400(
    depth, opener, huge, subscription
):
    # Python's JSON parser recurses per level; far enough down it raises RecursionError.
    closer = "]" if opener == "[" else "}"
    body = (opener * depth + "1" + closer * depth).encode()
    if huge:
        body = b'{"pad": "' + b"x" * 3_000_000 + b'"}'
    response = crashing_client().post(
        "/ringcentral/webhook/",
        data=body,
        content_type="application/json",
        headers={"Verification-Token": subscription.verification_token},
    )
    assert response.status_code == 400


@given(data=st.data())
def test_the_webhook_answers_200_400_or_403_and_changes_nothing_without_the_token(
    data, subscription, django_capture_on_commit_callbacks
):
    real = subscription.verification_token
    prefix = real.split(".", 1)[0]
    token = st.one_of(
        HEADER_TEXT,
        mutations(real),
        HEADER_TEXT.map(lambda secret: f"{prefix}.{secret}"),
        st.sampled_from(["", ".", f"{prefix}.", "²." + real.split(".", 1)[1], "0." + "x" * 43]),
        st.just(real),
    )
    headers = data.draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "Validation-Token",
                    "Verification-Token",
                    "validation-token",
                    "Content-Type",
                    "X-Forwarded-For",
                ]
            ),
            token,
            max_size=3,
        ),
        label="headers",
    )
    body = data.draw(
        st.one_of(
            st.binary(max_size=600),
            JSON.map(lambda value: json.dumps(value).encode()),
            st.builds(
                lambda changes: json.dumps(
                    {"subscriptionId": subscription.rc_subscription_id, "body": changes}
                ).encode(),
                JSON,
            ),
            st.just(b""),
        ),
        label="body",
    )
    # Header names are case-insensitive: the last spelling of a name is the one that arrives.
    presented = {name.lower(): value for name, value in headers.items()}
    has_token = real in (
        presented.get("verification-token"),
        presented.get("validation-token"),
    )
    before = tracked_state()
    client = crashing_client()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            "/ringcentral/webhook/",
            data=body,
            content_type=presented.pop("content-type", "application/json") or "text/plain",
            headers=presented,
        )

    note(f"{response.status_code} {response.content[:200]!r}")
    assert response.status_code in (200, 400, 403)
    if not has_token:
        assert tracked_state() == before
        assert callbacks == []
        if response.status_code == 200:
            # Only the creation handshake answers 200 without the token: it echoes its header.
            assert response["Validation-Token"] == presented["validation-token"]
    else:
        # The right token in either header opens the door whatever else is sent: a JSON object
        # is taken (200), any other body is a 400.
        assert response.status_code in (200, 400)


# --- The OAuth callback -------------------------------------------------------------------------

CALLBACK = "/ringcentral/callback/"


@pytest.fixture
def quiet_emulator(emulator):
    # Each example with a live state asks the token endpoint once; RingCentral's rate limit on
    # it would turn a hostile code into a (correct) 502 "try again later" instead of a 400.
    emulator.update_config(rate_limits_enabled=False)
    return emulator


@given(data=st.data())
def test_the_oauth_callback_shows_a_4xx_page_and_stores_nothing(data, alice, team, quiet_emulator):
    client = crashing_client(alice, team)
    params = data.draw(
        st.dictionaries(
            st.sampled_from(["code", "state", "error", "error_description", "scope"]),
            ANY_TEXT,
            max_size=4,
        ),
        label="params",
    )
    if data.draw(st.booleans(), label="with a state this session started"):
        started = client.post("/ringcentral/connect/")
        assert started.status_code == 302
        state = started["Location"].split("state=", 1)[1].split("&", 1)[0]
        params["state"] = data.draw(st.one_of(st.just(state), mutations(state)), label="state")
    raw = data.draw(
        st.none() | st.text(string.printable + "%\u00e9\u2028", max_size=80), label="raw query"
    )

    response = client.get(CALLBACK, params) if raw is None else client.get(f"{CALLBACK}?{raw}")

    note(f"{response.status_code}")
    if response.wsgi_request.GET.get("error") == "access_denied":
        assert response.status_code == 200  # "you chose not to allow access", with Try again
    else:
        assert 400 <= response.status_code < 500
    assert not RingCentralConnection.objects.exists()
    assert not SenderNumber.objects.exists()


# --- Invitation links ---------------------------------------------------------------------------


@pytest.fixture
def invitation(team, alice):
    return invitations.create(team.memberships.get(user=alice), "invitee@example.com", Role.SENDER)


def signed_tokens():
    """Tokens signed with the right key but the wrong salt or a payload of the wrong shape."""
    return st.one_of(
        JSON.map(lambda value: signing.dumps(value, salt=invitations.SALT)),
        st.uuids().map(lambda key: signing.dumps({"key": key.hex}, salt=invitations.SALT)),
        JSON.map(lambda value: signing.dumps(value, salt="another.purpose")),
        JSON.map(lambda value: signing.dumps({"key": value}, salt=invitations.SALT)),
    )


@given(data=st.data())
def test_invitation_links_with_any_token_are_4xx_and_join_nobody(data, invitation, charlie):
    real = invitations.make_token(invitation)
    token = data.draw(st.one_of(ANY_TEXT, mutations(real), signed_tokens()), label="token")
    assume(token != real)
    who = data.draw(st.sampled_from(["visitor", "charlie"]), label="who")
    method = data.draw(st.sampled_from(["get", "post"]), label="method")
    client = crashing_client(charlie if who == "charlie" else None)
    memberships = Membership.objects.count()
    before = list(Invitation.objects.values())

    response = getattr(client, method)(f"/invitations/{quote(token, safe='')}/")

    note(f"{response.status_code}")
    assert 400 <= response.status_code < 500
    assert Membership.objects.count() == memberships
    assert list(Invitation.objects.values()) == before


# --- Team forms ---------------------------------------------------------------------------------

TEAM_FORMS = {
    "rename": ("/teams/{slug}/rename/", ["name"]),
    "create": ("/teams/new/", ["name"]),
    "invite": ("/teams/{slug}/invite/", ["email", "role"]),
    "role": ("/teams/{slug}/members/{member}/role/", ["role"]),
    "transfer": ("/teams/{slug}/transfer/", ["member"]),
    "switch": ("/teams/switch/", ["team", "next"]),
}


def field_values():
    return st.one_of(
        ANY_TEXT,
        st.sampled_from(["admin", "owner", "viewer", "sender", "", " ", "\x00", "a" * 300]),
        st.integers(-(2**70), 2**70).map(str),
        st.emails(),
    )


@given(data=st.data())
def test_team_forms_never_fail_with_a_server_error(data, alice, bob, team):
    client = crashing_client(alice, team)
    bob_member = team.memberships.get(user=bob).pk
    which = data.draw(st.sampled_from(sorted(TEAM_FORMS)), label="form")
    url, fields = TEAM_FORMS[which]
    form = {name: data.draw(field_values(), label=name) for name in fields}
    form.update(data.draw(st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=2), label="extra"))
    if form.get("member") == str(bob_member):
        form["member"] += "0"  # a real transfer would end the test's owner role, not a bug
    name_before = Team.objects.get(pk=team.pk).name

    response = client.post(url.format(slug=team.slug, member=bob_member), form)

    note(f"{response.status_code}")
    assert response.status_code < 500
    if which == "rename" and response.status_code != 302:
        assert Team.objects.get(pk=team.pk).name == name_before


# --- Outbox search and paging -------------------------------------------------------------------

CURSORS = st.one_of(
    ANY_TEXT,
    st.from_regex(r"\A-?[0-9]{1,30}\.-?[0-9]{1,30}\Z"),
    st.tuples(st.integers(-(2**80), 2**80), st.integers(-(2**70), 2**70)).map(
        lambda pair: f"{pair[0]}.{pair[1]}"
    ),
)


@pytest.fixture
def filled_outbox(team, alice):
    number = make_number(make_connection(team, alice, shared=True))
    return [
        make_message(number, alice, to=(f"+1650555{2000 + i}",), text=f"hi {i}") for i in range(3)
    ]


@given(data=st.data())
def test_outbox_search_and_paging_never_fail(data, alice, team, filled_outbox):
    client = crashing_client(alice, team)
    query = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "folder": ANY_TEXT | st.sampled_from(["failed", "attention", "all", "sent"]),
                "q": ANY_TEXT | st.from_regex(r"\A[0-9+() .-]{1,20}\Z"),
                "after": CURSORS,
                "before": CURSORS,
            },
        ),
        label="query",
    )
    ids = data.draw(
        st.one_of(
            ANY_TEXT,
            st.lists(st.integers(-(2**70), 2**70), max_size=120).map(
                lambda values: ",".join(map(str, values))
            ),
        ),
        label="ids",
    )

    listing = client.get("/messages/", query)
    statuses = client.get("/messages/status/", {"ids": ids})

    note(f"{listing.status_code} {statuses.status_code}")
    assert listing.status_code in (200, 400)
    assert statuses.status_code in (200, 400)


# --- NUL in every parameter of every URL --------------------------------------------------------

# Every query and form field name the app and allauth read. PostgreSQL refuses NUL in any query
# parameter with an error, so each one that reaches a lookup unchecked would be a 500 there.
FIELD_NAMES = [
    "q", "folder", "after", "before", "ids", "again", "team", "next", "name", "email", "role",
    "member", "sender", "to", "text", "uploads", "mode", "shared", "fit_images", "state", "code",
    "error", "login", "password", "password1", "password2", "oldpassword", "key", "remember",
    "action", "email2", "o", "p", "all",
]  # fmt: skip


def test_a_nul_character_in_any_parameter_of_any_url_is_not_a_server_error(
    acme,
    alice,
    admin_user,
):
    """Each URL of the map (our own, allauth's; the admin's by GET only, since a POST there may
    delete rows by design) with every field set to a value holding NUL, signed in and not."""
    teams.ensure_personal_team(admin_user)
    values = {name: "a\x00b" for name in FIELD_NAMES}
    failures = []
    requests = 0
    for route in walk_urls():
        url = url_for(route, acme, alice)
        if route.origin == "admin":
            attempts = [(admin_user, "get")]
        else:
            attempts = [(user, method) for user in (alice, None) for method in ("get", "post")]
        for user, method in attempts:
            client = crashing_client(user, acme.team if user == alice else None)
            response = getattr(client, method)(url, values)
            requests += 1
            if response.status_code >= 500:
                failures.append(f"{method.upper()} {url} as {user}: {response.status_code}")
    assert not failures, "\n".join(failures)
    assert requests > 300
