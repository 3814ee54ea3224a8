"""The team inbox, without RingCentral's sync: instant webhook deliveries stored exactly once
and threaded, messages sent from the portal joining their conversations, the list and thread
pages, what members do (assign, close, reopen, notes, read state) and who may, notifications.
Message sync against the emulator is in tests/test_inbox_sync.py."""

import json
import re
from datetime import timedelta
from html import unescape

import pytest
from django.core import mail
from django.utils import timezone

from messaging.compose import submission
from messaging.inbox import notifications, storing, threads
from messaging.models import (
    Conversation,
    ConversationMessage,
    ConversationNote,
    ConversationState,
    Direction,
    FileState,
    InboxEmails,
    InboxFile,
    Membership,
    MessageSource,
    Notification,
    WebhookStatus,
    WebhookSubscription,
)
from messaging.ringcentral.records import parse_message
from messaging.tracking import subscriptions as tracking
from tests.factories import make_connection, make_number

WEBHOOK = "/ringcentral/webhook/"
OURS = "+16505550100"
CONTACT = "+16505550111"
OTHER = "+16505550122"
_ids = iter(range(7_000_000_001, 7_999_999_999))


@pytest.fixture
def linked(team, alice):
    connection = make_connection(team, alice, shared=True)
    number = make_number(connection, OURS)
    return connection, number


@pytest.fixture
def webhook(linked):
    connection, _ = linked
    sub = WebhookSubscription.objects.create(connection=connection, status=WebhookStatus.PENDING)
    sub.verification_token = tracking.new_verification_token(sub.pk)
    sub.rc_subscription_id = "5f6f0b8a-1111-4c1d-9e1e-2b3c4d5e6f70"
    sub.status = WebhookStatus.ACTIVE
    sub.expires_at = timezone.now() + timedelta(days=7)
    sub.save()
    return sub


def inbound(
    text="Is my order ready?", *, sender=CONTACT, to=(OURS,), files=(), at=None, rc_id=None
):
    """An inbound message record as RingCentral writes it (instant event body, sync record)."""
    rc_id = rc_id or next(_ids)
    attachments = [{"id": str(rc_id) + "0", "type": "Text", "contentType": "text/plain"}]
    for i, (name, content_type, size) in enumerate(files, start=1):
        attachments.append(
            {
                "id": f"{rc_id}{i}",
                "uri": f"https://media.ringcentral.com/restapi/v1.0/account/1/extension/2/"
                f"message-store/{rc_id}/content/{rc_id}{i}",
                "type": "MmsAttachment",
                "contentType": content_type,
                "fileName": name,
                "size": size,
            }
        )
    return {
        "id": rc_id,
        "uri": f"https://platform.ringcentral.com/restapi/v1.0/account/1/extension/2/message-store/{rc_id}",
        "type": "SMS",
        "direction": "Inbound",
        "from": {"phoneNumber": sender},
        "to": [{"phoneNumber": n} for n in to],
        "subject": text,
        "messageStatus": "Received",
        "readStatus": "Unread",
        "availability": "Alive",
        "creationTime": (at or timezone.now()).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "lastModifiedTime": (at or timezone.now()).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "conversation": {"id": "7398453567859182345"},
        "attachments": attachments,
    }


def instant(sub, body):
    return {
        "uuid": "2b1e9d1f-0000-4a5b-8c7d-6e5f4a3b2c1d",
        "event": "/restapi/v1.0/account/1/extension/2/message-store/instant?type=SMS",
        "timestamp": timezone.now().strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "subscriptionId": sub.rc_subscription_id,
        "ownerId": "2",
        "body": body,
    }


def deliver(client, sub, payload, token=None):
    return client.post(
        WEBHOOK,
        data=json.dumps(payload),
        content_type="application/json",
        headers={"Verification-Token": token if token is not None else sub.verification_token},
    )


