"""The REST API's resources (messaging/api/): messages, sender numbers, conversations, contacts
and imports, through the same services as the pages, with the emulator as RingCentral."""

from __future__ import annotations

import io
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging.inbox import sync as inbox_sync
from messaging.models import (
    Attachment,
    Contact,
    Conversation,
    ImportJob,
    MessageStatus,
    OutboundMessage,
    Role,
)
from messaging.sending import tasks as sending_tasks
from messaging.sending.attempt import attempt
from tests import media_samples
from tests.api_fixtures import FROM, PAT, SAM, ApiClient, key_for, problem
from tests.factories import make_message
from tests.rc_fixtures import journal
from tests.tracking_helpers import fresh_limits  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("fresh_limits")


def sends(emu) -> list:
    return [e for e in journal(emu, "/sms") if e.method == "POST"]


# --- Messages ------------------------------------------------------------------------------------


def test_send_json_queues_one_message_per_recipient_as_the_keys_maker(
    emulator, api_link, sender_api, alice
):
    response = sender_api.post(
        "/api/v1/messages", {"from": FROM, "to": [PAT, SAM], "text": "See you at 10."}
    )

    assert response.status_code == 201, response.content
    created = response.json()["messages"]
    assert [m["to"] for m in created] == [[PAT], [SAM]]
    assert {m["status"] for m in created} == {"queued"}
    assert {m["from"] for m in created} == {FROM}
    assert all(m["created_by"] == alice.email for m in created)
    assert OutboundMessage.objects.filter(created_by=alice).count() == 2
    # Sent for real through the outbox and the emulator.
    for message in created:
        assert attempt(message["id"]).what == "sent"
    assert len(sends(emulator)) == 2


def test_send_group_makes_one_message(emulator, api_link, sender_api):
    response = sender_api.post(
        "/api/v1/messages", {"from": FROM, "to": [PAT, SAM], "text": "Hi all", "group": True}
    )
    assert response.status_code == 201
    [message] = response.json()["messages"]
    assert message["group"] is True and sorted(message["to"]) == [PAT, SAM]


def test_send_multipart_with_a_photo_is_an_mms(emulator, api_link, sender_api):
    photo = io.BytesIO(media_samples.png(80, 60))
    photo.name = "map.png"
    response = sender_api.post_form(
        "/api/v1/messages",
        {"from": FROM, "to": [PAT], "text": "Here is the map", "attachments": [photo]},
    )
    assert response.status_code == 201, response.content
    [message] = response.json()["messages"]
    assert message["attachments"][0]["name"] == "map.png"
    assert Attachment.objects.filter(message_id=message["id"]).count() == 1
    assert attempt(message["id"]).what == "sent"
    [sent] = sends(emulator)
    assert "multipart" in (sent.header("Content-Type") or "").lower()


def test_eleven_attachments_are_refused_by_the_compose_limits(emulator, api_link, sender_api):
    files = []
    for index in range(11):
        upload = io.BytesIO(media_samples.png(16, 16))
        upload.name = f"p{index}.png"
        files.append(upload)
    response = sender_api.post_form(
        "/api/v1/messages", {"from": FROM, "to": [PAT], "text": "x", "attachments": files}
    )
    document = problem(response)
    assert response.status_code == 422
    assert "attachments" in document["errors"]
    assert not OutboundMessage.objects.exists()


