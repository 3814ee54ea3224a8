"""Team API keys (messaging/api/keys.py): made by admins and shown once, stored hashed with a
visible prefix, a role no higher than the maker's, revoked or orphaned keys refused (401),
last-used time, per-key throttling; the browser's session still works, with CSRF."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from messaging.api import keys
from messaging.models import ApiKey, Membership, Role
from tests.api_fixtures import ApiClient, key_for, problem


def test_an_admin_makes_a_key_on_the_team_page_and_sees_it_once(alice_client, team):
    assert (
        f"/teams/{team.slug}/api-keys/" in alice_client.get(f"/teams/{team.slug}/").content.decode()
    )
    page = alice_client.get(f"/teams/{team.slug}/api-keys/")
    assert page.status_code == 200

    response = alice_client.post(
        f"/teams/{team.slug}/api-keys/", {"name": "Booking system", "role": "sender"}
    )

    assert response.status_code == 200
    secret = re.search(r'value="(mp_live_[^"]+)"', response.content.decode()).group(1)
    api_key = ApiKey.objects.get(team=team)
    assert api_key.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert api_key.prefix == secret[:16] and api_key.prefix.startswith("mp_live_")
    assert secret not in str(ApiKey.objects.values().get())
    # Shown once: the next view of the page has the prefix only.
    again = alice_client.get(f"/teams/{team.slug}/api-keys/").content.decode()
    assert secret not in again and api_key.prefix in again
    assert ApiClient(secret).get("/api/v1/messages").status_code == 200


def test_only_admins_see_the_keys_page_and_outsiders_get_404(bob_client, charlie_client, team):
    assert bob_client.get(f"/teams/{team.slug}/api-keys/").status_code == 403
    assert bob_client.post(f"/teams/{team.slug}/api-keys/", {"name": "x"}).status_code == 403
    assert charlie_client.get(f"/teams/{team.slug}/api-keys/").status_code == 404
    assert not ApiKey.objects.exists()


def test_a_keys_role_is_never_above_its_makers(team, alice, bob, dana):
    with pytest.raises(keys.KeyRefused):
        key_for(team, bob, Role.SENDER)  # a sender makes no keys
    with pytest.raises(keys.KeyRefused):
        key_for(team, alice, Role.OWNER)
    assert key_for(team, dana, Role.ADMIN).api_key.role == Role.ADMIN
    # The form offers no role above the maker's.
    dana_client = Client()
    dana_client.force_login(dana)
    response = dana_client.post(f"/teams/{team.slug}/api-keys/", {"name": "x", "role": "owner"})
    assert response.status_code == 400


def test_revoked_forged_and_orphaned_keys_are_401(team, alice, dana, alice_client):
    made = key_for(team, alice)
    api = ApiClient(made.secret)
    assert api.get("/api/v1/messages").status_code == 200

    response = alice_client.post(f"/teams/{team.slug}/api-keys/{made.api_key.pk}/revoke/")
    assert response.status_code == 302
    revoked = api.get("/api/v1/messages")
    assert revoked.status_code == 401
    assert revoked["WWW-Authenticate"] == "Bearer"
    problem(revoked)

    for forged in ("mp_live_" + "A" * 43, made.secret[:-1] + "x", "nonsense", ""):
        response = ApiClient(forged).get("/api/v1/messages")
        assert response.status_code == 401, forged
        problem(response)
    assert ApiClient(None).get("/api/v1/messages").status_code == 401

    dana_key = key_for(team, dana)
    Membership.objects.filter(team=team, user=dana).delete()
    assert ApiClient(dana_key.secret).get("/api/v1/messages").status_code == 401


def test_last_used_is_written_at_most_once_a_minute(team, alice):
    made = key_for(team, alice)
    api = ApiClient(made.secret)
    api.get("/api/v1/messages")
    first = ApiKey.objects.get().last_used_at
    assert first is not None
    api.get("/api/v1/messages")
    assert ApiKey.objects.get().last_used_at == first
    ApiKey.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    api.get("/api/v1/messages")
    assert ApiKey.objects.get().last_used_at > first


def test_the_request_carries_the_key_and_its_maker_for_the_audit_log(team, alice, rf):
    from rest_framework.request import Request

    from messaging.api.auth import ApiKeyAuthentication

    made = key_for(team, alice)
    django_request = rf.get("/api/v1/messages", HTTP_AUTHORIZATION=f"Bearer {made.secret}")
    user, api_key = ApiKeyAuthentication().authenticate(Request(django_request))
    assert django_request.api_key == made.api_key == api_key
    assert django_request.user == alice == user


def test_throttled_per_key_with_retry_after(team, alice, settings):
    settings.API_THROTTLE_RATE = "3/min"
    api = ApiClient(key_for(team, alice).secret)
    other = ApiClient(key_for(team, alice, name="Other").secret)
    for _ in range(3):
        assert api.get("/api/v1/messages").status_code == 200
    response = api.get("/api/v1/messages")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    problem(response)
    assert other.get("/api/v1/messages").status_code == 200


def test_the_browser_session_works_with_csrf(alice, team):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    session = client.session
    session["current_team_id"] = team.pk
    session.save()
    assert client.get("/api/v1/messages").status_code == 200
    response = client.post("/api/v1/contacts", {}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in problem(response)["detail"]


def test_create_api_key_command_prints_the_key_last(team, alice):
    out = StringIO()
    call_command(
        "create_api_key", "--user", alice.email, "--team", team.slug, "--role", "viewer",
        "--name", "Reports", stdout=out,
    )  # fmt: skip
    secret = out.getvalue().strip().splitlines()[-1]
    assert secret.startswith("mp_live_")
    api_key = ApiKey.objects.get(key_hash=keys.digest(secret))
    assert (api_key.role, api_key.name, api_key.created_by) == ("viewer", "Reports", alice)


@pytest.mark.parametrize(
    "arguments",
    [
        ["--user", "nobody@example.com"],
        ["--user", "bob@example.com", "--team", "acme"],
        ["--user", "alice@example.com"],
        ["--user", "alice@example.com", "--team", "nope"],
    ],
)
def test_create_api_key_command_refuses_bad_input(team, arguments):
    with pytest.raises(CommandError):
        call_command("create_api_key", *arguments, stdout=StringIO())
    assert not ApiKey.objects.exists()


def test_schema_and_docs_are_served_by_the_portal_itself(client):
    schema = client.get("/api/v1/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/messages", "/api/v1/contacts", "/api/v1/conversations"} <= set(paths)
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn" not in html.lower()
    assert (
        "'unsafe-inline'"
        not in docs["Content-Security-Policy"].split("script-src")[1].split(";")[0]
    )


def test_purging_idempotency_keys_after_a_day(team):
    from messaging.api.tasks import purge_idempotency_keys
    from messaging.models import IdempotencyRecord

    old = IdempotencyRecord.objects.create(team=team, key="old", fingerprint="x")
    IdempotencyRecord.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    IdempotencyRecord.objects.create(team=team, key="new", fingerprint="x")
    assert purge_idempotency_keys() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


def test_revoking_needs_an_admin_of_the_keys_team(team, alice, bob_client, charlie_client):
    made = key_for(team, alice)
    path = f"/teams/{team.slug}/api-keys/{made.api_key.pk}/revoke/"
    assert bob_client.post(path).status_code == 403
    assert charlie_client.post(path).status_code == 404
    charlie_team = Membership.objects.get(user__email="charlie@example.com").team
    charlie_path = f"/teams/{charlie_team.slug}/api-keys/{made.api_key.pk}/revoke/"
    charlie_client.post(charlie_path)
    assert ApiKey.objects.get().revoked_at is None
    assert ApiClient(made.secret).get("/api/v1/messages").status_code == 200