def texts(conversation):
    return list(conversation.messages.order_by("at", "pk").values_list("text", flat=True))


# --- Receiving by webhook -------------------------------------------------------------------------


def test_an_instant_delivery_is_stored_once_in_its_conversation(client, webhook, linked, team):
    body = inbound("Is my order ready?")
    for _ in range(3):  # RingCentral may deliver the same notification again
        assert deliver(client, webhook, instant(webhook, body)).status_code == 200
    conversation = Conversation.objects.get()
    assert (conversation.team, conversation.team_number, conversation.contact_key) == (
        team,
        OURS,
        CONTACT,
    )
    entry = ConversationMessage.objects.get()
    assert (entry.direction, entry.source, entry.text) == (
        Direction.INBOUND,
        MessageSource.WEBHOOK,
        "Is my order ready?",
    )
    assert conversation.inbound_count == 1
    assert conversation.last_preview == "Is my order ready?"


def test_a_delivery_with_a_wrong_token_stores_nothing(client, webhook):
    answer = deliver(
        client, webhook, instant(webhook, inbound()), token=webhook.verification_token + "x"
    )
    assert answer.status_code == 403
    assert not ConversationMessage.objects.exists()


@pytest.mark.parametrize("body", [None, "text", [], {"no": "id"}, {"id": ""}])
def test_an_instant_delivery_without_a_message_is_a_400_and_stores_nothing(client, webhook, body):
    assert deliver(client, webhook, instant(webhook, body)).status_code == 400
    assert not ConversationMessage.objects.exists()


def test_the_same_message_from_webhook_and_sync_is_stored_once(webhook, linked):
    connection, _ = linked
    record = parse_message(inbound("Hello"))
    first = storing.store_record(connection, record, source=MessageSource.WEBHOOK)
    again = storing.store_record(connection, record, source=MessageSource.SYNC)
    assert first.created and not again.created
    assert ConversationMessage.objects.count() == 1
    assert Conversation.objects.get().inbound_count == 1


def test_messages_arriving_out_of_order_are_shown_in_ringcentrals_order(linked):
    connection, _ = linked
    now = timezone.now()
    later = parse_message(inbound("second", at=now))
    earlier = parse_message(inbound("first", at=now - timedelta(minutes=5)))
    storing.store_record(connection, later, source=MessageSource.WEBHOOK)
    storing.store_record(connection, earlier, source=MessageSource.SYNC)
    conversation = Conversation.objects.get()
    assert texts(conversation) == ["first", "second"]
    # The list keeps showing the newest message, whichever arrived last.
    assert conversation.last_preview == "second"


def test_a_group_mms_is_one_conversation_by_its_participants(linked):
    connection, _ = linked
    for sender in (CONTACT, OTHER):
        others = {CONTACT, OTHER} - {sender}
        record = parse_message(inbound(f"from {sender}", sender=sender, to=(OURS, *others)))
        storing.store_record(connection, record, source=MessageSource.WEBHOOK)
    conversation = Conversation.objects.get()
    assert conversation.is_group
    assert conversation.contact_numbers == sorted([CONTACT, OTHER])
    assert conversation.inbound_count == 2


def test_the_same_contact_on_another_of_our_numbers_is_another_conversation(linked):
    connection, _ = linked
    make_number(connection, "+16505550101")
    for ours in (OURS, "+16505550101"):
        record = parse_message(inbound("hi", to=(ours,)))
        storing.store_record(connection, record, source=MessageSource.WEBHOOK)
    assert Conversation.objects.count() == 2


def test_a_received_mms_lists_its_files_as_downloading_and_keeps_the_text(linked):
    connection, _ = linked
    record = parse_message(inbound("See photo", files=[("photo.jpg", "image/jpeg", 2048)]))
    stored = storing.store_record(connection, record, source=MessageSource.WEBHOOK)
    file = InboxFile.objects.get()
    assert (file.message, file.state, file.original_name) == (
        stored.entry,
        FileState.PENDING,
        "photo.jpg",
    )
    assert stored.entry.text == "See photo"


