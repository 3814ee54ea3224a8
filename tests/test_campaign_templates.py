"""A campaign started from a template: the picker on the new and edit pages fills the text, the
missing-field policy and the fallback text, the template's files are copied into the campaign
(so changing the template later leaves the campaign as it was), a template the member may not
read is a 404, and the pre-flight page measures each merged message."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from messaging.campaigns import creation
from messaging.models import (
    Campaign,
    MessageTemplate,
    RecipientState,
    SkipKind,
    TemplateAttachment,
)
from tests import media_samples as samples
from tests.factories import make_number
from tests.test_campaigns import add_contact, csv_upload, number
from tests.test_campaigns import sender_number as sender_number  # noqa: F401 - a fixture


@pytest.fixture(autouse=True)
def _private_media(tmp_path, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media", "base_url": None},
        },
    }


@pytest.fixture
def directions(team, bob, bob_client):
    """Bob's personal template, with a fallback and a photo."""
    template = MessageTemplate.objects.create(
        team=team,
        owner=bob,
        name="Directions",
        text="Hi {first_name}, {company} is expecting you.",
        missing_policy="fallback",
        fallback="our office",
    )
    png = SimpleUploadedFile("map.png", samples.png(), content_type="image/png")
    response = bob_client.post(f"/templates/{template.pk}/files/", {"attachments": [png]})
    assert response.status_code == 302
    return template


def prefilled(html: str) -> dict:
    """The values the campaign form shows: text, checked policy, fallback text, template."""
    html = unescape(html)
    text = re.search(r"<textarea[^>]*name=\"text\"[^>]*>(.*?)</textarea>", html, re.S).group(1)
    policy = re.search(r'name="missing_policy" value="(\w+)"[^>]*checked', html)
    tag = re.search(r'<input[^>]*name="fallback_text"[^>]*>', html).group(0)
    fallback = re.search(r'value="([^"]*)"', tag)
    picked = re.search(r'<input type="hidden" name="template" value="(\d+)">', html)
    return {
        "text": text.strip("\n"),
        "missing_policy": policy.group(1) if policy else "",
        "fallback_text": fallback.group(1) if fallback else "",
        "template": picked.group(1) if picked else "",
    }


def post_from(client, sender_number, page_html, **extra):  # noqa: F811 - sender_number is a value
    data = {
        "name": "Visit",
        "senders": [str(sender_number.pk)],
        "source": "tag",
        "tag": "patients",
        **{k: v for k, v in prefilled(page_html).items() if v},
        **extra,
    }
    return client.post("/campaigns/new/", data)


def test_the_picker_fills_text_policy_fallback_and_lists_the_templates_files(
    directions, team, bob_client
):
    MessageTemplate.objects.create(team=team, name="Team note", text="Hello from the team")
    page = bob_client.get("/campaigns/new/")
    html = unescape(page.content.decode())
    assert page.status_code == 200
    assert "Directions (yours)" in html and "Team note (team)" in html
    assert 'id="template-picked"' not in html

    page = bob_client.get(f"/campaigns/new/?template={directions.pk}")
    assert page.status_code == 200
    html = page.content.decode()
    assert prefilled(html) == {
        "text": "Hi {first_name}, {company} is expecting you.",
        "missing_policy": "fallback",
        "fallback_text": "our office",
        "template": str(directions.pk),
    }
    shown = unescape(html)
    assert "Template “Directions”." in shown and "map.png" in shown
    assert "Length before merging: 44 UTF-16 units · GSM-7 · 1 SMS segment" in shown


