"""The history console is for staff with two-factor authentication, through the normal login."""

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model

from tests.conftest import PASSWORD


@pytest.fixture
def staff_without_mfa(db):
    user = get_user_model().objects.create_user(
        "ops", "ops@example.com", PASSWORD, is_staff=True, is_superuser=True
    )
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def test_staff_with_mfa_reach_the_console(admin_client):
    response = admin_client.get("/admin/")
    assert response.status_code == 200
    assert b"mmsportal history console" in response.content


def test_staff_without_mfa_are_sent_to_set_it_up(client, staff_without_mfa):
    client.force_login(staff_without_mfa)
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/reauthenticate/") or (
        response.redirect_chain[-1][0] == "/accounts/2fa/totp/activate/"
    )
    assert b"two-factor authentication" in response.content
    assert client.get("/admin/messaging/outboundmessage/").status_code == 302


def test_anonymous_visitors_go_to_the_account_login(client, db):
    response = client.get("/admin/")
    assert response.status_code == 302
    response = client.get(response.url)
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


def test_members_who_are_not_staff_get_no_admin(alice_client):
    response = alice_client.get("/admin/messaging/outboundmessage/")
    assert response.status_code in (302, 403)
    assert b"history console" not in response.content