def test_a_new_message_reopens_a_closed_conversation(linked, alice, team):
    connection, _ = linked
    storing.store_record(connection, parse_message(inbound("one")), source=MessageSource.SYNC)
    conversation = Conversation.objects.get()
    from messaging.inbox import actions

    actions.close(Membership.objects.get(team=team, user=alice), conversation)
    assert Conversation.objects.get().state == ConversationState.CLOSED
    storing.store_record(connection, parse_message(inbound("two")), source=MessageSource.SYNC)
    assert Conversation.objects.get().state == ConversationState.OPEN


# --- Messages sent from the portal ---------------------------------------------------------------


def test_a_message_written_in_the_portal_joins_the_contacts_conversation(linked, bob, team):
    connection, number = linked
    storing.store_record(
        connection, parse_message(inbound("Question?")), source=MessageSource.WEBHOOK
    )
    membership = Membership.objects.get(team=team, user=bob)
    outgoing = submission.prepare(membership, sender=number.pk, to=CONTACT, text="Answer!")
    [message] = submission.submit(outgoing)
    conversation = Conversation.objects.get()
    assert texts(conversation) == ["Question?", "Answer!"]
    entry = conversation.messages.get(direction=Direction.OUTBOUND)
    assert entry.outbound == message and entry.source == MessageSource.PORTAL
    assert conversation.last_direction == Direction.OUTBOUND


def test_a_separate_send_to_many_makes_one_conversation_each_in_few_queries(
    linked, bob, team, django_assert_max_num_queries
):
    connection, number = linked
    membership = Membership.objects.get(team=team, user=bob)
    recipients = [f"+1650555{i:04d}" for i in range(1000, 1100)]
    outgoing = submission.prepare(membership, sender=number.pk, to=",".join(recipients), text="Hi")
    # The outbox itself writes each message and its recipient (200); threading adds a few.
    with django_assert_max_num_queries(200 + 20):
        submission.submit(outgoing)
    assert Conversation.objects.count() == 100
    assert ConversationMessage.objects.filter(outbound__isnull=False).count() == 100


def test_ringcentrals_record_of_a_portal_message_is_not_stored_again(linked, bob, team):
    connection, number = linked
    membership = Membership.objects.get(team=team, user=bob)
    [message] = submission.submit(
        submission.prepare(membership, sender=number.pk, to=CONTACT, text="Answer!")
    )
    record = inbound("Answer!", sender=OURS, to=(CONTACT,))
    record["direction"], record["messageStatus"] = "Outbound", "Queued"
    # Before the outbox records RingCentral's answer, the record is left for a later sync…
    assert storing.store_record(
        connection, parse_message(record), source=MessageSource.SYNC
    ).skipped
    # …and once it has, the record is recognised by its id.
    message.rc_message_id, message.status, message.sent_at = (
        str(record["id"]),
        "sent",
        timezone.now(),
    )
    message.save()
    again = storing.store_record(connection, parse_message(record), source=MessageSource.SYNC)
    assert not again.created
    assert ConversationMessage.objects.count() == 1
    assert ConversationMessage.objects.get().rc_message_id == str(record["id"])


def test_a_message_sent_from_the_ringcentral_app_appears_with_its_status(linked):
    connection, _ = linked
    record = inbound("Sent from my desk phone", sender=OURS, to=(CONTACT,))
    record["direction"], record["messageStatus"] = "Outbound", "Sent"
    storing.store_record(connection, parse_message(record), source=MessageSource.SYNC)
    record["messageStatus"] = "Delivered"
    storing.store_record(connection, parse_message(record), source=MessageSource.SYNC)
    entry = ConversationMessage.objects.get()
    assert (entry.direction, entry.rc_status, entry.outbound) == (
        Direction.OUTBOUND,
        "Delivered",
        None,
    )
    assert Conversation.objects.get().inbound_count == 0