def test_compose_rules_answer_422_with_field_errors(emulator, api_link, sender_api):
    response = sender_api.post(
        "/api/v1/messages", {"from": "+15550000000", "to": ["not a number"], "text": "Hi"}
    )
    document = problem(response)
    assert response.status_code == 422
    assert set(document["errors"]) >= {"sender"}
    assert not OutboundMessage.objects.exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"from": FROM, "to": [PAT], "text": "Hi", "colour": "red"}, "colour"),
        ({"from": FROM, "to": PAT, "text": "Hi"}, "to"),
        ({"from": FROM, "to": [PAT], "text": 5}, "text"),
        ({"from": 16505550140, "to": [PAT], "text": "Hi"}, "from"),
        ({"from": FROM, "to": [PAT], "text": "Hi", "group": "yes"}, "group"),
        ({"from": FROM, "to": [], "text": "Hi"}, "to"),
        ({"to": [PAT], "text": "Hi"}, "from"),
    ],
)
def test_wrong_types_and_unknown_fields_are_400_naming_the_field(
    emulator, api_link, sender_api, body, field
):
    response = sender_api.post("/api/v1/messages", body)
    document = problem(response)
    assert response.status_code == 400
    assert field in document["errors"], document


def test_a_body_that_is_not_json_is_a_400_problem(sender_api, api_link):
    response = sender_api.raw("post", "/api/v1/messages", b"{not json", "application/json")
    assert response.status_code == 400
    problem(response)
    response = sender_api.raw("post", "/api/v1/messages", b"[1, 2]", "application/json")
    assert response.status_code == 400
    problem(response)


def test_a_huge_body_is_refused_unread_with_413(sender_api, api_link, settings):
    settings.API_MAX_JSON_BYTES = 1000
    body = b'{"from": "+16505550140", "to": ["+16505550150"], "text": "' + b"x" * 5000 + b'"}'
    response = sender_api.raw("post", "/api/v1/messages", body, "application/json")
    assert response.status_code == 413
    problem(response)


def test_an_unsupported_media_type_is_415(sender_api, api_link):
    response = sender_api.raw("post", "/api/v1/messages", b"hello", "text/plain")
    assert response.status_code == 415
    problem(response)


def test_unknown_addresses_and_methods_are_problems_not_html(sender_api):
    response = sender_api.get("/api/v1/nothing-here")
    assert response.status_code == 404
    problem(response)
    response = sender_api.delete("/api/v1/messages")
    assert response.status_code == 405
    problem(response)


def test_send_at_schedules_the_messages_and_a_past_time_is_refused(emulator, api_link, sender_api):
    later = timezone.now() + timedelta(hours=3)
    response = sender_api.post(
        "/api/v1/messages",
        {"from": FROM, "to": [PAT, SAM], "text": "Later", "send_at": later.isoformat()},
    )
    assert response.status_code == 201, response.content
    made = response.json()["messages"]
    assert [m["status"] for m in made] == ["scheduled", "scheduled"]
    assert set(OutboundMessage.objects.values_list("scheduled_for", flat=True)) == {later}
    # Nothing leaves before its time; at its time the release task queues both.
    assert journal(emulator, "/sms") == []
    with mock.patch("django.utils.timezone.now", return_value=later + timedelta(seconds=5)):
        assert sending_tasks.release_scheduled()["queued"] == 2
    assert set(OutboundMessage.objects.values_list("status", flat=True)) == {"queued"}

    # A scheduled message is canceled like a queued one.
    response = sender_api.post(
        "/api/v1/messages",
        {"from": FROM, "to": [PAT], "text": "Never", "send_at": later.isoformat()},
    )
    (scheduled,) = response.json()["messages"]
    assert sender_api.post(f"/api/v1/messages/{scheduled['id']}/cancel").status_code == 200
    assert OutboundMessage.objects.get(pk=scheduled["id"]).status == "canceled"

    response = sender_api.post(
        "/api/v1/messages",
        {"from": FROM, "to": [PAT], "text": "Too late", "send_at": "2020-01-01T09:00:00Z"},
    )
    document = problem(response)
    assert response.status_code == 422
    assert document["errors"]["send_at"]
    assert not OutboundMessage.objects.filter(text="Too late").exists()
    response = sender_api.post(
        "/api/v1/messages", {"from": FROM, "to": [PAT], "text": "Now", "send_at": None}
    )
    assert response.status_code == 201
    assert response.json()["messages"][0]["status"] == "queued"


