"""Message templates: who sees and changes which, merge fields checked on save, the preview with a
real contact and its SMS segments, the missing-field policy through a real compose submission, and
the picker in compose and in the inbox reply box (with the template's files)."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from messaging.inbox import storing
from messaging.models import (
    Attachment,
    Contact,
    ContactNumber,
    Conversation,
    DraftAttachment,
    MessageSource,
    MessageTemplate,
    OutboundMessage,
    TemplateAttachment,
)
from messaging.ringcentral.records import parse_message
from tests import media_samples as samples
from tests.factories import make_connection, make_number
from tests.test_inbox import inbound

OURS = "+16505550100"
ANN = "+16505550111"
BO = "+16505550122"
STRANGER = "+16505550133"


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
def sent(monkeypatch):
    """What the outbox hands to a worker after commit (nothing is sent in these tests)."""
    from messaging.sending import tasks

    calls = []

    class Recorder:
        @staticmethod
        def delay(message_id):
            calls.append(message_id)

    monkeypatch.setattr(tasks, "send_message", Recorder, raising=False)
    return calls


@pytest.fixture
def number(team, bob):
    return make_number(make_connection(team, bob, shared=True), OURS)


def contact(team, name, phone, *, company="", custom=None):
    found = Contact.objects.create(
        team=team, name=name, company=company, custom_fields=custom or {}
    )
    ContactNumber.objects.create(contact=found, team=team, number=phone)
    return found


@pytest.fixture
def ann(team):
    return contact(team, "Ann Lee", ANN, company="Acme Dental", custom={"Member ID": "A-7"})


@pytest.fixture
def bo(team):
    return contact(team, "Bo Chan", BO)


def new_template(client, **fields):
    data = {"name": "Reminder", "text": "Hi", "missing_policy": "fallback", "scope": "personal"}
    data.update(fields)
    return client.post("/templates/new/", data)


def field_errors(response) -> list[str]:
    html = response.content.decode()
    blocks = re.findall(r'<ul class="field-errors errorlist"[^>]*>(.*?)</ul>', html, re.S)
    return [unescape(m) for b in blocks for m in re.findall(r"<li>(.*?)</li>", b, re.S)]


def flashes(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


# --- Visibility and roles ---------------------------------------------------------------------


def test_a_personal_template_is_seen_and_changed_by_its_owner_only(
    bob_client, alice_client, victor_client, charlie_client
):
    response = new_template(bob_client, name="My follow-up", text="Thanks for calling")
    assert response.status_code == 302
    template = MessageTemplate.objects.get()
    assert template.owner.email == "bob@example.com"
    assert "My follow-up" in bob_client.get("/templates/").content.decode()
    # The team's owner, a viewer and an outsider do not see it at all.
    for client in (alice_client, victor_client, charlie_client):
        assert "My follow-up" not in client.get("/templates/").content.decode()
        assert client.get(f"/templates/{template.pk}/").status_code == 404
        assert client.post(f"/templates/{template.pk}/delete/").status_code == 404
    response = bob_client.post(
        f"/templates/{template.pk}/",
        {"name": "My follow-up", "text": "Thanks!", "missing_policy": "fallback"},
    )
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.text == "Thanks!"


def test_team_templates_are_read_by_everyone_and_changed_by_admins(
    alice_client, bob_client, victor_client, charlie_client
):
    assert new_template(alice_client, name="Opening hours", scope="team").status_code == 302
    template = MessageTemplate.objects.get()
    assert template.owner is None
    for client in (bob_client, victor_client):
        page = client.get(f"/templates/{template.pk}/")
        assert page.status_code == 200
        assert "Your role lets you use this template, not change it." in page.content.decode()
        edit = client.post(
            f"/templates/{template.pk}/",
            {"name": "Changed", "text": "x", "missing_policy": "fallback"},
        )
        assert edit.status_code == 403
        assert client.post(f"/templates/{template.pk}/delete/").status_code == 403
    assert charlie_client.get(f"/templates/{template.pk}/").status_code == 404
    template.refresh_from_db()
    assert template.name == "Opening hours"
    # A sender makes personal templates only; a viewer none.
    refused = new_template(bob_client, name="Team one", scope="team")
    assert refused.status_code == 400
    assert any("Select a valid choice" in e or "team admins" in e for e in field_errors(refused))
    assert victor_client.get("/templates/new/").status_code == 403
    assert new_template(victor_client).status_code == 403
    assert MessageTemplate.objects.count() == 1
    # The admin deletes it.
    assert alice_client.post(f"/templates/{template.pk}/delete/").status_code == 302
    assert not MessageTemplate.objects.exists()


def test_an_unknown_field_is_refused_on_save_and_a_custom_field_is_known(ann, bob_client):
    response = new_template(bob_client, text="Hi {nickname}, see you {day")
    assert response.status_code == 400
    assert not MessageTemplate.objects.exists()
    response = new_template(bob_client, text="Hi {nickname}")
    assert response.status_code == 400
    assert any("Unknown merge field: {nickname}" in e for e in field_errors(response))
    assert not MessageTemplate.objects.exists()
    # "Member ID" is a custom field of a contact of the team: {member_id} is known.
    response = new_template(bob_client, text="Hi {first_name}, your number is {member_id}")
    assert response.status_code == 302


# --- Preview and segments ---------------------------------------------------------------------


def test_the_preview_merges_with_a_real_contact_and_counts_segments(
    ann, bob_client, charlie_client, charlie
):
    text = "Hi {first_name} from {company}, ID {member_id}"
    response = bob_client.post("/templates/preview/", {"text": text, "contact": ann.pk})
    assert response.status_code == 200
    data = response.json()
    assert data["text"] == "Hi Ann from Acme Dental, ID A-7"
    assert (data["encoding"], data["segments"], data["units"]) == ("GSM-7", 1, 31)
    assert data["missing"] == [] and data["unknown"] == ""
    # One emoji makes the whole text UCS-2: 70 units a segment, 67 a part once split.
    long = bob_client.post("/templates/preview/", {"text": "😀" + "a" * 70, "contact": ann.pk})
    assert (long.json()["encoding"], long.json()["segments"]) == ("UCS-2", 2)
    # Another team's contact is not found; a malformed field is a clear 400.
    other = Contact.objects.create(team=charlie.memberships.get().team, name="Zed")
    assert (
        bob_client.post("/templates/preview/", {"text": text, "contact": other.pk}).status_code
        == 404
    )
    bad = bob_client.post("/templates/preview/", {"text": "Hi {first name}"})
    assert bad.status_code == 400 and "not a merge field" in bad.json()["error"]


# --- The missing-field policy in a real compose submission ------------------------------------


def compose_with(client, number, template, to, **extra):
    data = {
        "sender": str(number.pk),
        "to": "\n".join(to),
        "text": template.text,
        "mode": "separate",
        "template": str(template.pk),
    }
    data.update(extra)
    return client.post("/messages/compose/", data, follow=True)


def test_skip_policy_leaves_out_a_recipient_without_a_value_and_says_why(
    ann, bo, number, bob, team, bob_client, sent
):
    template = MessageTemplate.objects.create(
        team=team,
        owner=bob,
        name="Visit",
        text="Hi {first_name}, {company} expects you",
        missing_policy="skip",
    )
    response = compose_with(bob_client, number, template, [ANN, BO, STRANGER])
    assert response.status_code == 200
    messages = OutboundMessage.objects.all()
    assert [m.text for m in messages] == ["Hi Ann, Acme Dental expects you"]
    assert list(messages.get().recipients.values_list("phone_number", flat=True)) == [ANN]
    said = flashes(response)
    assert "Skipped 2" in said
    assert "(555) 555-0122" in said or "555-0122" in said
    assert "no value for {company}" in said
    assert "not a contact" in said
    assert messages.get().status == "queued"


def test_fallback_policy_sends_everyone_their_own_merged_text(
    ann, bo, number, bob, team, bob_client, sent
):
    template = MessageTemplate.objects.create(
        team=team,
        owner=bob,
        name="Visit",
        text="Hi {first_name}, {company} expects you",
        missing_policy="fallback",
        fallback="our office",
    )
    compose_with(bob_client, number, template, [ANN, BO])
    texts = {m.recipients.get().phone_number: m.text for m in OutboundMessage.objects.all()}
    assert texts == {
        ANN: "Hi Ann, Acme Dental expects you",
        BO: "Hi Bo, our office expects you",
    }


def test_everyone_skipped_or_fields_in_a_group_are_refused_and_nothing_is_created(
    bo, number, bob, team, bob_client, sent
):
    template = MessageTemplate.objects.create(
        team=team, owner=bob, name="Visit", text="{company} expects you", missing_policy="skip"
    )
    response = compose_with(bob_client, number, template, [BO])
    assert response.status_code == 400
    assert any("Every recipient would be skipped" in e for e in field_errors(response))
    response = compose_with(bob_client, number, template, [BO, ANN], mode="group")
    assert response.status_code == 400
    assert any("A group message has one text" in e for e in field_errors(response))
    assert not OutboundMessage.objects.exists() and sent == []


# --- The picker -------------------------------------------------------------------------------


@pytest.fixture
def with_file(ann, bob, team, bob_client):
    template = MessageTemplate.objects.create(
        team=team, owner=bob, name="Directions", text="Hi {first_name}, here is the map"
    )
    png = SimpleUploadedFile("map.png", samples.png(), content_type="image/png")
    response = bob_client.post(f"/templates/{template.pk}/files/", {"attachments": [png]})
    assert response.status_code == 302
    return template


def test_picking_a_template_in_compose_fills_the_text_and_attaches_its_files(
    with_file, number, bob_client, sent
):
    stored = TemplateAttachment.objects.get()
    assert default_storage.exists(stored.file.name)
    page = bob_client.post(
        "/messages/compose/",
        {"sender": str(number.pk), "to": ANN, "pick_template": with_file.pk, "use_template": "1"},
    )
    assert page.status_code == 200
    html = unescape(page.content.decode())
    assert "Hi Ann, here is the map" in html
    assert "Merged with Ann Lee." in html
    assert "GSM-7 · 1 SMS segment" in html
    draft = DraftAttachment.objects.get()
    assert draft.original_name == "map.png" and draft.file.name == stored.file.name
    form_key = re.search(r'action="/messages/compose/\?form=([0-9a-f-]+)"', html).group(1)
    # Sending it: the template's file goes with the message and stays the template's.
    response = bob_client.post(
        f"/messages/compose/?form={form_key}",
        {
            "sender": str(number.pk),
            "to": ANN,
            "text": "Hi Ann, here is the map",
            "mode": "separate",
            "template": str(with_file.pk),
            "uploads": str(draft.key),
        },
    )
    assert response.status_code == 302
    attachment = Attachment.objects.get()
    assert attachment.file.name == stored.file.name
    assert default_storage.exists(stored.file.name)


def test_with_several_recipients_the_fields_stay_and_a_note_says_why(
    with_file, bo, number, bob_client
):
    page = bob_client.post(
        "/messages/compose/",
        {
            "sender": str(number.pk),
            "to": f"{ANN}\n{BO}",
            "pick_template": with_file.pk,
            "use_template": "1",
        },
    )
    html = unescape(page.content.decode())
    assert "Hi {first_name}, here is the map" in html
    assert "each recipient gets their own message" in html


def test_picking_a_template_in_the_reply_box_merges_with_the_contact_and_attaches_files(
    with_file, team, bob, bob_client, sent
):
    connection = make_connection(team, bob, shared=True, extension_id="102")
    make_number(connection, "+16505550177")
    storing.store_record(
        connection,
        parse_message(inbound("Where are you?", sender=ANN, to=("+16505550177",))),
        source=MessageSource.WEBHOOK,
    )
    conversation = Conversation.objects.get()
    page = bob_client.post(
        f"/inbox/{conversation.pk}/reply/", {"pick_template": with_file.pk, "use_template": "1"}
    )
    assert page.status_code == 200
    html = unescape(page.content.decode())
    assert "Hi Ann, here is the map" in html and "map.png" in html
    draft = DraftAttachment.objects.get()
    form_key = re.search(r'name="form_key" value="([0-9a-f-]+)"', html).group(1)
    response = bob_client.post(
        f"/inbox/{conversation.pk}/reply/",
        {
            "text": "Hi Ann, here is the map",
            "form_key": form_key,
            "uploads": str(draft.key),
            "template": str(with_file.pk),
        },
    )
    assert response.status_code == 302
    message = OutboundMessage.objects.get()
    assert message.text == "Hi Ann, here is the map"
    assert message.attachments.get().original_name == "map.png"


def test_a_template_another_member_cannot_read_is_not_picked(with_file, number, alice_client):
    response = alice_client.post(
        "/messages/compose/",
        {"sender": str(number.pk), "to": ANN, "pick_template": with_file.pk, "use_template": "1"},
    )
    assert response.status_code == 404


def test_a_template_file_that_is_refused_or_too_large_is_said_and_not_kept(
    ann, bob, team, bob_client, settings
):
    template = MessageTemplate.objects.create(team=team, owner=bob, name="Files", text="Hi")
    program = SimpleUploadedFile("setup.exe", samples.windows_program())
    response = bob_client.post(
        f"/templates/{template.pk}/files/", {"attachments": [program]}, follow=True
    )
    assert response.status_code == 200
    assert "setup.exe" in flashes(response)
    settings.COMPOSE_MAX_REQUEST_BYTES = 10_000
    big = SimpleUploadedFile("big.png", samples.png(400, 400, text="x" * 20_000))
    response = bob_client.post(
        f"/templates/{template.pk}/files/", {"attachments": [big]}, follow=True
    )
    assert "this portal accepts at most" in flashes(response)
    assert not TemplateAttachment.objects.exists()