# --- Pages ---------------------------------------------------------------------------------------


@pytest.fixture
def conversation(linked):
    connection, _ = linked
    storing.store_record(
        connection, parse_message(inbound("<b>Hi</b> <script>alert(1)</script>")), source="webhook"
    )
    return Conversation.objects.get()


def test_the_list_shows_the_conversation_unread_for_each_person(
    bob_client, alice_client, conversation
):
    page = bob_client.get("/inbox/").content.decode()
    assert "+1 650-555-0111" in page and "1 unread" in page
    # Markup in a message is shown as text.
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    bob_client.get(f"/inbox/{conversation.pk}/")
    assert "1 unread" not in bob_client.get("/inbox/").content.decode()
    assert "1 unread" in alice_client.get("/inbox/").content.decode()


def test_the_navigation_badge_counts_conversations_with_unread_messages(bob_client, conversation):
    assert re.search(r"data-inbox-badge>1<", bob_client.get("/messages/").content.decode())
    bob_client.get(f"/inbox/{conversation.pk}/")
    assert "data-inbox-badge hidden" in bob_client.get("/messages/").content.decode()


def test_the_thread_shows_the_exchange_and_offers_a_reply(bob_client, conversation):
    page = bob_client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert "&lt;b&gt;Hi&lt;/b&gt;" in page
    assert f'action="/inbox/{conversation.pk}/reply/"' in page


def test_filters_and_search(bob_client, bob, linked, conversation):
    connection, _ = linked
    storing.store_record(
        connection, parse_message(inbound("Where is the invoice?", sender=OTHER)), source="sync"
    )

    def listed(query):
        page = bob_client.get("/inbox/" + query).content.decode()
        return sorted(set(re.findall(r'data-conversation="(\d+)"', page)))

    invoice = Conversation.objects.get(contact_key=OTHER)
    assert listed("?q=invoice") == [str(invoice.pk)]
    assert listed("?q=555-0111") == [str(conversation.pk)]
    assert listed("?q=(650)%20555%200122") == [str(invoice.pk)]
    assert listed("?filter=mine") == []
    Conversation.objects.filter(pk=invoice.pk).update(assignee=bob)
    assert listed("?filter=mine") == [str(invoice.pk)]
    assert listed("?filter=unassigned") == [str(conversation.pk)]
    Conversation.objects.filter(pk=invoice.pk).update(state=ConversationState.CLOSED)
    assert listed("?filter=closed") == [str(invoice.pk)]
    assert listed("") == [str(conversation.pk)]
    assert listed("?filter=nonsense") == [str(conversation.pk)]
    assert bob_client.get("/inbox/?after=not-a-cursor").status_code == 404


def test_the_live_list_answers_only_when_something_changed(bob_client, linked, conversation):
    first = bob_client.get("/inbox/live/").json()
    assert first["changed"] and first["unread"] == 1
    same = bob_client.get("/inbox/live/", {"version": first["version"]}).json()
    assert same == {"changed": False, "unread": 1}
    connection, _ = linked
    storing.store_record(connection, parse_message(inbound("Anyone?")), source="webhook")
    moved = bob_client.get("/inbox/live/", {"version": first["version"]}).json()
    assert moved["changed"] and "Anyone?" in moved["html"]


def test_the_live_thread_brings_a_new_message_and_marks_it_read(
    bob_client, bob, linked, conversation
):
    version = re.search(
        r'data-version="([^"]+)"', bob_client.get(f"/inbox/{conversation.pk}/").content.decode()
    ).group(1)
    assert bob_client.get(f"/inbox/{conversation.pk}/live/", {"version": version}).json() == {
        "changed": False
    }
    connection, _ = linked
    storing.store_record(connection, parse_message(inbound("One more thing")), source="webhook")
    answer = bob_client.get(f"/inbox/{conversation.pk}/live/", {"version": version}).json()
    assert answer["changed"] and "One more thing" in answer["html"]
    assert "1 unread" not in bob_client.get("/inbox/").content.decode()