def test_a_viewers_key_cannot_send(emulator, api_link, viewer_api):
    response = viewer_api.post("/api/v1/messages", {"from": FROM, "to": [PAT], "text": "Hi"})
    assert response.status_code == 403
    problem(response)
    assert not OutboundMessage.objects.exists()


def test_list_filters_and_cursor_pages(api_link, sender_api, alice):
    _, number = api_link
    first = make_message(number, alice, to=(PAT,), text="Reminder for Pat")
    make_message(number, alice, to=(SAM,), text="Reminder for Sam")
    failed = make_message(number, alice, to=(SAM,), text="Broken", status=MessageStatus.FAILED)

    everything = sender_api.get("/api/v1/messages").json()
    assert [m["id"] for m in everything["results"]][-1] == first.pk
    assert everything["next"] is None
    assert [m["id"] for m in sender_api.get("/api/v1/messages", {"to": PAT}).json()["results"]] == [
        first.pk
    ]
    assert [
        m["id"] for m in sender_api.get("/api/v1/messages", {"status": "failed"}).json()["results"]
    ] == [failed.pk]
    assert [
        m["id"] for m in sender_api.get("/api/v1/messages", {"folder": "failed"}).json()["results"]
    ] == [failed.pk]
    assert len(sender_api.get("/api/v1/messages", {"search": "reminder"}).json()["results"]) == 2
    assert len(sender_api.get("/api/v1/messages", {"from": FROM}).json()["results"]) == 3
    assert sender_api.get("/api/v1/messages", {"since": "2999-01-01T00:00:00Z"}).json() == {
        "results": [],
        "next": None,
    }
    for bad in ({"status": "lost"}, {"folder": "x"}, {"since": "yesterday"}, {"cursor": "zz"}):
        response = sender_api.get("/api/v1/messages", bad)
        assert response.status_code == 400, bad
        problem(response)


def test_list_pages_with_a_cursor(api_link, sender_api, alice):
    from messaging.outbox.paging import PAGE_SIZE
    from tests.factories import team_history

    team = api_link[0].team
    team_history(team, [alice], PAGE_SIZE + 5)
    page_one = sender_api.get("/api/v1/messages").json()
    assert len(page_one["results"]) == PAGE_SIZE and page_one["next"]
    page_two = sender_api.get("/api/v1/messages", {"cursor": page_one["next"]}).json()
    assert len(page_two["results"]) == 5 and page_two["next"] is None
    ids = [m["id"] for m in page_one["results"] + page_two["results"]]
    assert len(set(ids)) == PAGE_SIZE + 5


def _queries(api, path) -> int:
    with CaptureQueriesContext(db_connection) as captured:
        assert api.get(path).status_code == 200
    return len(captured)


def test_list_endpoints_cost_the_same_queries_for_3_or_30_rows(api_link, sender_api, alice):
    from messaging.contacts import book

    _, number = api_link
    team = number.connection.team
    paths = [
        "/api/v1/messages",
        "/api/v1/contacts",
        "/api/v1/conversations",
        "/api/v1/sender-numbers",
    ]

    def add(count, start):
        for index in range(start, start + count):
            make_message(number, alice, to=(f"+1650555{1000 + index:04d}",), text=f"n{index}")
            book.save(
                team,
                None,
                fields={"name": f"Contact {index}"},
                numbers=[(f"+1650555{2000 + index:04d}", "mobile")],
                tag_names=["north"],
            )
            Conversation.objects.create(
                team=team,
                connection=number.connection,
                team_number=FROM,
                contact_key=f"+1650555{3000 + index:04d}",
                last_message_at=number.synced_at,
            )

    add(3, 0)
    sender_api.get("/api/v1/messages")  # the key's last-used time written once
    few = {path: _queries(sender_api, path) for path in paths}
    add(27, 3)
    many = {path: _queries(sender_api, path) for path in paths}
    assert few == many


