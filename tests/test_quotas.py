"""Quotas: sign-up is open and uploading needs no RingCentral link, so the bytes waiting on
compose pages are capped per person and per team, and so is the number of teams one person owns."""

import re
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from messaging.models import DraftAttachment, Membership, Role, Team
from messaging.teams import actions as teams
from tests import media_samples as samples
from tests.factories import make_connection, make_number

FORM = "?form=5d1c2b8e-6f1a-4c59-9d2e-0b7f1c3a4e51"
URL = "/messages/compose/" + FORM
UPLOAD = "/messages/compose/upload/" + FORM


@pytest.fixture(autouse=True)
def _private_media(tmp_path, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media", "base_url": None},
        },
    }
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pdf(name, size):
    return SimpleUploadedFile(name, samples.pdf(size), content_type="application/pdf")


def upload(client, name, size):
    return client.post(UPLOAD, {"file": pdf(name, size)})


def page_errors(response):
    html = response.content.decode()
    found = re.findall(r'<ul class="field-errors errorlist"[^>]*>(.*?)</ul>', html, re.S)
    return [unescape(m) for block in found for m in re.findall(r"<li>(.*?)</li>", block, re.S)]


def test_uploads_past_the_personal_quota_are_refused_and_what_is_kept_stays(
    bob_client, bob, team, settings
):
    settings.COMPOSE_UPLOAD_QUOTA_PER_USER = 5_000
    assert upload(bob_client, "one.pdf", 3_000).status_code == 201
    refused = upload(bob_client, "two.pdf", 3_000)
    assert refused.status_code == 400
    message = refused.json()["error"]
    assert "your files waiting to be sent" in message and "Send or remove some first" in message
    assert [d.original_name for d in DraftAttachment.objects.filter(user=bob)] == ["one.pdf"]
    # A smaller file still fits.
    assert upload(bob_client, "small.pdf", 1_500).status_code == 201


def test_the_personal_quota_counts_every_team_of_the_person(bob_client, bob, team, settings):
    settings.COMPOSE_UPLOAD_QUOTA_PER_USER = 5_000
    assert upload(bob_client, "acme.pdf", 3_000).status_code == 201
    personal = Team.objects.get(memberships__user=bob, is_personal=True)
    bob_client.post("/teams/switch/", {"team": personal.slug})
    assert upload(bob_client, "small.pdf", 1_000).status_code == 201
    assert DraftAttachment.objects.get(original_name="small.pdf").team == personal
    assert upload(bob_client, "mine.pdf", 3_000).status_code == 400


def test_the_team_quota_stops_a_team_whose_members_each_stay_under_theirs(
    bob_client, alice_client, team, settings
):
    settings.COMPOSE_UPLOAD_QUOTA_PER_TEAM = 5_000
    assert upload(alice_client, "alice.pdf", 3_000).status_code == 201
    refused = upload(bob_client, "bob.pdf", 3_000)
    assert refused.status_code == 400
    assert f"the files waiting to be sent in {team}" in refused.json()["error"]


def test_removed_and_sent_files_give_their_room_back(bob_client, bob, team, settings):
    settings.COMPOSE_UPLOAD_QUOTA_PER_USER = 5_000
    first = upload(bob_client, "one.pdf", 3_000).json()["upload"]
    assert upload(bob_client, "two.pdf", 3_000).status_code == 400
    assert bob_client.post(f"/messages/compose/upload/{first['id']}/delete/").status_code == 200
    assert upload(bob_client, "two.pdf", 3_000).status_code == 201


def test_a_form_without_script_names_each_file_the_quota_did_not_keep(
    bob_client, bob, team, settings
):
    settings.COMPOSE_UPLOAD_QUOTA_PER_USER = 5_000
    number = make_number(make_connection(team, bob), "+16505550100")
    response = bob_client.post(
        URL,
        {
            "sender": str(number.pk),
            "to": "not a number",
            "text": "Plans",
            "mode": "separate",
            "attachments": [pdf("a.pdf", 3_000), pdf("b.pdf", 3_000)],
        },
    )
    assert response.status_code == 400
    assert [d.original_name for d in DraftAttachment.objects.all()] == ["a.pdf"]
    assert any(
        e.startswith("Not kept: “b.pdf”") and "Send or remove some first" in e
        for e in page_errors(response)
    )


def test_a_person_owns_at_most_the_configured_number_of_teams(alice_client, alice, bob, settings):
    settings.TEAMS_PER_USER = 2
    assert alice_client.post("/teams/new/", {"name": "Second"}).status_code == 302
    before = Team.objects.count()
    refused = alice_client.post("/teams/new/", {"name": "Third"})
    assert refused.status_code == 400
    assert "the most one person may own" in refused.content.decode()
    assert Team.objects.count() == before
    # Handing one over makes room again; the personal team never counts.
    second = Team.objects.get(name="Second")
    newcomer = Membership.objects.create(team=second, user=bob, role=Role.ADMIN)
    teams.transfer_ownership(Membership.objects.get(team=second, user=alice), newcomer)
    assert alice_client.post("/teams/new/", {"name": "Third"}).status_code == 302