# --- Working as a team ---------------------------------------------------------------------------


def test_a_sender_assigns_closes_reopens_and_writes_notes(bob_client, bob, alice, conversation):
    url = f"/inbox/{conversation.pk}/"
    assert bob_client.post(url + "assign/", {"assignee": alice.pk}).status_code == 302
    assert Conversation.objects.get().assignee == alice
    assert bob_client.post(url + "close/").status_code == 302
    assert Conversation.objects.get().state == ConversationState.CLOSED
    assert bob_client.post(url + "reopen/").status_code == 302
    assert Conversation.objects.get().state == ConversationState.OPEN
    assert bob_client.post(url + "notes/", {"text": "Called her back"}).status_code == 302
    note = ConversationNote.objects.get()
    assert (note.author, note.text) == (bob, "Called her back")
    assert "Called her back" in bob_client.get(url).content.decode()
    assert bob_client.post(url + "assign/", {"assignee": ""}).status_code == 302
    assert Conversation.objects.get().assignee is None


def test_assigning_to_someone_outside_the_team_changes_nothing(bob_client, charlie, conversation):
    for value in (charlie.pk, "x", "99999999999999999999"):
        answer = bob_client.post(
            f"/inbox/{conversation.pk}/assign/", {"assignee": value}, follow=True
        )
        assert "Choose a member of this team." in unescape(answer.content.decode())
    assert Conversation.objects.get().assignee is None


def test_an_empty_note_is_refused_with_a_message(bob_client, conversation):
    answer = bob_client.post(f"/inbox/{conversation.pk}/notes/", {"text": "  "}, follow=True)
    assert "Write the note first." in answer.content.decode()
    assert not ConversationNote.objects.exists()


def test_a_viewer_reads_but_cannot_act(victor_client, conversation):
    url = f"/inbox/{conversation.pk}/"
    page = victor_client.get(url).content.decode()
    assert "viewer role" in page and "/reply/" not in page
    for action in ("assign/", "close/", "reopen/", "notes/", "reply/"):
        assert victor_client.post(url + action, {"text": "x", "assignee": ""}).status_code == 403
    assert not ConversationNote.objects.exists()
    assert Conversation.objects.get().state == ConversationState.OPEN


def test_only_the_author_or_an_admin_deletes_a_note(bob_client, dana_client, alice, conversation):
    note = ConversationNote.objects.create(conversation=conversation, author=alice, text="mine")
    url = f"/inbox/{conversation.pk}/notes/{note.pk}/delete/"
    assert bob_client.post(url).status_code == 403
    assert dana_client.post(url).status_code == 302
    assert not ConversationNote.objects.exists()


def test_an_outsider_gets_404_for_every_inbox_url(charlie_client, conversation, linked):
    connection, _ = linked
    record = parse_message(inbound("photo", files=[("a.jpg", "image/jpeg", 10)]))
    storing.store_record(connection, record, source="webhook")
    file = InboxFile.objects.get()
    InboxFile.objects.filter(pk=file.pk).update(
        state=FileState.STORED, file="inbox/x", thumbnail="inbox/y"
    )
    note = ConversationNote.objects.create(conversation=conversation, text="secret")
    base = f"/inbox/{conversation.pk}/"
    for url in (
        base,
        base + "live/",
        f"/inbox/files/{file.key}/",
        f"/inbox/files/{file.key}/thumbnail/",
    ):
        assert charlie_client.get(url).status_code == 404, url
    for url in (
        "reply/",
        "assign/",
        "close/",
        "reopen/",
        "unread/",
        "notes/",
        f"notes/{note.pk}/delete/",
    ):
        assert charlie_client.post(base + url, {"text": "x"}).status_code == 404, url
    assert "secret" not in charlie_client.get("/inbox/").content.decode()


