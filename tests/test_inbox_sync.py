"""The inbox against RingCentral's emulator over a real socket: message sync (the history at
link time, then incremental), catching up after downtime, a refused sync token, the webhook and
sync bringing the same message, files of received MMS fetched into local storage and S3,
messages sent from the portal and from elsewhere, and STOP arriving as a message."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.compose import submission
from messaging.inbox import downloads, instant
from messaging.inbox import sync as inbox_sync
from messaging.models import (
    Conversation,
    ConversationMessage,
    Direction,
    FileState,
    InboxFile,
    InboxSync,
    Membership,
    MessageSource,
)
from messaging.sending.attempt import attempt
from tests import media_samples as samples
from tests.rc_fixtures import NUMBER_SMS_MMS, journal
from tests.test_storage_s3 import bucket, s3_endpoint  # noqa: F401 - fixtures
from tests.tracking_helpers import fresh_limits, link_sender  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("fresh_limits")

CONTACT = "+16505550211"
SECOND = "+16505550212"
DAY = 24 * 3600


@pytest.fixture
def media(tmp_path, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media", "base_url": None},
        },
    }
    return tmp_path / "media"


@pytest.fixture
def linked(emulator, team, alice, rc_user):
    connection, number = link_sender(emulator, team, alice, rc_user)
    connection.shared_with_team = True
    connection.save()
    return connection, number


def syncs(emu) -> list:
    return [e for e in journal(emu, "/message-sync") if e.status != 401]


def stored_texts() -> list[str]:
    return list(ConversationMessage.objects.order_by("at", "pk").values_list("text", flat=True))


def test_linking_imports_the_history_of_both_directions_within_the_window(
    emulator, linked, settings
):
    connection, _ = linked
    settings.INBOX_HISTORY_DAYS = 30
    now = emulator.now()
    emulator.inbound(CONTACT, NUMBER_SMS_MMS, "Too old to import", at=now - 40 * DAY)
    emulator.inbound(CONTACT, NUMBER_SMS_MMS, "Can I come at 3?", at=now - 3 * DAY)
    emulator.outbound_elsewhere(NUMBER_SMS_MMS, [CONTACT], "Yes, see you then", at=now - 2 * DAY)
    emulator.inbound(SECOND, NUMBER_SMS_MMS, "Hello", at=now - 60)

    counts = inbox_sync.sync_connection(connection.pk)

    assert counts["stored"] == 3 and counts["full"] == 1
    assert stored_texts() == ["Can I come at 3?", "Yes, see you then", "Hello"]
    assert set(ConversationMessage.objects.values_list("source", flat=True)) == {
        MessageSource.HISTORY
    }
    thread = Conversation.objects.get(contact_key=CONTACT)
    assert list(thread.messages.values_list("direction", flat=True)) == [
        Direction.INBOUND,
        Direction.OUTBOUND,
    ]
    assert InboxSync.objects.get(connection=connection).sync_token


def test_sync_alone_brings_new_messages_once_despite_overlapping_answers(emulator, linked):
    connection, _ = linked
    inbox_sync.sync_connection(connection.pk)
    emulator.inbound(CONTACT, NUMBER_SMS_MMS, "Is the shop open?")
    for _ in range(3):  # each incremental answer overlaps the previous by a few seconds
        inbox_sync.sync_connection(connection.pk)
    assert stored_texts() == ["Is the shop open?"]
    assert Conversation.objects.get().inbound_count == 1
    kinds = [e.path for e in syncs(emulator)]
    assert len(kinds) == 4
    assert all(e.query["syncType"] == ["ISync"] for e in syncs(emulator)[1:])


def test_catching_up_after_downtime_takes_one_request(emulator, linked):
    connection, _ = linked
    inbox_sync.sync_connection(connection.pk)
    before = len(syncs(emulator))
    for i in range(300):
        emulator.inbound(f"+1650556{i:04d}", NUMBER_SMS_MMS, f"While you were away {i}")
    counts = inbox_sync.sync_connection(connection.pk)
    assert counts["stored"] == 300
    assert len(syncs(emulator)) - before == 1
    assert Conversation.objects.count() == 300


def test_a_refused_sync_token_leads_to_a_full_sync_not_a_stuck_inbox(emulator, linked, rc_user):
    connection, _ = linked
    emulator.inbound(CONTACT, NUMBER_SMS_MMS, "Before")
    inbox_sync.sync_connection(connection.pk)
    emulator.invalidate_sync_tokens(rc_user.id)
    emulator.inbound(CONTACT, NUMBER_SMS_MMS, "After")
    counts = inbox_sync.sync_connection(connection.pk)
    assert counts["full"] == 1 and counts["stored"] == 1
    assert stored_texts() == ["Before", "After"]
    # And it carries on incrementally with the new token.
    emulator.inbound(CONTACT, NUMBER_SMS_MMS, "Later")
    assert inbox_sync.sync_connection(connection.pk)["full"] == 0
    assert stored_texts() == ["Before", "After", "Later"]


def test_the_webhook_and_sync_bringing_the_same_message_store_it_once(emulator, linked):
    connection, _ = linked
    inbox_sync.sync_connection(connection.pk)
    message = emulator.inbound(CONTACT, NUMBER_SMS_MMS, "Both ways")
    body = message.to_json(emulator.base_url, emulator.now())
    assert instant.receive(connection.pk, body) == "stored"
    inbox_sync.sync_connection(connection.pk)
    assert instant.receive(connection.pk, body) == "known"
    entry = ConversationMessage.objects.get()
    assert entry.source == MessageSource.WEBHOOK


def test_a_message_sent_from_the_portal_is_recognised_not_stored_again(
    emulator, linked, bob, team, media
):
    connection, number = linked
    inbox_sync.sync_connection(connection.pk)
    membership = Membership.objects.get(team=team, user=bob)
    [message] = submission.submit(
        submission.prepare(membership, sender=number.pk, to=CONTACT, text="From the portal")
    )
    assert attempt(message.pk).what == "sent"
    emulator.advance(10)
    inbox_sync.sync_connection(connection.pk)
    entry = ConversationMessage.objects.get()
    assert entry.outbound_id == message.pk
    message.refresh_from_db()
    assert entry.rc_message_id == message.rc_message_id


def test_a_message_sent_from_the_ringcentral_app_follows_its_status(emulator, linked):
    connection, _ = linked
    inbox_sync.sync_connection(connection.pk)
    emulator.outbound_elsewhere(NUMBER_SMS_MMS, [CONTACT], "From my desk phone")
    inbox_sync.sync_connection(connection.pk)
    entry = ConversationMessage.objects.get()
    assert (entry.direction, entry.outbound) == (Direction.OUTBOUND, None)
    emulator.advance(60)
    inbox_sync.sync_connection(connection.pk)
    entry.refresh_from_db()
    assert entry.rc_status == "Delivered"


def test_stop_arrives_as_a_message_of_the_conversation(emulator, linked):
    connection, _ = linked
    inbox_sync.sync_connection(connection.pk)
    emulator.inbound(CONTACT, NUMBER_SMS_MMS, "STOP")
    inbox_sync.sync_connection(connection.pk)
    assert stored_texts() == ["STOP"]
    assert emulator.opted_out(NUMBER_SMS_MMS, CONTACT)


def test_a_rate_limited_sync_waits_and_tries_again(emulator, linked):
    from messaging.ringcentral.emulator import Fault

    connection, _ = linked
    inbox_sync.sync_connection(connection.pk)
    emulator.inbound(CONTACT, NUMBER_SMS_MMS, "Busy")
    emulator.inject(
        Fault("status", path_contains="/message-sync", status=429, retry_after=1, count=1)
    )
    assert inbox_sync.sync_connection(connection.pk)["deferred"] == 1
    state = InboxSync.objects.get(connection=connection)
    assert state.next_sync_at >= timezone.now() + timedelta(seconds=0.5)
    time.sleep(1.2)  # RingCentral's Retry-After, which pauses the shared budget too
    assert inbox_sync.sync_connection(connection.pk, now=state.next_sync_at)["stored"] == 1


def test_two_syncs_of_one_connection_never_run_at_once(linked):
    connection, _ = linked
    InboxSync.objects.update_or_create(
        connection=connection, defaults={"leased_until": timezone.now() + timedelta(minutes=1)}
    )
    assert inbox_sync.sync_connection(connection.pk) == {"busy": 1}


def test_due_connections_are_synced_by_the_beat_task(emulator, linked, settings):
    connection, _ = linked
    settings.INBOX_SYNC_INTERVAL = 20
    emulator.inbound(CONTACT, NUMBER_SMS_MMS, "Hi")
    assert inbox_sync.sync_due()["stored"] == 1
    state = InboxSync.objects.get(connection=connection)
    assert 15 < (state.next_sync_at - timezone.now()).total_seconds() <= 20
    assert inbox_sync.sync_due() == {}


# --- Files of received MMS -----------------------------------------------------------------------


def received_photo(emulator):
    png = samples.png(320, 240)
    emulator.inbound(
        CONTACT,
        NUMBER_SMS_MMS,
        "Here is the damage",
        attachments=[
            ("damage.png", "image/png", png),
            ("page.html", "text/html", b"<!DOCTYPE html><html><script>x</script></html>"),
        ],
    )
    return png


def test_files_of_a_received_mms_are_fetched_checked_and_served_to_the_team_only(
    emulator, linked, media, bob_client, charlie_client
):
    connection, _ = linked
    png = received_photo(emulator)
    inbox_sync.sync_connection(connection.pk)
    entry = ConversationMessage.objects.get()
    assert entry.text == "Here is the damage"  # the text does not wait for the files
    assert downloads.download_files(entry.pk) == {"stored": 2}
    photo, page = InboxFile.objects.order_by("position")
    assert (photo.state, photo.content_type, photo.size) == (
        FileState.STORED,
        "image/png",
        len(png),
    )
    assert photo.thumbnail
    served = bob_client.get(f"/inbox/files/{photo.key}/")
    assert served.status_code == 200 and b"".join(served.streaming_content) == png
    assert served["Content-Disposition"].startswith("inline")
    # Markup is never shown inline: it downloads, with the browser told not to guess.
    html = bob_client.get(f"/inbox/files/{page.key}/")
    assert html["Content-Disposition"].startswith("attachment")
    assert html["X-Content-Type-Options"] == "nosniff"
    assert bob_client.get(f"/inbox/files/{photo.key}/thumbnail/").status_code == 200
    assert charlie_client.get(f"/inbox/files/{photo.key}/").status_code == 404
    thread = bob_client.get(f"/inbox/{entry.conversation_id}/").content.decode()
    assert f"/inbox/files/{photo.key}/thumbnail/" in thread


def test_a_failed_download_is_tried_again_and_the_text_is_never_lost(emulator, linked, media):
    from messaging.ringcentral.emulator import Fault

    connection, _ = linked
    received_photo(emulator)
    inbox_sync.sync_connection(connection.pk)
    emulator.inject(Fault("status", path_contains="/content/", status=503, count=2))
    assert downloads.download_files() == {"retry": 2}
    file = InboxFile.objects.order_by("position").first()
    assert file.state == FileState.PENDING and file.tries == 1 and file.error
    # Not due yet; then due, and fetched.
    assert downloads.download_files() == {}
    later = timezone.now() + timedelta(seconds=downloads.RETRY_AFTER[0] + 1)
    assert downloads.download_files(now=later) == {"stored": 2}


def test_a_program_received_is_not_kept(emulator, linked, media):
    connection, _ = linked
    emulator.inbound(
        CONTACT,
        NUMBER_SMS_MMS,
        "",
        attachments=[
            (
                "setup.zip",
                "application/zip",
                samples.zip_file({"setup.exe": samples.windows_program()}),
            )
        ],
    )
    inbox_sync.sync_connection(connection.pk)
    assert downloads.download_files() == {"refused": 1}
    file = InboxFile.objects.get()
    assert file.state == FileState.REFUSED and "program" in file.error and not file.file


def test_a_hostile_picture_received_is_kept_without_a_preview(emulator, linked, media):
    """Its preview is decoded under the media budget in a child process: a tiny GIF declaring
    400 frames of 7000 × 7000 pixels is refused from its header, and the file is still kept."""
    connection, _ = linked
    bomb = samples.gif_screen_bomb()
    emulator.inbound(CONTACT, NUMBER_SMS_MMS, "Look", attachments=[("fun.gif", "image/gif", bomb)])
    inbox_sync.sync_connection(connection.pk)

    assert downloads.download_files() == {"stored": 1}
    file = InboxFile.objects.get()
    assert (file.state, file.size, file.thumbnail.name) == (FileState.STORED, len(bomb), "")
    assert ConversationMessage.objects.get().text == "Look"


def test_files_of_a_received_mms_go_to_s3(emulator, linked, bucket):  # noqa: F811
    connection, _ = linked
    client, name = bucket
    png = received_photo(emulator)
    inbox_sync.sync_connection(connection.pk)
    assert downloads.download_files() == {"stored": 2}
    photo = InboxFile.objects.order_by("position").first()
    stored = client.get_object(Bucket=name, Key=photo.file.name)["Body"].read()
    assert stored == png


# --- Delivery reports brought by the sync ---------------------------------------------------------


def store_reads(emu):
    return [e for e in journal(emu, "/message-store/") if e.method == "GET" and e.status != 401]


def test_delivery_reports_come_with_the_sync_and_polling_reads_nothing(emulator, linked, alice):
    from messaging.models import MessageStatus, OutboundMessage
    from messaging.tracking import polling
    from tests.tracking_helpers import send

    connection, number = linked
    inbox_sync.sync_connection(connection.pk)
    messages = [send(emulator, number, alice, [f"+1650555{3000 + i}"]) for i in range(30)]
    emulator.advance(30)  # every carrier has reported
    counts = inbox_sync.sync_connection(connection.pk)
    assert counts["reported"] == 30 and counts["final"] == 30
    assert set(
        OutboundMessage.objects.filter(pk__in=[m.pk for m in messages]).values_list(
            "status", flat=True
        )
    ) == {MessageStatus.DELIVERED}
    # One sync request carried thirty reports; polling has nothing left to read.
    assert polling.poll(now=timezone.now() + timedelta(minutes=5)) == {}
    assert store_reads(emulator) == []


def test_with_a_healthy_sync_polling_reads_only_what_sync_missed_and_gives_up_unread(
    emulator, linked, alice
):
    from messaging.models import MessageStatus, OutboundMessage
    from messaging.tracking import polling
    from tests.tracking_helpers import send

    connection, number = linked
    emulator.set_recipient_behaviour("+16505553100", "no_receipt")
    silent = send(emulator, number, alice, ["+16505553100"])
    inbox_sync.sync_connection(connection.pk)  # reports it Sent: sync has seen it
    missed = send(emulator, number, alice, ["+16505553101"])
    # As if the sync had run between RingCentral's answer and the outbox recording it.
    OutboundMessage.objects.filter(pk=missed.pk).update(
        sent_at=timezone.now() - timedelta(minutes=3)
    )
    InboxSync.objects.filter(connection=connection).update(synced_at=timezone.now())
    emulator.advance(30)

    polling.poll(now=timezone.now())
    read = [i for e in store_reads(emulator) for i in e.path.rsplit("/", 1)[-1].split(",")]
    assert read == [missed.rc_message_id]
    assert OutboundMessage.objects.get(pk=missed.pk).status == MessageStatus.DELIVERED

    # A day later, the one the carrier never confirmed is given up without another read.
    later = timezone.now() + timedelta(days=1, minutes=1)
    InboxSync.objects.filter(connection=connection).update(synced_at=later)
    polling.poll(now=later)
    assert OutboundMessage.objects.get(pk=silent.pk).status == MessageStatus.NO_RECEIPT
    assert len(store_reads(emulator)) == 1
