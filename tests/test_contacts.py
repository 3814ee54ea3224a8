"""The address book: contacts and their numbers, tags, merge, export, the contact page, and
contacts in compose and the inbox."""

from __future__ import annotations

import csv
import io

import pytest

from messaging.consent import ledger
from messaging.contacts import book
from messaging.contacts.exporting import safe_cell
from messaging.models import (
    ConsentSource,
    ConsentState,
    Contact,
    ContactNumber,
    OutboundMessage,
    Tag,
)
from tests.factories import make_connection, make_message, make_number


def new_contact(team, name, *numbers, tags=(), **fields):
    contact = Contact.objects.create(team=team, name=name, **fields)
    for number in numbers:
        ContactNumber.objects.create(contact=contact, team=team, number=number)
    contact.tags.set(book.tags_named(team, list(tags)))
    return contact


def test_a_sender_creates_a_contact_with_numbers_in_any_format(bob_client, team):
    response = bob_client.post(
        "/contacts/new/",
        {
            "name": "Ann Lee",
            "numbers": "(650) 555-0101, mobile\n+1 650.555.0102",
            "tags": "Patients, north, patients",
            "custom_fields": "Birthday: May 1",
            "time_zone": "America/Chicago",
        },
    )
    assert response.status_code == 302
    ann = Contact.objects.get(team=team)
    assert [(n.number, n.label) for n in ann.numbers.all()] == [
        ("+16505550101", "mobile"),
        ("+16505550102", ""),
    ]
    assert sorted(t.name for t in ann.tags.all()) == ["Patients", "north"]
    assert ann.custom_fields == {"Birthday": "May 1"}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("numbers", "555-12", b"not a valid phone number"),
        ("numbers", "", b"This field is required"),
        ("time_zone", "Mars/Olympus", b"is not a time zone"),
        ("email", "nope", b"Enter a valid email"),
        ("custom_fields", "no colon here", b"key: value"),
        ("name", "Nul\x00", b"Null characters are not allowed"),
    ],
)
def test_bad_contact_fields_are_refused_with_a_message(bob_client, team, field, value, message):
    data = {"name": "Ann", "numbers": "6505550101", field: value}
    response = bob_client.post("/contacts/new/", data)
    assert response.status_code == 400
    assert message in response.content
    assert not Contact.objects.exists()


def test_a_number_belongs_to_one_contact_per_team(bob_client, team, charlie):
    ann = new_contact(team, "Ann", "+16505550101")
    response = bob_client.post("/contacts/new/", {"name": "Other", "numbers": "650 555 0101"})
    assert response.status_code == 400
    assert b"already belongs to Ann" in response.content
    assert list(Contact.objects.filter(team=team)) == [ann]
    # Another team may have the same number.
    other = Contact.objects.get(
        pk=new_contact(charlie.teams.get(), "Ann's twin", "+16505550101").pk
    )
    assert other.numbers.get().number == "+16505550101"


def test_viewers_read_senders_edit_admins_delete(victor_client, bob_client, dana_client, team):
    ann = new_contact(team, "Ann", "+16505550101")
    assert victor_client.get("/contacts/").status_code == 200
    assert victor_client.get(f"/contacts/{ann.pk}/").status_code == 200
    assert (
        victor_client.post("/contacts/new/", {"name": "X", "numbers": "6505550109"}).status_code
        == 403
    )
    assert victor_client.get("/contacts/export.csv").status_code == 403
    assert bob_client.post(f"/contacts/{ann.pk}/delete/").status_code == 403
    assert dana_client.post(f"/contacts/{ann.pk}/delete/").status_code == 302
    assert not Contact.objects.exists() and not ContactNumber.objects.exists()


def test_another_teams_contact_is_a_404(charlie_client, team):
    ann = new_contact(team, "Ann Secret", "+16505550101")
    assert charlie_client.get(f"/contacts/{ann.pk}/").status_code == 404
    for path in ("edit/", "merge/", "delete/"):
        assert charlie_client.get(f"/contacts/{ann.pk}/{path}").status_code == 404
        assert charlie_client.post(f"/contacts/{ann.pk}/{path}", {"other": "1"}).status_code == 404
    assert b"Ann Secret" not in charlie_client.get("/contacts/search.json?q=Ann").content
    assert b"Ann Secret" not in charlie_client.get("/contacts/?q=Ann").content
    assert Contact.objects.get().name == "Ann Secret"


