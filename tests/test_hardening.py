"""Browser-side hardening and production defaults.

* Every HTML page we render (the main pages of each area, allauth's, the admin's and the error
  pages) carries a Content-Security-Policy without 'unsafe-inline' or 'unsafe-eval',
  `X-Frame-Options: DENY`, a Referrer-Policy and `X-Content-Type-Options: nosniff`, and its
  HTML holds no code the policy would have to allow: no <script> without `src` (except JSON
  data blocks), no `on…=` handlers, no `style=` attributes, no <style> blocks, no
  `javascript:` URLs.
* Production cookies are Secure (and the session cookie HttpOnly), and HSTS is on, when DEBUG is
  off (`check --deploy` itself is in tests/test_settings.py).
* Logs of a real RingCentral link and a real send carry no OAuth token and no full phone number.
* allauth's sign-up and login rate limits answer 429.
"""

from __future__ import annotations

import io
import json
import logging
from html.parser import HTMLParser

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from messaging.core.logging import RedactSecretsFilter
from messaging.models import MessageStatus, Role, Team
from messaging.teams import actions as teams
from messaging.teams import invitations
from tests.conftest import PASSWORD, client_for
from tests.rc_fixtures import expire_access_token, link_through_browser
from tests.test_isolation import (
    Acme,
    build_acme,
    use_private_media,
    walk_urls,
)
from tests.test_settings import PRODUCTION_ENV, manage


@pytest.fixture(autouse=True)
def _private_media(tmp_path, settings):
    use_private_media(tmp_path, settings)


@pytest.fixture
def acme(team, alice, bob, alice_client) -> Acme:
    """Acme with one of everything a URL can name (tests/test_isolation.py)."""
    return build_acme(team, alice, bob, alice_client)


# --- What a page may contain --------------------------------------------------------------------


