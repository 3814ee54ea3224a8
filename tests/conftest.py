"""Shared fixtures: three personas in the style of a real team.

alice owns the "Acme" team, bob is a sender in it, and charlie is an outsider with a team of his
own. Every view test checks what charlie sees (404).
"""

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model

from messaging.models import Membership, Role
from messaging.teams import actions as teams

PASSWORD = "correct horse battery staple 42"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The production hasher is slow on purpose; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    """allauth keeps rate-limit counters in the cache; each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def make_user(email: str):
    user = get_user_model().objects.create_user(
        username=email.split("@")[0], email=email, password=PASSWORD
    )
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    teams.ensure_personal_team(user)
    return user


@pytest.fixture
def alice(db):
    return make_user("alice@example.com")


@pytest.fixture
def bob(db):
    return make_user("bob@example.com")


@pytest.fixture
def charlie(db):
    return make_user("charlie@example.com")


@pytest.fixture
def team(alice, bob):
    """Acme: alice is the owner, bob a sender."""
    acme = teams.create_team(alice, "Acme")
    Membership.objects.create(team=acme, user=bob, role=Role.SENDER)
    return acme


@pytest.fixture
def admin_user(db, django_user_model):
    """pytest-django's admin persona, with the authenticator app the admin requires."""
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    user = django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    TOTP.activate(user, generate_totp_secret())
    return user


def client_for(client_class, user, team=None):
    client = client_class()
    client.force_login(user)
    if team is not None:
        session = client.session
        session["current_team_id"] = team.pk
        session.save()
    return client


@pytest.fixture
def alice_client(alice, team):
    from django.test import Client

    return client_for(Client, alice, team)


@pytest.fixture
def bob_client(bob, team):
    from django.test import Client

    return client_for(Client, bob, team)


@pytest.fixture
def charlie_client(charlie):
    from django.test import Client

    return client_for(Client, charlie)


# Two more Acme members, so every role can be exercised: dana is an admin, victor a viewer.


@pytest.fixture
def dana(team):
    user = make_user("dana@example.com")
    Membership.objects.create(team=team, user=user, role=Role.ADMIN)
    return user


@pytest.fixture
def victor(team):
    user = make_user("victor@example.com")
    Membership.objects.create(team=team, user=user, role=Role.VIEWER)
    return user


@pytest.fixture
def dana_client(dana, team):
    from django.test import Client

    return client_for(Client, dana, team)


@pytest.fixture
def victor_client(victor, team):
    from django.test import Client

    return client_for(Client, victor, team)


from tests.api_fixtures import (  # noqa: E402, F401 - REST API fixtures
    admin_api,
    api_link,
    outsider_api,
    sender_api,
    viewer_api,
)
from tests.rc_fixtures import emulator, rc_user  # noqa: E402, F401 - RingCentral emulator fixtures


# Property tests (hypothesis): a quick run in the default suite, HYPOTHESIS_PROFILE=full for the
# long one. Examples share their test's fixtures and database transaction on purpose, and a
# request per example is slow by hypothesis' standards.
def _register_hypothesis_profiles():
    import os

    from hypothesis import HealthCheck
    from hypothesis import settings as hypothesis_settings

    relaxed = {
        "deadline": None,
        "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    }
    hypothesis_settings.register_profile("quick", max_examples=100, **relaxed)
    hypothesis_settings.register_profile("full", max_examples=5000, **relaxed)
    hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))


_register_hypothesis_profiles()