# --- Notifications -------------------------------------------------------------------------------


def test_a_new_message_notifies_the_senders_while_nobody_is_assigned(
    linked, team, alice, bob, victor, django_capture_on_commit_callbacks
):
    connection, _ = linked
    storing.store_record(connection, parse_message(inbound("Hello?")), source="webhook")
    notified = set(Notification.objects.values_list("user__email", flat=True))
    assert notified == {"alice@example.com", "bob@example.com"}  # not the viewer


def test_the_assignee_alone_is_notified_and_a_second_message_updates_the_notice(
    linked, bob, alice, conversation
):
    connection, _ = linked
    Notification.objects.all().delete()
    Conversation.objects.filter(pk=conversation.pk).update(assignee=bob)
    for text in ("first", "second"):
        storing.store_record(connection, parse_message(inbound(text)), source="webhook")
    notice = Notification.objects.get()
    assert notice.user == bob and "second" in notice.text


def test_emails_follow_each_persons_setting_at_most_one_per_gap(
    linked, team, alice, bob, conversation
):
    Membership.objects.filter(team=team, user=alice).update(inbox_emails=InboxEmails.ALL)
    entry = ConversationMessage.objects.get()
    assert notifications.email_people(conversation.pk, entry.pk) == 1  # bob: assigned only
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]
    assert f"/inbox/{conversation.pk}/" in mail.outbox[0].body
    assert notifications.email_people(conversation.pk, entry.pk) == 0  # within the gap
    Conversation.objects.filter(pk=conversation.pk).update(assignee=bob)
    assert notifications.email_people(conversation.pk, entry.pk) == 1
    assert mail.outbox[-1].to == ["bob@example.com"]


def test_opening_the_thread_marks_its_notices_read(bob_client, bob, conversation):
    assert Notification.objects.filter(user=bob, read_at__isnull=True).exists()
    bob_client.get(f"/inbox/{conversation.pk}/")
    assert not Notification.objects.filter(user=bob, read_at__isnull=True).exists()


def test_the_email_setting_is_saved_and_bad_values_are_refused(bob_client, bob, team):
    assert bob_client.post("/inbox/settings/", {"inbox_emails": "none"}).status_code == 302
    assert Membership.objects.get(team=team, user=bob).inbox_emails == InboxEmails.NONE
    assert bob_client.post("/inbox/settings/", {"inbox_emails": "spam"}).status_code == 400


def test_contact_key_leaves_our_number_out_and_sorts():
    assert threads.contact_key(["+2", OURS, "+1"], OURS) == "+1,+2"


# --- Replying ------------------------------------------------------------------------------------


@pytest.fixture
def _private_media(tmp_path, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media", "base_url": None},
        },
    }


def test_a_reply_with_a_photo_goes_from_the_number_the_contact_texted(
    bob_client, bob, conversation, _private_media
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from messaging.models import OutboundMessage
    from tests import media_samples as samples

    photo = SimpleUploadedFile("photo.jpg", samples.jpeg(), content_type="image/jpeg")
    answer = bob_client.post(
        f"/inbox/{conversation.pk}/reply/", {"text": "Here it is", "attachments": [photo]}
    )
    assert answer.status_code == 302
    message = OutboundMessage.objects.get()
    assert (message.from_number, message.text, message.created_by) == (OURS, "Here it is", bob)
    assert list(message.recipients.values_list("phone_number", flat=True)) == [CONTACT]
    assert message.attachments.get().content_type == "image/jpeg"
    assert texts(Conversation.objects.get())[-1] == "Here it is"
    assert answer["Location"].endswith(f"#message-{message.conversation_message.pk}")


def test_a_reply_in_a_group_conversation_is_one_group_message(bob_client, linked):
    from messaging.models import OutboundMessage

    connection, _ = linked
    record = parse_message(inbound("all of us", to=(OURS, OTHER)))
    storing.store_record(connection, record, source="webhook")
    conversation = Conversation.objects.get()
    assert (
        bob_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "Hi both"}).status_code == 302
    )
    message = OutboundMessage.objects.get()
    assert message.is_group
    assert sorted(message.recipients.values_list("phone_number", flat=True)) == [CONTACT, OTHER]


