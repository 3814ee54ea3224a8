"""The history console: filters, search, read-only inlines, outbox actions, CSV, no tokens."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from messaging.models import (
    Attachment,
    AttemptOutcome,
    ConnectionStatus,
    Invitation,
    MessageStatus,
    OutboundMessage,
    RingCentralConnection,
    SendAttempt,
)
from messaging.outbox.events import record_event
from messaging.teams import invitations
from tests.factories import make_connection, make_number, message_in, status_of

CHANGELIST = "/admin/messaging/outboundmessage/"
EXPORT = "/admin/messaging/outboundmessage/export.csv"


@pytest.fixture
def rc(team, alice):
    return make_connection(team, alice, shared=True)


@pytest.fixture
def number(rc):
    return make_number(rc)


def listed(response):
    return {m.pk for m in response.context["cl"].result_list}


def read_csv(response):
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


@pytest.fixture
def history(number, alice, bob):
    return {
        "delivered": message_in(
            number, alice, MessageStatus.DELIVERED, to=("+16505550111",), text="Dentist at 3"
        ),
        "failed": message_in(
            number,
            bob,
            MessageStatus.FAILED,
            to=("+14155550123", "+14155550124"),
            text="Invoice 42 attached",
            error_code="MSG-246",
            error_reason="The number cannot send MMS.",
        ),
        "queued": message_in(
            number, bob, MessageStatus.QUEUED, to=("+12125550100",), text="=HYPERLINK(evil)"
        ),
        "sent": message_in(
            number, alice, MessageStatus.SENT, to=("+12125550101",), text="Reminder"
        ),
    }


# --- The list ------------------------------------------------------------------------------------


def test_the_console_lists_messages_with_filters_and_a_date_drilldown(
    history, team, bob, admin_client
):
    # Relation filters only show when there is a choice to make.
    make_number(make_connection(team, bob, extension_id="202"), "+16505550199")
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    assert listed(response) == {m.pk for m in history.values()}
    html = response.content.decode()
    for title in ("status", "folder", "team", "connection", "has error", "sender number"):
        assert f'data-filter-title="{title}"' in html, title
    assert '<nav class="toplinks">' in html  # the date drill-down
    assert "Export these messages to CSV" in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status__exact": "failed"}, {"failed"}),
        ({"folder": "queued"}, {"queued"}),
        ({"folder": "delivered"}, {"delivered"}),
        ({"has_error": "yes"}, {"failed"}),
        ({"has_error": "no"}, {"delivered", "queued", "sent"}),
    ],
)
def test_filters_select_the_right_messages(params, expected, history, admin_client):
    response = admin_client.get(CHANGELIST, params)
    assert listed(response) == {history[k].pk for k in expected}


def test_the_folder_filter_includes_messages_stuck_on_a_broken_link(history, rc, admin_client):
    RingCentralConnection.objects.filter(pk=rc.pk).update(status=ConnectionStatus.BROKEN)
    response = admin_client.get(CHANGELIST, {"folder": "attention"})
    assert listed(response) == {history["queued"].pk, history["sent"].pk}


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("(415) 555-0124", {"failed"}),
        ("+16505550111", {"delivered"}),
        ("0123", {"failed"}),
        ("invoice", {"failed"}),
        ("dentist", {"delivered"}),
    ],
)
def test_search_by_number_or_text(typed, expected, history, admin_client):
    response = admin_client.get(CHANGELIST, {"q": typed})
    assert listed(response) == {history[k].pk for k in expected}


def test_search_by_ringcentral_id(history, admin_client):
    rc_id = history["sent"].rc_message_id
    response = admin_client.get(CHANGELIST, {"q": rc_id})
    assert listed(response) == {history["sent"].pk}


def test_the_changelist_runs_the_same_queries_for_3_or_40_messages(number, alice, admin_client):
    def measure():
        with CaptureQueriesContext(db_connection) as queries:
            response = admin_client.get(CHANGELIST)
        assert response.status_code == 200
        return len(queries), len(listed(response))

    def add(n, start):
        for i in range(start, start + n):
            message_in(
                number,
                alice,
                MessageStatus.SENT if i % 2 else MessageStatus.FAILED,
                to=("+16505550111", f"+1415555{i:04d}"),
            )

    admin_client.get(CHANGELIST)  # the first visit makes the admin's personal team
    add(3, 0)
    few, rows = measure()
    assert rows == 3
    add(37, 3)
    many, rows = measure()
    assert rows == 40
    assert many == few


# --- One message ---------------------------------------------------------------------------------


def test_a_message_opens_read_only_with_recipients_attachments_attempts_and_events(
    history, admin_client
):
    message = history["failed"]
    Attachment.objects.create(
        message=message,
        file="attachments/1/x",
        original_name="invoice.pdf",
        content_type="application/pdf",
        size=999,
        sha256="a" * 64,
    )
    SendAttempt.objects.create(
        message=message,
        number=1,
        http_status=400,
        rc_error_code="MSG-246",
        outcome=AttemptOutcome.PERMANENT,
    )
    record_event(message.pk, "failed", "RingCentral refused the message.")
    url = reverse("admin:messaging_outboundmessage_change", args=[message.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    for text in (
        "+14155550123",
        "+14155550124",
        "invoice.pdf",
        "MSG-246",
        "Failed permanently",
        "RingCentral refused the message.",
        "The number cannot send MMS.",
    ):
        assert text in html, text
    assert 'name="status"' not in html
    assert 'name="text"' not in html


def test_the_console_cannot_change_or_add_or_delete_a_message(history, admin_client):
    message = history["failed"]
    url = reverse("admin:messaging_outboundmessage_change", args=[message.pk])
    response = admin_client.post(url, {"status": "delivered", "text": "rewritten"})
    assert response.status_code == 403
    assert status_of(message) == MessageStatus.FAILED
    assert admin_client.get(CHANGELIST + "add/").status_code == 403
    delete = reverse("admin:messaging_outboundmessage_delete", args=[message.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert OutboundMessage.objects.filter(pk=message.pk).exists()


# --- Actions -------------------------------------------------------------------------------------


def run_action(client, action, messages):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [m.pk for m in messages]},
        follow=True,
    )


def test_requeue_moves_failed_messages_through_the_outbox_and_explains_the_rest(
    history, admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = run_action(
            admin_client, "requeue_failed", [history["failed"], history["delivered"]]
        )
    assert status_of(history["failed"]) == MessageStatus.QUEUED
    assert status_of(history["delivered"]) == MessageStatus.DELIVERED
    assert len(callbacks) == 1
    html = response.content.decode()
    assert "1 message(s) queued again." in html
    assert (
        "1 message(s) not queued again: only failed messages can be, and these were 1 delivered"
        in html
    )


def test_cancel_moves_queued_messages_and_refuses_claimed_ones(history, number, bob, admin_client):
    waiting = message_in(number, bob, MessageStatus.RETRY_WAIT)
    sending = message_in(number, bob, MessageStatus.SENDING)
    response = run_action(admin_client, "cancel_queued", [history["queued"], waiting, sending])
    assert status_of(history["queued"]) == MessageStatus.CANCELED
    assert status_of(waiting) == MessageStatus.CANCELED
    assert status_of(sending) == MessageStatus.SENDING
    html = response.content.decode()
    assert "2 message(s) canceled." in html
    assert "1 message(s) not canceled" in html and "1 sending" in html


# --- CSV -----------------------------------------------------------------------------------------


def test_csv_export_holds_exactly_the_filtered_rows(history, admin_client):
    rows = read_csv(admin_client.get(EXPORT, {"status__exact": "failed"}))
    assert [int(r["id"]) for r in rows] == [history["failed"].pk]
    row = rows[0]
    assert row["to"] == "+14155550123 +14155550124"
    assert row["from"] == "+16505550100"
    assert row["text"] == "Invoice 42 attached"
    assert row["error_reason"] == "The number cannot send MMS."
    assert row["written_by"] == "bob@example.com"


def test_csv_export_honours_search_and_folder_and_covers_every_page(
    history, number, alice, admin_client
):
    many = {
        message_in(number, alice, MessageStatus.FAILED, text=f"Bulk {i}").pk for i in range(120)
    }
    rows = read_csv(admin_client.get(EXPORT, {"q": "bulk", "folder": "failed"}))
    assert {int(r["id"]) for r in rows} == many
    everything = read_csv(admin_client.get(EXPORT))
    assert len(everything) == len(history) + 120


def test_csv_export_defuses_spreadsheet_formulas_in_text(history, admin_client):
    rows = read_csv(admin_client.get(EXPORT, {"folder": "queued"}))
    assert rows[0]["text"] == "'=HYPERLINK(evil)"


def test_csv_export_of_the_selected_rows(history, admin_client):
    response = admin_client.post(
        CHANGELIST,
        {
            "action": "export_selected_csv",
            "_selected_action": [history["sent"].pk, history["queued"].pk],
        },
    )
    assert {int(r["id"]) for r in read_csv(response)} == {
        history["sent"].pk,
        history["queued"].pk,
    }


def test_csv_export_needs_staff(history, alice_client):
    response = alice_client.get(EXPORT)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


# --- RingCentral and teams -----------------------------------------------------------------------


def test_no_token_appears_on_any_console_page(history, rc, number, admin_client):
    rc.refresh_from_db()
    secrets = [
        rc.access_token_ciphertext,
        rc.refresh_token_ciphertext,
        "access-token-for-tests",
        "refresh-token-for-tests",
    ]
    assert all(secrets)
    pages = [
        "/admin/messaging/ringcentralconnection/",
        reverse("admin:messaging_ringcentralconnection_change", args=[rc.pk]),
        "/admin/messaging/sendernumber/",
        reverse("admin:messaging_sendernumber_change", args=[number.pk]),
        CHANGELIST,
        reverse("admin:messaging_outboundmessage_change", args=[history["sent"].pk]),
        "/admin/messaging/ringcentralconnection/?q=9001",
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        for secret in secrets:
            assert secret not in html, url
        assert "token_ciphertext" not in html, url


def test_connections_are_listed_with_their_health(rc, admin_client):
    RingCentralConnection.objects.filter(pk=rc.pk).update(
        status=ConnectionStatus.REFRESH_FAILING, last_error="RingCentral answered 503"
    )
    html = admin_client.get("/admin/messaging/ringcentralconnection/").content.decode()
    assert "Refreshing fails" in html and "RingCentral answered 503" in html
    change = reverse("admin:messaging_ringcentralconnection_change", args=[rc.pk])
    assert admin_client.post(change, {"status": "linked"}).status_code == 403


def test_team_membership_and_invitation_pages_render(team, alice, admin_client):
    invitation = Invitation.objects.create(
        team=team,
        email="erin@example.com",
        invited_by=alice,
        expires_at=timezone.now() + timedelta(days=7),
    )
    for url in (
        "/admin/messaging/team/",
        reverse("admin:messaging_team_change", args=[team.pk]),
        "/admin/messaging/membership/",
        "/admin/messaging/invitation/",
    ):
        assert admin_client.get(url).status_code == 200, url
    response = admin_client.post(
        "/admin/messaging/invitation/",
        {"action": "revoke_pending", "_selected_action": [invitation.pk]},
        follow=True,
    )
    assert "1 invitation(s) revoked." in response.content.decode()
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert not invitations.pending().filter(pk=invitation.pk).exists()


def test_csv_export_with_filters_that_do_not_exist_is_a_400(history, admin_client):
    assert admin_client.get(EXPORT, {"no_such_field": "1"}).status_code == 400


def test_campaigns_and_api_keys_are_in_the_console_read_only(team, alice, number, admin_client):
    from messaging.api import keys
    from messaging.campaigns import creation
    from messaging.models import ApiKey, Campaign, Contact, ContactNumber, Membership, Tag

    tag = Tag.objects.create(team=team, name="patients")
    contact = Contact.objects.create(team=team, name="Ann Lee")
    ContactNumber.objects.create(contact=contact, team=team, number="+16505550111")
    contact.tags.add(tag)
    membership = Membership.objects.get(team=team, user=alice)
    ask = creation.Request(
        name="Flu shots", sender_ids=[str(number.pk)], text="Hi {first_name}", tag="patients"
    )
    campaign = creation.create(membership, ask)
    made = keys.create_key(membership, name="Booking system")

    listed = admin_client.get("/admin/messaging/campaign/").content.decode()
    assert "Flu shots" in listed
    page = admin_client.get(reverse("admin:messaging_campaign_change", args=[campaign.pk]))
    assert page.status_code == 200 and "+16505550111" in page.content.decode()
    change = reverse("admin:messaging_campaign_change", args=[campaign.pk])
    assert admin_client.post(change, {"name": "Renamed"}).status_code == 403
    assert Campaign.objects.get().name == "Flu shots"

    html = admin_client.get("/admin/messaging/apikey/").content.decode()
    api_key = ApiKey.objects.get()
    assert "Booking system" in html and api_key.prefix in html
    detail = admin_client.get(reverse("admin:messaging_apikey_change", args=[api_key.pk]))
    for shown in (html, detail.content.decode()):
        assert api_key.key_hash not in shown and made.secret not in shown
    assert (
        admin_client.post(reverse("admin:messaging_apikey_delete", args=[api_key.pk])).status_code
        == 403
    )