def test_read_a_message_with_its_recipients_statuses_and_reasons(api_link, sender_api, alice):
    _, number = api_link
    message = make_message(
        number,
        alice,
        to=(PAT,),
        status=MessageStatus.FAILED,
        error_code="CMN-123",
        error_reason="Bad number",
    )
    message.recipients.update(status="failed", error_reason="Unknown number", error_fix="Check it")

    body = sender_api.get(f"/api/v1/messages/{message.pk}").json()

    assert body["status"] == "failed" and body["reason"] == "Bad number"
    assert body["recipients"] == [
        {
            "number": PAT,
            "status": "failed",
            "error_code": "",
            "reason": "Unknown number",
            "fix": "Check it",
        }
    ]


def test_cancel_follows_the_outbox_rule(api_link, sender_api, viewer_api, alice):
    _, number = api_link
    message = make_message(number, alice, to=(PAT,))

    response = viewer_api.post(f"/api/v1/messages/{message.pk}/cancel")
    assert response.status_code == 403
    response = sender_api.post(f"/api/v1/messages/{message.pk}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "canceled"
    again = sender_api.post(f"/api/v1/messages/{message.pk}/cancel")
    assert again.status_code == 409
    assert "cannot be canceled" in problem(again)["detail"]


def test_another_teams_ids_are_404_and_an_outsiders_key_reads_nothing(
    emulator, api_link, outsider_api, alice, team
):
    from messaging.contacts import book

    _, number = api_link
    message = make_message(number, alice, to=(PAT,))
    contact = book.save(team, None, fields={"name": "Pat"}, numbers=[(PAT, "")], tag_names=[])
    conversation = Conversation.objects.create(
        team=team, team_number=FROM, contact_key=PAT, last_message_at=number.synced_at
    )
    for path in (
        f"/api/v1/messages/{message.pk}",
        f"/api/v1/contacts/{contact.pk}",
        f"/api/v1/conversations/{conversation.pk}",
        f"/api/v1/conversations/{conversation.pk}/messages",
    ):
        response = outsider_api.get(path)
        assert response.status_code == 404, path
        problem(response)
    assert outsider_api.post(f"/api/v1/messages/{message.pk}/cancel").status_code == 404
    assert outsider_api.delete(f"/api/v1/contacts/{contact.pk}").status_code == 404
    assert outsider_api.get("/api/v1/messages").json()["results"] == []
    assert outsider_api.get("/api/v1/contacts").json()["results"] == []
    assert outsider_api.get("/api/v1/conversations").json()["results"] == []
    assert outsider_api.get("/api/v1/sender-numbers").json()["results"] == []
    response = outsider_api.post("/api/v1/messages", {"from": FROM, "to": [PAT], "text": "Sneaky"})
    assert response.status_code == 422
    assert OutboundMessage.objects.filter(text="Sneaky").count() == 0
    assert sends(emulator) == []


# --- Sender numbers ------------------------------------------------------------------------------


def test_sender_numbers_are_those_compose_offers(api_link, sender_api, viewer_api):
    numbers = [n["number"] for n in sender_api.get("/api/v1/sender-numbers").json()["results"]]
    assert FROM in numbers
    assert "+16505550143" not in numbers  # the fax number
    assert viewer_api.get("/api/v1/sender-numbers").json()["results"] == []


# --- Conversations -------------------------------------------------------------------------------


@pytest.fixture
def conversation(emulator, api_link):
    connection, _ = api_link
    inbox_sync.sync_connection(connection.pk)
    emulator.inbound(PAT, FROM, "Can I move my appointment?")
    inbox_sync.sync_connection(connection.pk)
    return Conversation.objects.get(contact_key=PAT)


def test_conversations_list_read_messages_and_reply(emulator, conversation, sender_api):
    listed = sender_api.get("/api/v1/conversations").json()["results"]
    assert [c["id"] for c in listed] == [conversation.pk]
    assert listed[0]["contacts"] == [PAT] and listed[0]["unread"] == 1
    assert sender_api.get("/api/v1/conversations", {"filter": "closed"}).json()["results"] == []
    assert sender_api.get("/api/v1/conversations", {"filter": "nope"}).status_code == 400
    assert sender_api.get(f"/api/v1/conversations/{conversation.pk}").json()["team_number"] == FROM
    thread = sender_api.get(f"/api/v1/conversations/{conversation.pk}/messages").json()
    assert [m["text"] for m in thread["results"]] == ["Can I move my appointment?"]
    assert thread["results"][0]["direction"] == "inbound"

    response = sender_api.post(
        f"/api/v1/conversations/{conversation.pk}/replies", {"text": "Yes, to 11?"}
    )
    assert response.status_code == 201, response.content
    [message] = response.json()["messages"]
    assert message["to"] == [PAT] and message["from"] == FROM
    assert attempt(message["id"]).what == "sent"
    assert len(sends(emulator)) == 1


def test_a_viewer_cannot_reply_and_bad_replies_are_problems(conversation, viewer_api, sender_api):
    response = viewer_api.post(f"/api/v1/conversations/{conversation.pk}/replies", {"text": "Hi"})
    assert response.status_code == 403
    response = sender_api.post(
        f"/api/v1/conversations/{conversation.pk}/replies", {"text": "", "extra": 1}
    )
    assert response.status_code == 400
    assert "extra" in problem(response)["errors"]
    response = sender_api.post(f"/api/v1/conversations/{conversation.pk}/replies", {"text": ""})
    assert response.status_code == 422
    problem(response)


# --- Contacts ------------------------------------------------------------------------------------


def test_contacts_crud(sender_api, admin_api, team):
    created = sender_api.post(
        "/api/v1/contacts",
        {
            "name": "Pat Doe",
            "numbers": [{"number": "(650) 555-0150", "label": "mobile"}],
            "tags": ["patients", "north"],
            "custom_fields": {"dentist": "Dr. Lee"},
            "time_zone": "America/Chicago",
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["numbers"] == [{"number": PAT, "label": "mobile"}]
    assert sorted(body["tags"]) == ["north", "patients"]
    contact_id = body["id"]

    listed = sender_api.get("/api/v1/contacts", {"search": "pat"}).json()["results"]
    assert [c["id"] for c in listed] == [contact_id]
    assert sender_api.get("/api/v1/contacts", {"tag": "north"}).json()["results"][0]["id"] == (
        contact_id
    )

    changed = sender_api.patch(f"/api/v1/contacts/{contact_id}", {"company": "Acme"})
    assert changed.status_code == 200
    assert changed.json()["company"] == "Acme" and changed.json()["numbers"][0]["number"] == PAT

    # A number another contact has is refused with that contact's name.
    clash = sender_api.post("/api/v1/contacts", {"name": "Sam", "numbers": [{"number": PAT}]})
    assert clash.status_code == 422
    assert "Pat Doe" in problem(clash)["detail"]

    assert sender_api.delete(f"/api/v1/contacts/{contact_id}").status_code == 403
    assert admin_api.delete(f"/api/v1/contacts/{contact_id}").status_code == 204
    assert not Contact.objects.filter(pk=contact_id).exists()
    assert admin_api.get(f"/api/v1/contacts/{contact_id}").status_code == 404


@pytest.mark.parametrize(
    "body, field",
    [
        ({"numbers": [{"number": PAT}]}, "name"),
        ({"name": "Pat"}, "numbers"),
        ({"name": "Pat", "numbers": [{"number": "12"}]}, "numbers.0.number"),
        ({"name": "Pat", "numbers": [{"number": PAT}], "time_zone": "Mars/Base"}, "time_zone"),
        ({"name": "Pat", "numbers": [{"number": PAT}], "email": "nope"}, "email"),
        ({"name": "Pat", "numbers": [{"number": PAT}], "age": 3}, "age"),
        ({"name": ["Pat"], "numbers": [{"number": PAT}]}, "name"),
    ],
)
def test_bad_contacts_are_400_naming_the_field(sender_api, body, field):
    response = sender_api.post("/api/v1/contacts", body)
    assert response.status_code == 400
    assert field in problem(response)["errors"]
    assert not Contact.objects.exists()


def test_a_patch_replacing_numbers_needs_each_number(sender_api):
    created = sender_api.post("/api/v1/contacts", {"name": "Pat", "numbers": [{"number": PAT}]})
    response = sender_api.patch(
        f"/api/v1/contacts/{created.json()['id']}", {"numbers": [{"label": "mobile"}]}
    )
    assert response.status_code == 400
    assert "numbers" in problem(response)["errors"]


def test_a_viewer_reads_contacts_but_cannot_change_them(viewer_api):
    assert viewer_api.get("/api/v1/contacts").status_code == 200
    response = viewer_api.post("/api/v1/contacts", {"name": "Pat", "numbers": [{"number": PAT}]})
    assert response.status_code == 403


def test_import_a_csv_and_read_its_progress(admin_api, sender_api, team):
    from messaging.contacts import importing

    upload = io.BytesIO(b"Name,Phone,Tags\nPat Doe,(650) 555-0150,patients\nSam,bad,\n")
    upload.name = "people.csv"
    response = admin_api.post_form("/api/v1/contacts/imports", {"file": upload})
    assert response.status_code == 201, response.content
    job = response.json()
    assert job["status"] == "queued" and job["mapping"] == ["name", "number", "tags"]

    importing.run(job["id"])  # what the worker does with it

    done = admin_api.get(f"/api/v1/contacts/imports/{job['id']}").json()
    assert done["status"] == "done" and done["created"] == 1 and done["refused"] == 1
    assert Contact.objects.get(team=team).name == "Pat Doe"

    upload = io.BytesIO(b"Name\n")
    upload.name = "x.csv"
    assert sender_api.post_form("/api/v1/contacts/imports", {"file": upload}).status_code == 403
    assert sender_api.get(f"/api/v1/contacts/imports/{job['id']}").status_code == 403


def test_a_bad_import_file_is_refused_and_nothing_is_kept(admin_api):
    upload = io.BytesIO(b"\x00\x01binary")
    upload.name = "x.bin"
    response = admin_api.post_form("/api/v1/contacts/imports", {"file": upload})
    assert response.status_code == 422
    assert "file" in problem(response)["errors"]
    upload = io.BytesIO(b"Name,Email\nPat,pat@example.com\n")
    upload.name = "nonumbers.csv"
    response = admin_api.post_form("/api/v1/contacts/imports", {"file": upload})
    assert response.status_code == 422
    assert not ImportJob.objects.exists()
    response = admin_api.post_form("/api/v1/contacts/imports", {})
    assert response.status_code == 400


# --- Roles of keys -------------------------------------------------------------------------------


def test_a_key_acts_with_the_lower_of_its_role_and_its_makers(team, dana):
    from messaging.models import Membership

    api = ApiClient(key_for(team, dana, Role.ADMIN).secret)
    contact = api.post("/api/v1/contacts", {"name": "Pat", "numbers": [{"number": PAT}]}).json()
    Membership.objects.filter(team=team, user=dana).update(role=Role.SENDER)
    assert api.delete(f"/api/v1/contacts/{contact['id']}").status_code == 403


def test_more_file_parts_than_django_reads_is_a_400_problem(api_link, sender_api):
    files = []
    for index in range(51):
        upload = io.BytesIO(b"x")
        upload.name = f"f{index}.txt"
        files.append(upload)
    response = sender_api.post_form(
        "/api/v1/messages", {"from": FROM, "to": [PAT], "text": "x", "attachments": files}
    )
    assert response.status_code == 400
    problem(response)
    assert not OutboundMessage.objects.exists()