def test_an_invalid_reply_keeps_the_text_and_says_why(bob_client, conversation):
    from messaging.models import OutboundMessage

    answer = bob_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "x" * 1001})
    assert answer.status_code == 400
    page = unescape(answer.content.decode())
    assert "x" * 1001 in page and "1,000" in page
    assert not OutboundMessage.objects.exists()


def test_a_reply_from_a_number_the_person_may_not_use_says_who_can(
    bob_client, linked, conversation
):
    connection, _ = linked
    connection.shared_with_team = False
    connection.save()
    page = bob_client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert "not shared with the team" in page and "alice@example.com" in page
    answer = bob_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "Hi"})
    assert answer.status_code == 400
    assert "not shared with the team" in answer.content.decode()


def test_a_reply_body_over_the_limit_is_refused_before_it_is_read(
    bob_client, conversation, settings
):
    settings.COMPOSE_MAX_REQUEST_BYTES = 1_000
    answer = bob_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "y" * 200_000})
    assert answer.status_code == 413
    assert "this portal accepts at most" in unescape(answer.content.decode())


# --- Cost ----------------------------------------------------------------------------------------


def test_list_and_thread_cost_the_same_queries_whatever_their_size(
    bob_client, linked, conversation, django_assert_num_queries
):
    connection, _ = linked

    def queries(url):
        from django.db import connection as db
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(db) as captured:
            assert bob_client.get(url).status_code == 200
        return len(captured)

    bob_client.get(f"/inbox/{conversation.pk}/")  # the first visit creates the read state
    small_list, small_thread = queries("/inbox/"), queries(f"/inbox/{conversation.pk}/")
    for i in range(30):
        sender = f"+1650555{2000 + i:04d}"
        files = [("p.jpg", "image/jpeg", 10)] if i % 3 == 0 else ()
        storing.store_record(
            connection, parse_message(inbound(f"m{i}", sender=sender, files=files)), source="sync"
        )
        storing.store_record(
            connection, parse_message(inbound(f"again {i}", files=files)), source="sync"
        )
    ConversationNote.objects.create(conversation=conversation, text="a note")
    bob_client.get(f"/inbox/{conversation.pk}/")  # reads the new messages, as before
    assert queries("/inbox/") == small_list
    assert queries(f"/inbox/{conversation.pk}/") == small_thread


def test_the_admin_console_lists_received_and_sent_messages_with_their_conversation(
    admin_client, linked, bob, team
):
    connection, number = linked
    storing.store_record(connection, parse_message(inbound("Received one")), source="webhook")
    membership = Membership.objects.get(team=team, user=bob)
    submission.submit(submission.prepare(membership, sender=number.pk, to=CONTACT, text="Sent one"))
    changelist = "/admin/messaging/conversationmessage/"
    page = admin_client.get(changelist).content.decode()
    assert "Received one" in page and "Sent one" in page
    received = admin_client.get(changelist, {"direction__exact": "inbound"}).content.decode()
    assert "Received one" in received and "Sent one" not in received
    conversation = Conversation.objects.get()
    assert f"/admin/messaging/conversation/{conversation.pk}/change/" in page
    assert (
        admin_client.get(f"/admin/messaging/conversation/{conversation.pk}/change/").status_code
        == 200
    )
    entry = ConversationMessage.objects.get(direction=Direction.INBOUND)
    assert admin_client.get(f"{changelist}{entry.pk}/change/").status_code == 200