def test_merge_moves_numbers_tags_and_fields_and_keeps_the_targets_values(bob_client, team):
    ann = new_contact(team, "Ann", "+16505550101", tags=["patients"], custom_fields={"a": "1"})
    other = new_contact(
        team,
        "Annie",
        "+16505550102",
        tags=["vip"],
        email="annie@example.com",
        custom_fields={"a": "2", "b": "3"},
    )
    response = bob_client.post(f"/contacts/{ann.pk}/merge/", {"other": other.pk}, follow=True)
    assert response.status_code == 200
    ann.refresh_from_db()
    assert sorted(n.number for n in ann.numbers.all()) == ["+16505550101", "+16505550102"]
    assert sorted(t.name for t in ann.tags.all()) == ["patients", "vip"]
    assert ann.email == "annie@example.com" and ann.name == "Ann"
    assert ann.custom_fields == {"a": "1", "b": "3"}
    assert not Contact.objects.filter(pk=other.pk).exists()
    page = response.content.decode()
    assert "Kept the name “Ann”; “Annie” was dropped." in page
    assert "Kept a “1”; “2” was dropped." in page


def test_the_export_neutralises_formulas_and_reads_back(bob_client, team):
    new_contact(team, "=cmd|' /C calc'!A0", "+16505550101", company="@SUM(1)", notes="-2+3")
    response = bob_client.get("/contacts/export.csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ["Name", "Company", "Email", "Numbers"]
    assert rows[1][0] == "'=cmd|' /C calc'!A0"
    assert rows[1][1] == "'@SUM(1)"
    assert rows[1][3] == "'+16505550101"
    assert rows[1][6] == "'-2+3"
    for dangerous in ("=", "+", "-", "@", "\t", "\r"):
        assert safe_cell(dangerous + "x").startswith("'")


def test_the_contact_page_shows_conversations_messages_and_consent_history(
    alice_client, team, alice
):
    ann = new_contact(team, "Ann", "+16505550101")
    connection = make_connection(team, alice)
    number = make_number(connection, "+16505550100")
    message = make_message(number, alice, to=("+16505550101",), text="Your appointment")
    make_message(number, alice, to=("+16505550199",), text="Someone else")
    ledger.record(team, "+16505550101", ConsentState.OPTED_OUT, ConsentSource.KEYWORD, note="STOP")
    ledger.record(team, "+16505550101", ConsentState.OPTED_IN, ConsentSource.MANUAL, by=alice)
    page = alice_client.get(f"/contacts/{ann.pk}/").content.decode()
    assert f"/messages/{message.pk}/" in page and "Your appointment" in page
    assert "Someone else" not in page
    assert "Opted in" in page and "STOP" in page and "alice@example.com" in page
    assert OutboundMessage.objects.count() == 2
    # Team admins (alice) are led to change it by hand.
    assert "/consent/?number=%2B16505550101" in page


def test_search_suggests_contacts_and_tags(bob_client, team):
    new_contact(team, "Ann Lee", "+16505550101", tags=["patients"])
    new_contact(team, "Bob Roe", "+16505550102", tags=["patients"])
    results = bob_client.get("/contacts/search.json?q=pat").json()["results"]
    assert results[0] == {
        "kind": "tag",
        "value": "tag:patients",
        "label": "Everyone tagged “patients” (2 numbers)",
    }
    results = bob_client.get("/contacts/search.json?q=650555010").json()["results"]
    assert {r["value"] for r in results} == {"+16505550101", "+16505550102"}


def test_compose_shows_a_tags_numbers_before_queueing(bob_client, team, bob):
    number = make_number(make_connection(team, bob), "+16505550100")
    new_contact(team, "Ann Lee", "+16505550101", tags=["Patients"])
    new_contact(team, "Bob Roe", "+16505550102", tags=["patients"])
    form = {
        "sender": str(number.pk),
        "to": "tag:patients, +1 650 555 0103",
        "text": "Clinic closed Friday",
        "mode": "separate",
    }
    shown = bob_client.post("/messages/compose/", form)
    assert shown.status_code == 200
    page = shown.content.decode()
    assert (
        "Everyone tagged “patients”: Ann Lee (+1 650-555-0101), Bob Roe (+1 650-555-0102)." in page
    )
    assert not OutboundMessage.objects.exists()
    form["to"] = "+1 650-555-0101\n+1 650-555-0102\n+1 650-555-0103"
    queued = bob_client.post("/messages/compose/", form)
    assert queued.status_code == 302
    assert OutboundMessage.objects.count() == 3


@pytest.mark.parametrize(
    ("to", "message"),
    [
        ("tag:ghosts", "No contact is tagged “ghosts”."),
        ("TAG: ghosts ", "No contact is tagged “ghosts”."),
        ("tag:gh\x00osts", "Null characters are not allowed."),
    ],
)
def test_compose_refuses_a_tag_nobody_has(bob_client, team, bob, to, message):
    number = make_number(make_connection(team, bob), "+16505550100")
    form = {"sender": str(number.pk), "to": to, "text": "Hi", "mode": "separate"}
    response = bob_client.post("/messages/compose/", form)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not OutboundMessage.objects.exists()


def test_a_tag_with_a_nul_character_is_a_problem_not_a_query(team):
    from messaging.compose.recipients import expand_tags

    expanded = expand_tags(team.pk, "tag:gh\x00osts, +16505550101")
    assert expanded.problems == ["A tag name cannot contain a NUL character."]
    assert expanded.raw == " +16505550101"


def test_the_live_check_names_the_recipients(bob_client, team, bob):
    make_number(make_connection(team, bob), "+16505550100")
    new_contact(team, "Ann Lee", "+16505550101", tags=["patients"])
    data = bob_client.post("/messages/compose/check/", {"to": "tag:patients"}).json()
    assert data["recipients"] == [
        {"number": "+16505550101", "display": "Ann Lee (+1 650-555-0101)"}
    ]


def test_names_for_answers_in_one_query(team, django_assert_num_queries):
    new_contact(team, "Ann", "+16505550101")
    new_contact(team, "", "+16505550102", company="Roe Inc")
    with django_assert_num_queries(1):
        names = book.names_for(team.pk, ["+16505550101", "+16505550102", "+16505550103"])
    assert names == {"+16505550101": "Ann", "+16505550102": "Roe Inc"}


def test_tags_are_unique_per_team_whatever_their_case(team):
    book.tags_named(team, ["Patients"])
    book.tags_named(team, ["PATIENTS", "patients"])
    assert Tag.objects.filter(team=team).count() == 1


def test_the_list_pages_by_name_after_a_contact(victor_client, team, charlie):
    for i in range(book.PAGE_SIZE + 3):
        new_contact(team, f"Person {i:03d}", f"+1650555{i:04d}")
    first = victor_client.get("/contacts/").content.decode()
    assert "Person 049" in first and "Person 050" not in first
    last_on_first = Contact.objects.get(team=team, name="Person 049")
    second = victor_client.get(f"/contacts/?after={last_on_first.pk}").content.decode()
    assert "Person 050" in second and "Person 052" in second and "Person 049" not in second
    outsider = Contact.objects.create(team=charlie.teams.get(), name="Elsewhere")
    assert victor_client.get(f"/contacts/?after={outsider.pk}").status_code == 404
    assert victor_client.get("/contacts/?after=x1").status_code == 404


def test_the_inbox_shows_names_finds_them_and_links_the_contact(
    bob_client, team, alice, tmp_path, settings
):
    from tests.test_isolation import ACME_RECEIVED_FROM, acme_conversation, use_private_media

    use_private_media(tmp_path, settings)
    connection = make_connection(team, alice, shared=True)
    make_number(connection, "+16505550142")
    conversation, _, _ = acme_conversation(connection, alice)
    thread = bob_client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert f"/contacts/new/?number=%2B{ACME_RECEIVED_FROM[1:]}" in thread
    ann = new_contact(team, "Ann Lee", ACME_RECEIVED_FROM)
    listing = bob_client.get("/inbox/?filter=all").content.decode()
    assert "Ann Lee (+1 650-555-9878)" in listing
    assert "Ann Lee" in bob_client.get("/inbox/?filter=all&q=ann").content.decode()
    assert "Ann Lee" not in bob_client.get("/inbox/?filter=all&q=zed").content.decode()
    thread = bob_client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert f"/contacts/{ann.pk}/" in thread and "Ann Lee’s contact page" in thread
