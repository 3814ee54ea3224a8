"""Accounts: email sign-up with mandatory verification, password login, TOTP two-factor."""

import base64
import hashlib
import hmac
import re
import struct
import time

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from messaging.models import Membership, Role
from tests.conftest import PASSWORD


def totp(secret: str, at: float | None = None) -> str:
    """RFC 6238 code, computed independently of the code under test."""
    counter = int((time.time() if at is None else at) // 30)
    key = base64.b32decode(secret, casefold=True)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def sign_up(client, email="dana@example.com"):
    return client.post(
        "/accounts/signup/", {"email": email, "password1": PASSWORD, "password2": PASSWORD}
    )


@pytest.mark.django_db
def test_signup_sends_a_verification_link_and_login_waits_for_it(client):
    response = sign_up(client)
    assert response.status_code == 302
    assert response.url == "/accounts/confirm-email/"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["dana@example.com"]

    # Until the address is verified, a password login only leads back to "check your inbox".
    client.logout()
    response = client.post("/accounts/login/", {"login": "dana@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == "/accounts/confirm-email/"
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_verification_link_from_the_email_verifies_and_then_login_works(client):
    sign_up(client)
    link = re.search(r"http://testserver(/accounts/confirm-email/[^/\s]+/)", mail.outbox[0].body)
    assert link, mail.outbox[0].body
    page = client.get(link.group(1))
    assert page.status_code == 200
    assert b"dana@example.com" in page.content
    response = client.post(link.group(1))
    assert response.status_code == 302

    client.logout()
    response = client.post("/accounts/login/", {"login": "dana@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200


@pytest.mark.django_db
def test_a_new_user_gets_a_personal_team_they_own(client):
    sign_up(client, "erin@example.com")
    user = get_user_model().objects.get(email="erin@example.com")
    membership = Membership.objects.get(user=user)
    assert membership.role == Role.OWNER
    assert membership.team.is_personal


@pytest.mark.django_db
def test_signup_with_a_malformed_email_shows_a_field_error(client):
    response = client.post(
        "/accounts/signup/", {"email": "not-an-email", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert response.status_code == 200
    assert b"Enter a valid email address" in response.content
    assert not get_user_model().objects.exists()


@pytest.mark.django_db
def test_pages_never_show_a_username_field(client):
    for url in ("/accounts/signup/", "/accounts/login/"):
        content = client.get(url).content.decode()
        assert 'name="username"' not in content
        assert 'type="email"' in content


def test_totp_enrolment_then_login_asks_for_a_code(client, alice):
    assert client.post("/accounts/login/", {"login": alice.email, "password": PASSWORD}).url
    # Turning on two-factor asks for the password once more first.
    response = client.get("/accounts/2fa/totp/activate/")
    assert response.url.startswith("/accounts/reauthenticate/")
    response = client.post(response.url, {"password": PASSWORD})
    assert response.url == "/accounts/2fa/totp/activate/"
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    secret = re.search(r'id="authenticator_secret"[^>]*value="([A-Z2-7]+)"', page.content.decode())
    assert secret, "the activation page shows the secret"
    secret = secret.group(1)

    wrong = client.post("/accounts/2fa/totp/activate/", {"code": "000000"})
    assert wrong.status_code == 200
    assert b"Incorrect code" in wrong.content

    response = client.post("/accounts/2fa/totp/activate/", {"code": totp(secret)})
    assert response.status_code == 302
    assert alice.authenticator_set.filter(type="totp").exists()

    client.post("/accounts/logout/")
    response = client.post("/accounts/login/", {"login": alice.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == "/accounts/2fa/authenticate/"
    assert "_auth_user_id" not in client.session

    refused = client.post("/accounts/2fa/authenticate/", {"code": "123456"})
    assert refused.status_code == 200
    assert "_auth_user_id" not in client.session
    # The next period's code: allauth refuses a code that was already used once.
    response = client.post("/accounts/2fa/authenticate/", {"code": totp(secret, time.time() + 30)})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


@pytest.mark.django_db
def test_password_reset_sends_a_link(client, alice):
    response = client.post("/accounts/password/reset/", {"email": alice.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert "/accounts/password/reset/key/" in mail.outbox[0].body


@pytest.mark.django_db
def test_repeated_login_failures_lock_the_address_even_for_the_right_password(client, alice):
    for _ in range(5):
        response = client.post("/accounts/login/", {"login": alice.email, "password": "wrong"})
        assert b"not correct" in response.content
    response = client.post("/accounts/login/", {"login": alice.email, "password": PASSWORD})
    assert response.status_code == 200
    assert b"Too many failed login attempts" in response.content
    assert "_auth_user_id" not in client.session