class InlineCode(HTMLParser):
    """Collects everything in a page that a strict Content-Security-Policy would block."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        is_data = (attributes.get("type") or "").lower() == "application/json"
        if tag == "script" and "src" not in attributes and not is_data:
            self.found.append(f"inline <script {attrs}>")
        if tag == "style":
            self.found.append("<style> block")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=…>")
            if name == "style":
                self.found.append(f'<{tag} style="{value}">')
            if name in ("href", "src", "action", "formaction") and (
                value or ""
            ).strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value}>")

    handle_startendtag = handle_starttag


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    parser.close()
    return parser.found


def header_problems(response) -> list[str]:
    problems = []
    csp = response.get("Content-Security-Policy", "")
    if not csp:
        problems.append("no Content-Security-Policy")
    for word in ("'unsafe-inline'", "'unsafe-eval'"):
        if word in csp:
            problems.append(f"CSP allows {word}")
    if "script-src 'self'" not in csp or "frame-ancestors 'none'" not in csp:
        problems.append(f"CSP is not the strict one: {csp}")
    if response.get("X-Frame-Options") != "DENY":
        problems.append(f"X-Frame-Options {response.get('X-Frame-Options')!r}")
    if not response.get("Referrer-Policy"):
        problems.append("no Referrer-Policy")
    if response.get("X-Content-Type-Options") != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    return problems


def check_page(response, label: str, problems: list[str], status: int = 200) -> None:
    where = f"{label} ({response.status_code})"
    if response.status_code != status:
        problems.append(f"{where}: expected {status}")
        return
    if not response["Content-Type"].startswith("text/html"):
        problems.append(f"{where}: not HTML but {response['Content-Type']}")
        return
    problems += [f"{where}: {p}" for p in header_problems(response)]
    problems += [f"{where}: {p}" for p in inline_code(response.content.decode())]


def test_the_checker_finds_inline_code():
    page = (
        '<p style="color:red" onclick="x()">a</p><script>alert(1)</script>'
        '<script type="application/json">{}</script><script src="/static/x.js"></script>'
        '<a href="javascript:void(0)">b</a><style>p{}</style>'
    )
    assert len(inline_code(page)) == 5


# --- The pages ----------------------------------------------------------------------------------


@pytest.fixture
def pages_world(acme, alice, bob, team):
    """Acme (tests/test_isolation.py), with an event on the failed message and a delivered
    message, so the message page is seen in each of its states."""
    from messaging.outbox.events import record_event
    from tests.factories import make_message

    failed = acme.messages[1]
    record_event(failed.pk, "failed", "RingCentral refused it")
    now = timezone.now()
    delivered = make_message(
        acme.number,
        alice,
        text="Delivered one",
        status=MessageStatus.DELIVERED,
        sent_at=now,
        final_at=now,
        rc_message_id="4711",
    )
    return {"acme": acme, "failed": failed, "delivered": delivered}


def member_pages(world, team, bob):
    acme = world["acme"]
    bob_member = team.memberships.get(user=bob).pk
    slug = team.slug
    return [
        "/dashboard/",
        "/teams/",
        "/teams/new/",
        "/team/",
        f"/teams/{slug}/",
        f"/teams/{slug}/rename/",
        f"/teams/{slug}/leave/",
        f"/teams/{slug}/transfer/",
        f"/teams/{slug}/invite/",
        f"/teams/{slug}/members/{bob_member}/role/",
        f"/teams/{slug}/members/{bob_member}/remove/",
        "/ringcentral/",
        "/ringcentral/connect/",
        f"/ringcentral/{acme.connection.pk}/disconnect/",
        "/messages/",
        "/messages/?folder=failed&q=Board",
        f"/messages/{acme.messages[0].pk}/",
        f"/messages/{world['failed'].pk}/",
        f"/messages/{world['delivered'].pk}/",
        "/messages/compose/",
        f"/messages/compose/?again={acme.messages[0].pk}",
        "/ringcentral/callback/?error=access_denied",
        ("/ringcentral/callback/?code=x&state=unknown", 400),
        "/accounts/email/",
        "/accounts/password/change/",
        "/accounts/2fa/",
        "/accounts/reauthenticate/",
        "/accounts/logout/",
    ]


def test_every_page_of_a_member_is_strict(pages_world, alice_client, team, bob, alice):
    problems: list[str] = []
    for page in member_pages(pages_world, team, bob):
        url, status = page if isinstance(page, tuple) else (page, 200)
        check_page(alice_client.get(url), url, problems, status)
    # Compose when the current team has no RingCentral link yet.
    personal = Team.objects.get(is_personal=True, memberships__user=alice)
    alone = client_for(Client, alice, personal)
    check_page(alone.get("/messages/compose/"), "compose without a link", problems)
    # Setting up an authenticator asks for the password once more first.
    fresh = Client()
    fresh.post("/accounts/login/", {"login": alice.email, "password": PASSWORD})
    fresh.post("/accounts/reauthenticate/", {"password": PASSWORD})
    check_page(fresh.get("/accounts/2fa/totp/activate/"), "authenticator set-up", problems)

    assert not problems, "\n".join(problems)


def test_the_second_factor_page_is_strict(admin_user, client):
    signed = client.post("/accounts/login/", {"login": admin_user.email, "password": PASSWORD})
    assert signed.url == "/accounts/2fa/authenticate/"
    problems: list[str] = []
    check_page(client.get(signed.url), "code page", problems)

    assert not problems, "\n".join(problems)


def test_pages_for_visitors_are_strict(db, team, alice, client):
    invitation = invitations.create(
        team.memberships.get(user=alice), "new@example.com", Role.VIEWER
    )
    problems: list[str] = []
    for url in (
        "/",
        "/accounts/login/",
        "/accounts/signup/",
        "/accounts/password/reset/",
        "/accounts/confirm-email/",
        invitations.invitation_path(invitation),
    ):
        check_page(client.get(url), url, problems)
    check_page(client.get("/invitations/not-a-token/"), "broken invitation", problems, 400)
    assert not problems, "\n".join(problems)


def test_error_pages_are_strict(alice, bob_client, team, monkeypatch):
    problems: list[str] = []
    check_page(bob_client.get("/no/such/page/"), "404", problems, 404)
    check_page(bob_client.get(f"/teams/{team.slug}/rename/"), "403", problems, 403)
    check_page(Client().get("/", HTTP_HOST="evil.example"), "400 (bad host)", problems, 400)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    check_page(strict.post("/team/"), "CSRF failure", problems, 403)

    from messaging.pages import views as home

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(home, "dashboard_stats", broken)
    crashing = Client(raise_request_exception=False)
    crashing.force_login(alice)
    check_page(crashing.get("/dashboard/"), "500", problems, 500)
    assert not problems, "\n".join(problems)


def admin_pages(acme) -> list[str]:
    """Every admin page that shows HTML: lists, add forms, and the change, history and delete
    pages of a real row of each model."""
    from django.apps import apps

    urls = []
    for route in walk_urls():
        if route.origin != "admin" or route.is_regex:
            continue
        if route.name in ("logout", "view_on_site", "jsi18n", "autocomplete"):
            continue  # not pages: a POST-only action, redirects, a script, JSON
        if route.view.endswith("RedirectView"):
            continue
        if not route.params:
            urls.append(route.url({}))
            if route.name == "index":
                urls.append(route.url({}) + "messaging/")  # the app's page (a re_path route)
            continue
        if set(route.params) == {"object_id"}:
            app_label, model_name = route.route.split("/")[1:3]
            row = apps.get_model(app_label, model_name).objects.order_by("pk").first()
            if row is not None:
                urls.append(route.url({"object_id": str(row.pk)}))
        elif set(route.params) == {"id"}:
            urls.append(route.url({"id": str(acme.members[1].user_id)}))
    return urls


def test_every_admin_page_is_strict(acme, admin_client, admin_user):
    teams.ensure_personal_team(admin_user)
    urls = admin_pages(acme)
    problems: list[str] = []
    checked = 0
    for url in urls:
        response = admin_client.get(url)
        if response.status_code in (302, 403):
            # Pages the console does not offer: adding or deleting messages, links and numbers
            # (compose and outbox.py are the only ways), and the login page once signed in.
            continue
        if not response["Content-Type"].startswith("text/html"):
            problems += [f"{url}: {p}" for p in header_problems(response)]
            continue  # the CSV export
        check_page(response, url, problems)
        checked += 1
    check_page(
        admin_client.get("/admin/messaging/outboundmessage/", {"folder": "failed", "q": "Board"}),
        "admin message search",
        problems,
    )

    assert not problems, "\n".join(problems)
    assert checked >= 30


# --- Production settings ------------------------------------------------------------------------

PRODUCTION_SETTINGS = """
import json
from django.conf import settings as s
print(json.dumps({name: getattr(s, name, None) for name in [
    "DEBUG", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_HTTPONLY", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER", "X_FRAME_OPTIONS",
    "SECURE_CONTENT_TYPE_NOSNIFF", "SECURE_REFERRER_POLICY", "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SAMESITE", "ADMIN_REQUIRE_MFA",
]}))
"""


def test_production_cookies_are_secure_and_hsts_is_on():
    result = manage("shell", "-c", PRODUCTION_SETTINGS, env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])

    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    assert values["SESSION_COOKIE_HTTPONLY"] and values["CSRF_COOKIE_HTTPONLY"]
    assert values["SESSION_COOKIE_SAMESITE"] == values["CSRF_COOKIE_SAMESITE"] == "Lax"
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
    assert values["SECURE_SSL_REDIRECT"]
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["X_FRAME_OPTIONS"] == "DENY" and values["SECURE_CONTENT_TYPE_NOSNIFF"]
    assert values["SECURE_REFERRER_POLICY"] == "same-origin"
    assert values["ADMIN_REQUIRE_MFA"] is True


def test_cookies_set_over_https_carry_the_production_flags(alice, settings):
    """The flags as a browser receives them, on a real sign-in over HTTPS."""
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    settings.CSRF_COOKIE_HTTPONLY = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    client = Client()

    form = client.get("/accounts/login/", secure=True)
    signed_in = client.post(
        "/accounts/login/", {"login": alice.email, "password": PASSWORD}, secure=True
    )

    assert signed_in.status_code == 302, signed_in.content[:500]
    session = signed_in.cookies[django_settings.SESSION_COOKIE_NAME]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"
    csrf = form.cookies[django_settings.CSRF_COOKIE_NAME]
    assert csrf["secure"] and csrf["httponly"]
    assert signed_in["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


# --- Logs ---------------------------------------------------------------------------------------


@pytest.fixture
def log_output():
    """What the configured, redacting console handler writes, with every logger at DEBUG so the
    chattiest libraries (requests, oauthlib, urllib3) are heard too."""
    root = logging.getLogger()
    handlers = [
        h for h in root.handlers if any(isinstance(f, RedactSecretsFilter) for f in h.filters)
    ]
    assert handlers, "the LOGGING setting puts the redaction filter on the console handler"
    handler = handlers[0]
    stream = io.StringIO()
    old_stream, old_level, old_handler_level = handler.stream, root.level, handler.level
    handler.setStream(stream)
    handler.setLevel(logging.DEBUG)
    root.setLevel(logging.DEBUG)
    quiet = {}
    for name in ("requests_oauthlib", "oauthlib", "urllib3", "messaging", "django.request"):
        logger = logging.getLogger(name)
        quiet[name] = logger.level
        logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        handler.setStream(old_stream)
        handler.setLevel(old_handler_level)
        root.setLevel(old_level)
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


def test_a_real_link_and_send_log_no_token_and_no_full_number(
    log_output, alice_client, alice, team, emulator, rc_user, settings
):
    from messaging.models import OutboundMessage, RingCentralConnection
    from messaging.sending.tasks import send_message
    from tests.rc_fixtures import NUMBER_SMS_MMS

    recipient = "+16505550187"
    owner = team.memberships.get(user=alice)
    invitation = invitations.create(owner, "someone@example.com", Role.VIEWER)
    response = link_through_browser(alice_client, emulator, rc_user)
    assert response.status_code == 302
    connection = RingCentralConnection.objects.get()
    sender = connection.numbers.get(phone_number=NUMBER_SMS_MMS)
    sent = alice_client.post(
        "/messages/compose/",
        {
            "sender": str(sender.pk),
            "to": recipient,
            "text": "Your order is ready",
            "mode": "separate",
        },
    )
    assert sent.status_code == 302, sent.content[:1000]
    first_tokens = (connection.access_token, connection.refresh_token)
    expire_access_token(connection)  # so the send refreshes the tokens first
    message = OutboundMessage.objects.get()
    send_message.run(message.pk)  # what the worker runs, in this process so its logs are heard
    message.refresh_from_db()
    connection.refresh_from_db()
    assert message.status == MessageStatus.SENT, message.error_reason
    assert connection.access_token != first_tokens[0]
    # A mangled invitation link is logged as a 4xx with its path.
    Client().get(invitations.invitation_path(invitation) + "tampered/")

    logged = log_output.getvalue()
    # The capture really heard the token exchange, the refresh, the send and the request log.
    assert logged.count("/restapi/oauth/token") >= 2 and "/sms" in logged
    assert "tokens refreshed" in logged and "/invitations/[redacted]/" in logged
    for secret in (*first_tokens, connection.access_token, connection.refresh_token):
        assert secret not in logged
    assert invitation.key.hex not in logged
    assert invitations.make_token(invitation).split(":")[0] not in logged
    for number in (recipient, NUMBER_SMS_MMS):
        assert number not in logged
        assert number[1:] not in logged


# --- Rate limits --------------------------------------------------------------------------------


def per_ip_limit(action: str) -> int:
    """The per-IP count of an allauth rate limit such as "20/m/ip"."""
    for rule in django_settings.ACCOUNT_RATE_LIMITS[action].split(","):
        parts = rule.strip().split("/")
        if parts[-1] == "ip":
            return int(parts[0])
    raise AssertionError(f"no per-IP limit for {action}")


def test_signup_answers_429_after_the_configured_number_per_ip(client, db):
    from django.contrib.auth import get_user_model

    limit = per_ip_limit("signup")
    for i in range(limit):
        response = client.post(
            reverse("account_signup"),
            {"email": f"new{i}@example.com", "password1": PASSWORD, "password2": PASSWORD},
            REMOTE_ADDR="203.0.113.7",
        )
        assert response.status_code == 302, (i, response.content[:300])
        client.logout()

    refused = client.post(
        reverse("account_signup"),
        {"email": "one-more@example.com", "password1": PASSWORD, "password2": PASSWORD},
        REMOTE_ADDR="203.0.113.7",
    )
    other_ip = Client().post(
        reverse("account_signup"),
        {"email": "elsewhere@example.com", "password1": PASSWORD, "password2": PASSWORD},
        REMOTE_ADDR="198.51.100.9",
    )

    assert refused.status_code == 429
    assert not get_user_model().objects.filter(email="one-more@example.com").exists()
    assert other_ip.status_code == 302
    problems: list[str] = []
    check_page(refused, "429", problems, 429)
    assert not problems, problems


def test_login_answers_429_after_the_configured_number_per_ip(client, alice):
    limit = per_ip_limit("login")
    for i in range(limit):
        client.post(
            reverse("account_login"),
            {"login": f"nobody{i}@example.com", "password": "wrong"},
            REMOTE_ADDR="203.0.113.8",
        )
    refused = client.post(
        reverse("account_login"),
        {"login": alice.email, "password": PASSWORD},
        REMOTE_ADDR="203.0.113.8",
    )
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session