def test_the_campaign_gets_its_own_copy_of_the_templates_files(
    directions,
    team,
    bob_client,
    sender_number,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    add_contact(team, "Ann Lee", number(1), tags=["patients"], company="Acme Dental")
    page = bob_client.get(f"/campaigns/new/?template={directions.pk}").content.decode()
    response = post_from(bob_client, sender_number, page)
    assert response.status_code == 302, unescape(response.content.decode())[-3000:]
    campaign = Campaign.objects.get()
    [copied] = campaign.files.all()
    [original] = TemplateAttachment.objects.all()
    assert copied.original_name == "map.png" and copied.sha256 == original.sha256
    assert copied.file.name != original.file.name
    assert not copied.thumbnail.name or copied.thumbnail.name != original.thumbnail.name
    assert campaign.text == directions.text and campaign.fallback_text == "our office"

    # The template changes and loses its file: the campaign keeps its text and its file.
    directions.text = "Something else entirely"
    directions.save()
    with django_capture_on_commit_callbacks(execute=True):
        response = bob_client.post(f"/templates/{directions.pk}/files/{original.pk}/delete/")
    assert response.status_code == 302
    assert not default_storage.exists(original.file.name)
    campaign.refresh_from_db()
    assert campaign.text == "Hi {first_name}, {company} is expecting you."
    assert default_storage.exists(copied.file.name)
    with default_storage.open(copied.file.name, "rb") as handle:
        assert handle.read() == samples.png()
    assert campaign.recipients.get().text == "Hi Ann, Acme Dental is expecting you."


def test_a_template_the_member_cannot_read_is_404_and_nothing_is_created(
    directions,
    team,
    alice,
    alice_client,
    charlie_client,
    sender_number,  # noqa: F811
):
    add_contact(team, "Ann Lee", number(1), tags=["patients"])
    # Bob's personal template: Alice (an admin of the team) does not see it, Charlie is outside.
    assert "Directions" not in alice_client.get("/campaigns/new/").content.decode()
    assert alice_client.get(f"/campaigns/new/?template={directions.pk}").status_code == 404
    for bad in ("abc", "99999", "-1"):
        assert alice_client.get(f"/campaigns/new/?template={bad}").status_code == 404
    response = alice_client.post(
        "/campaigns/new/",
        {
            "name": "Visit",
            "senders": [str(sender_number.pk)],
            "source": "tag",
            "tag": "patients",
            "text": "Hi",
            "missing_policy": "skip",
            "template": str(directions.pk),
        },
    )
    assert response.status_code == 404
    assert not Campaign.objects.exists()
    assert charlie_client.get(f"/campaigns/new/?template={directions.pk}").status_code == 404


def test_a_template_merges_with_its_fallback_or_skips_recipients_without_a_value(
    directions,
    team,
    bob,
    bob_client,
    sender_number,  # noqa: F811
):
    add_contact(team, "Ann Lee", number(1), tags=["patients"], company="Acme Dental")
    add_contact(team, "Bo Ray", number(2), tags=["patients"])
    # Fallback: the recipient without a company gets the fallback text.
    page = bob_client.get(f"/campaigns/new/?template={directions.pk}").content.decode()
    assert post_from(bob_client, sender_number, page, name="With fallback").status_code == 302
    campaign = Campaign.objects.get(name="With fallback")
    assert [r.text for r in campaign.recipients.order_by("position")] == [
        "Hi Ann, Acme Dental is expecting you.",
        "Hi Bo, our office is expecting you.",
    ]
    # Skip: the same text through a template that skips, and Bo is left out with the reason.
    skipping = MessageTemplate.objects.create(
        team=team, name="Strict", text=directions.text, missing_policy="skip"
    )
    page = bob_client.get(f"/campaigns/new/?template={skipping.pk}").content.decode()
    assert prefilled(page)["missing_policy"] == "skip"
    assert post_from(bob_client, sender_number, page, name="Skipping").status_code == 302
    campaign = Campaign.objects.get(name="Skipping")
    ann, bo = campaign.recipients.order_by("position")
    assert ann.state == RecipientState.PENDING
    assert bo.state == RecipientState.SKIPPED and bo.skip_kind == SkipKind.MISSING_FIELD
    assert bo.skip_reason == "No value for {company}."
    assert not campaign.files.exists()


def test_the_preflight_page_measures_each_merged_message(
    bob_client,
    sender_number,  # noqa: F811
):
    upload = csv_upload(
        [["Pat", number(1), "Monday"], ["Sam", number(2), "Tuesday 🙂 " + "x" * 80]],
    )
    response = bob_client.post(
        "/campaigns/new/",
        {
            "name": "Lengths",
            "senders": [str(sender_number.pk)],
            "source": "file",
            "list_file": upload,
            "text": "Hi {first_name}, see you {appointment}.",
            "missing_policy": "skip",
        },
    )
    assert response.status_code == 302
    html = unescape(bob_client.get(response["Location"]).content.decode())
    shown = re.search(r'data-preflight="length">(.*?)</dd>', html).group(1)
    assert shown == (
        "From 23 UTF-16 units · GSM-7 · 1 SMS segment to 108 UTF-16 units · UCS-2 · 2 SMS segments"
    )
    assert 'data-preflight="segments">3<' in html


def test_the_edit_page_takes_a_templates_text_and_files_in_place_of_the_campaigns(
    directions,
    team,
    alice,
    bob_client,
    sender_number,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    add_contact(team, "Bo Ray", number(2), tags=["patients"])
    plain = MessageTemplate.objects.create(
        team=team, name="Plain", text="See you soon, {first_name}.", missing_policy="skip"
    )
    page = bob_client.get(f"/campaigns/new/?template={directions.pk}").content.decode()
    assert post_from(bob_client, sender_number, page).status_code == 302
    campaign = Campaign.objects.get()
    [flyer] = campaign.files.all()

    # A template without files: its text, and the campaign loses its file when saved.
    edit = bob_client.get(f"/campaigns/{campaign.pk}/edit/?template={plain.pk}").content.decode()
    filled = prefilled(edit)
    assert filled["text"] == "See you soon, {first_name}." and filled["missing_policy"] == "skip"
    assert 'id="files-dropped"' in edit
    assert bob_client.get(f"/campaigns/{campaign.pk}/edit/?template=abc").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        response = bob_client.post(
            f"/campaigns/{campaign.pk}/edit/", {"name": "Visit", "missing_policy": "skip", **filled}
        )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.recipients.get().text == "See you soon, Bo."
    assert not campaign.files.exists() and not default_storage.exists(flyer.file.name)

    # Back to the template with the photo: a fresh copy of it becomes the campaign's file.
    edit = bob_client.get(f"/campaigns/{campaign.pk}/edit/?template={directions.pk}")
    response = bob_client.post(
        f"/campaigns/{campaign.pk}/edit/",
        {"name": "Visit", **prefilled(edit.content.decode())},
    )
    assert response.status_code == 302
    [copy] = campaign.files.all()
    assert copy.original_name == "map.png" and default_storage.exists(copy.file.name)
    assert copy.file.name != TemplateAttachment.objects.get().file.name
    assert campaign.recipients.get().text == "Hi Bo, our office is expecting you."

    # A template from outside what Bob may read is refused when saving too.
    other = MessageTemplate.objects.create(team=team, owner=alice, name="Alice's")
    response = bob_client.post(
        f"/campaigns/{campaign.pk}/edit/", {"name": "Visit", "text": "x", "template": other.pk}
    )
    assert response.status_code == 404


def test_a_templates_files_on_a_number_without_mms_are_refused_and_nothing_changes(
    directions,
    team,
    bob,
    bob_client,
    sender_number,  # noqa: F811
):
    add_contact(team, "Bo Ray", number(2), tags=["patients"])
    text_only = make_number(sender_number.connection, "+16505550109", mms=False)
    campaign = creation.create(
        team.memberships.get(user=bob),
        creation.Request(
            name="Visit",
            sender_ids=[str(text_only.pk)],
            text="Hello {first_name}",
            source="tag",
            tag="patients",
        ),
    )
    edit = bob_client.get(f"/campaigns/{campaign.pk}/edit/?template={directions.pk}")
    response = bob_client.post(
        f"/campaigns/{campaign.pk}/edit/", {"name": "Visit", **prefilled(edit.content.decode())}
    )
    assert response.status_code == 400
    assert "not enabled for MMS" in unescape(response.content.decode())
    campaign.refresh_from_db()
    assert campaign.text == "Hello {first_name}" and not campaign.files.exists()
    assert campaign.recipients.get().text == "Hello Bo"
