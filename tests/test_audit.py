"""The audit log: an entry for each recorded action made through the real pages and services,
who acted and from where (user, API key, client address behind proxies), entries that cannot
be changed or deleted, and the team admin's page with its filters, paging and CSV export."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import RequestFactory
from django.utils import timezone

from messaging import audit
from messaging.audit.middleware import AuditContextMiddleware
from messaging.inbox import storing
from messaging.models import (
    SYSTEM,
    AuditAction,
    AuditEntry,
    AuditEntryError,
    Conversation,
    Membership,
    MessageSource,
    MessageStatus,
    OutboundMessage,
)
from messaging.ringcentral.records import parse_message
from tests.factories import make_connection, make_message, make_number, message_in
from tests.rc_fixtures import link_through_browser
from tests.test_inbox import OURS, inbound


def entries(action) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("pk"))


def only(action) -> AuditEntry:
    (entry,) = entries(action)
    return entry


@pytest.fixture
def number(team, alice):
    return make_number(make_connection(team, alice, shared=True), OURS)


# --- who and from where -----------------------------------------------------------------------


def test_the_actor_and_the_address_behind_trusted_proxies(settings, alice_client, team):
    settings.TRUSTED_PROXY_COUNT = 1
    alice_client.post(
        f"/teams/{team.slug}/invite/",
        {"email": "erin@example.com", "role": "sender"},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9",
    )
    entry = only(AuditAction.MEMBER_INVITED)
    assert entry.actor.email == "alice@example.com" and entry.actor_label == "alice@example.com"
    assert entry.ip == "203.0.113.9"
    assert entry.team == team and entry.team_name == "Acme"
    assert (entry.target_type, entry.target_label) == ("invitation", "erin@example.com")
    assert entry.details == {"role": "sender"}


def test_without_a_proxy_the_address_is_the_peer(settings, alice_client, team):
    settings.TRUSTED_PROXY_COUNT = 0
    alice_client.post(
        f"/teams/{team.slug}/invite/",
        {"email": "erin@example.com", "role": "viewer"},
        REMOTE_ADDR="192.0.2.7",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )
    assert only(AuditAction.MEMBER_INVITED).ip == "192.0.2.7"


def test_an_api_key_set_on_the_request_is_read_when_the_entry_is_recorded(alice, team):
    request = RequestFactory().post("/api/v1/messages", REMOTE_ADDR="192.0.2.55")
    request.user = alice

    def view(request):
        # The API authenticates inside its view, after the middleware ran.
        request.api_key = SimpleNamespace(prefix="mms_7f3a", name="Booking tool")
        return audit.record(AuditAction.MESSAGE_QUEUED, team=team, target=("x", 1, "Message 1"))

    entry = AuditContextMiddleware(view)(request)
    assert (entry.api_key_prefix, entry.api_key_name) == ("mms_7f3a", "Booking tool")
    assert entry.actor == alice and entry.ip == "192.0.2.55"
    assert "mms_7f3a" in entry.who


def test_outside_a_request_the_actor_is_system_or_the_user_named(alice, team):
    assert audit.record(AuditAction.CONTACTS_EXPORTED, team=team).actor_label == SYSTEM
    with audit.acting_as(alice):
        entry = audit.record(AuditAction.CONTACTS_EXPORTED, team=team)
    assert entry.actor == alice and entry.ip is None
    assert audit.record(AuditAction.CONTACTS_EXPORTED, team=team.pk).actor is None


def test_an_entry_rolls_back_with_the_change_it_records(alice, team):
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record(AuditAction.CONTACTS_EXPORTED, team=team)
        raise RuntimeError
    assert not AuditEntry.objects.exists()


# --- an entry for each action -----------------------------------------------------------------


def test_messages_queued_from_a_reply_canceled_and_retried(bob_client, bob, team, number):
    storing.store_record(
        number.connection, parse_message(inbound("Ready?")), source=MessageSource.WEBHOOK
    )
    conversation = Conversation.objects.get()
    answer = bob_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "Yes, come by"})
    assert answer.status_code == 302
    message = OutboundMessage.objects.get()
    queued = only(AuditAction.MESSAGE_QUEUED)
    assert queued.actor == bob and queued.target_id == str(message.pk)
    assert queued.details["to"] == "+16505550111"

    waiting = make_message(number, bob)
    assert bob_client.post(f"/messages/{waiting.pk}/cancel/").status_code == 302
    assert only(AuditAction.MESSAGE_CANCELED).target_id == str(waiting.pk)

    failed = message_in(number, bob, MessageStatus.FAILED)
    assert bob_client.post(f"/messages/{failed.pk}/retry/").status_code == 302
    retried = only(AuditAction.MESSAGE_RETRIED)
    assert retried.target_id == str(failed.pk) and retried.actor == bob


def test_a_message_queued_through_compose(bob_client, bob, number):
    answer = bob_client.post(
        "/messages/compose/",
        {"sender": number.pk, "to": "+16505550123, +16505550124", "text": "Hi", "mode": "separate"},
    )
    assert answer.status_code == 302, answer.content[:2000]
    assert len(entries(AuditAction.MESSAGE_QUEUED)) == OutboundMessage.objects.count() == 2


def test_ringcentral_linked_shared_unshared_and_unlinked(
    alice_client, alice, team, emulator, rc_user
):
    assert link_through_browser(alice_client, emulator, rc_user).status_code == 302
    linked = only(AuditAction.RINGCENTRAL_LINKED)
    assert linked.actor == alice and linked.team == team
    pk = linked.target_id
    alice_client.post(f"/ringcentral/{pk}/share/", {"shared": "1"})
    alice_client.post(f"/ringcentral/{pk}/share/", {"shared": "0"})
    assert only(AuditAction.RINGCENTRAL_SHARED).target_id == pk
    assert only(AuditAction.RINGCENTRAL_UNSHARED).target_id == pk
    assert alice_client.post(f"/ringcentral/{pk}/disconnect/").status_code == 302
    assert only(AuditAction.RINGCENTRAL_UNLINKED).actor == alice


def test_members_invited_role_changed_and_removed(alice_client, team, bob):
    alice_client.post(
        f"/teams/{team.slug}/invite/", {"email": "erin@example.com", "role": "viewer"}
    )
    bob_member = Membership.objects.get(team=team, user=bob)
    alice_client.post(f"/teams/{team.slug}/members/{bob_member.pk}/role/", {"role": "viewer"})
    changed = only(AuditAction.MEMBER_ROLE_CHANGED)
    assert changed.details == {"from": "sender", "to": "viewer"}
    assert changed.target_label == "bob@example.com"
    alice_client.post(f"/teams/{team.slug}/members/{bob_member.pk}/remove/")
    removed = only(AuditAction.MEMBER_REMOVED)
    assert removed.target_id == str(bob.pk) and removed.details == {"role": "viewer"}
    assert only(AuditAction.MEMBER_INVITED).target_label == "erin@example.com"


def test_a_member_leaving_is_recorded(bob_client, bob, team):
    assert bob_client.post(f"/teams/{team.slug}/leave/").status_code == 302
    left = only(AuditAction.MEMBER_REMOVED)
    assert left.actor == bob and left.details == {"role": "sender", "left": True}


def test_webhook_endpoints_created_and_revoked(settings, alice_client, alice):
    settings.HOOKS_ALLOW_PRIVATE_NETWORKS = True
    alice_client.post(
        "/team/webhooks/new/", {"url": "http://127.0.0.1:9/hook", "events": ["message.sent"]}
    )
    created = only(AuditAction.WEBHOOK_CREATED)
    assert created.actor == alice and created.details == {"events": "message.sent"}
    alice_client.post(f"/team/webhooks/{created.target_id}/rotate/")
    alice_client.post(f"/team/webhooks/{created.target_id}/delete/")
    assert only(AuditAction.WEBHOOK_SECRET_ROTATED).target_id == created.target_id
    assert only(AuditAction.WEBHOOK_REVOKED).target_label == "http://127.0.0.1:9/hook"
    # The secret itself is never written to the log.
    for entry in AuditEntry.objects.all():
        assert "whsec_" not in str(entry.details) + entry.target_label


def test_exports_are_recorded(alice_client, bob_client, alice, bob):
    assert bob_client.get("/contacts/export.csv").status_code == 200
    assert only(AuditAction.CONTACTS_EXPORTED).actor == bob
    answer = alice_client.get("/team/audit/export.csv", {"action": "export.contacts"})
    assert answer.status_code == 200
    exported = only(AuditAction.AUDIT_EXPORTED)
    assert exported.actor == alice and exported.details == {"action": "export.contacts"}


def test_consent_changes_by_a_person_and_by_keyword(alice_client, alice, team, number):
    alice_client.post("/consent/", {"number": "+16505550199", "action": "opt_out", "note": ""})
    out = only(AuditAction.CONSENT_OPTED_OUT)
    assert out.actor == alice and out.target_label == "+16505550199"
    assert out.details["source"] == "manual"
    alice_client.post("/consent/", {"number": "+16505550199", "action": "opt_in", "note": ""})
    assert only(AuditAction.CONSENT_OPTED_IN).actor == alice
    # A contact texting STOP, stored outside a request: the system acted.
    storing.store_record(
        number.connection, parse_message(inbound("STOP")), source=MessageSource.SYNC
    )
    by_keyword = entries(AuditAction.CONSENT_OPTED_OUT)[-1]
    assert by_keyword.actor is None and by_keyword.actor_label == SYSTEM
    assert by_keyword.details["source"] == "keyword"


# --- append-only ------------------------------------------------------------------------------


def test_entries_cannot_be_changed_or_deleted(alice, team):
    entry = audit.record(AuditAction.CONTACTS_EXPORTED, team=team)
    entry.action = AuditAction.MEMBER_REMOVED
    with pytest.raises(AuditEntryError):
        entry.save()
    with pytest.raises(AuditEntryError):
        entry.delete()
    assert AuditEntry.objects.get().action == AuditAction.CONTACTS_EXPORTED


def test_the_console_lists_entries_read_only(admin_client, alice, team):
    entry = audit.record(AuditAction.CONTACTS_EXPORTED, team=team, target=("x", 1, "=SUM(A1)"))
    listing = admin_client.get("/admin/messaging/auditentry/")
    assert listing.status_code == 200 and "Contacts exported" in listing.content.decode()
    page = admin_client.get(f"/admin/messaging/auditentry/{entry.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert admin_client.post(f"/admin/messaging/auditentry/{entry.pk}/delete/").status_code == 403
    assert admin_client.get("/admin/messaging/auditentry/add/").status_code == 403
    bulk = admin_client.post(
        "/admin/messaging/auditentry/",
        {"action": "delete_selected", "_selected_action": [entry.pk]},
    )
    assert bulk.status_code in (200, 302)
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_the_log_page_offers_no_change(alice_client, team):
    audit.record(AuditAction.CONTACTS_EXPORTED, team=team)
    assert alice_client.post("/team/audit/").status_code == 405
    assert alice_client.delete("/team/audit/").status_code == 405


# --- the team admin's page --------------------------------------------------------------------


@pytest.fixture
def history(team, alice, bob, dana):
    """A week of entries: alice invites every day, bob exports on the last."""
    now = timezone.now()
    for day in range(7):
        entry = audit.record(
            AuditAction.MEMBER_INVITED, team=team, target=("invitation", day, f"p{day}@x.com")
        )
        AuditEntry.objects.filter(pk=entry.pk).update(
            at=now - timedelta(days=day), actor=alice, actor_label=alice.email
        )
    entry = audit.record(AuditAction.CONTACTS_EXPORTED, team=team, target=("x", 1, "=HYPERLINK()"))
    AuditEntry.objects.filter(pk=entry.pk).update(actor=bob, actor_label=bob.email)


def shown(response) -> list[AuditEntry]:
    return list(response.context["page"].object_list)


def test_admins_filter_by_action_person_and_dates(dana_client, history):
    assert len(shown(dana_client.get("/team/audit/"))) == 8
    invited = shown(dana_client.get("/team/audit/", {"action": "member.invited"}))
    assert len(invited) == 7 and {e.action for e in invited} == {"member.invited"}
    assert [e.actor_label for e in shown(dana_client.get("/team/audit/", {"person": "bob"}))] == [
        "bob@example.com"
    ]
    today = timezone.localdate()
    recent = dana_client.get(
        "/team/audit/", {"since": str(today - timedelta(days=2)), "until": str(today)}
    )
    assert {e.target_label for e in shown(recent) if e.action == "member.invited"} == {
        "p0@x.com",
        "p1@x.com",
        "p2@x.com",
    }
    bad = dana_client.get("/team/audit/", {"since": str(today), "until": "2000-01-01"})
    assert bad.status_code == 400 and "start date is after" in bad.content.decode()
    assert dana_client.get("/team/audit/", {"action": "nonsense"}).status_code == 400


def test_the_log_is_paged(alice_client, team):
    for i in range(55):
        audit.record(AuditAction.CONTACTS_EXPORTED, team=team, target=("x", i, f"t{i}"))
    first = alice_client.get("/team/audit/")
    assert len(shown(first)) == 50 and "page=2" in first.content.decode()
    second = alice_client.get("/team/audit/", {"page": 2})
    assert len(shown(second)) == 5
    assert alice_client.get("/team/audit/", {"page": "x"}).status_code == 200


def test_the_csv_export_is_filtered_and_formula_safe(alice_client, history):
    answer = alice_client.get("/team/audit/export.csv", {"person": "bob"})
    assert answer["Content-Type"].startswith("text/csv")
    text = b"".join(answer.streaming_content).decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[0].startswith("When (UTC),Who,API key,Address,Action")
    assert len(lines) == 2
    assert "bob@example.com" in lines[1] and "'=HYPERLINK()" in lines[1]


def test_viewers_and_senders_are_refused_and_outsiders_see_nothing_of_the_team(
    bob_client, victor_client, charlie_client, history
):
    for client in (bob_client, victor_client):
        assert client.get("/team/audit/").status_code == 403
        assert client.get("/team/audit/export.csv").status_code == 403
    # charlie's current team is his own: Acme's log does not exist for him.
    mine = charlie_client.get("/team/audit/")
    assert mine.status_code == 200 and shown(mine) == []
    export = b"".join(charlie_client.get("/team/audit/export.csv").streaming_content)
    assert b"alice@example.com" not in export and b"invitation" not in export


def test_an_anonymous_visitor_is_sent_to_sign_in(client, history):
    assert client.get("/team/audit/").status_code == 302
    assert client.get("/team/audit/export.csv").status_code == 302


def test_api_keys_made_and_revoked_and_what_a_key_sends_are_recorded(
    alice_client, alice, team, number
):
    from tests.api_fixtures import ApiClient

    page = alice_client.post(
        f"/teams/{team.slug}/api-keys/", {"name": "Booking system", "role": "sender"}
    )
    secret = page.content.decode().split('value="mp_live_')[1].split('"')[0]
    made = only(AuditAction.API_KEY_CREATED)
    assert (made.actor, made.target_label.startswith("Booking system")) == (alice, True)
    assert made.details == {"role": "sender"}

    sent = ApiClient("mp_live_" + secret).post(
        "/api/v1/messages", {"from": number.phone_number, "to": ["+16505550123"], "text": "Hi"}
    )
    assert sent.status_code == 201, sent.content
    queued = only(AuditAction.MESSAGE_QUEUED)
    assert queued.api_key_prefix == made.target_label.split("(")[1][:16]
    assert queued.actor == alice  # the key acts as its maker

    key_id = made.target_id
    assert alice_client.post(f"/teams/{team.slug}/api-keys/{key_id}/revoke/").status_code < 400
    assert only(AuditAction.API_KEY_REVOKED).actor == alice

    call_command("create_api_key", "--user", alice.email, "--team", team.slug, stdout=StringIO())
    assert [e.actor for e in entries(AuditAction.API_KEY_CREATED)] == [alice, alice]
