"""tasks.send_message and the reconciler, run in this process against the emulator over a socket.

Each test calls the task function directly, the way a worker would run it, and then looks at
three things: the bytes that reached the emulator (its journal), the message's status, reason
and fix, and its attempts. Re-deliveries that a countdown would bring are made by calling the
task again once the message is due. Real worker processes are in test_send_workers.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.forms.models import model_to_dict
from django.utils import timezone

from messaging.links import connections
from messaging.links.tokens import client_for
from messaging.models import (
    Attachment,
    AttemptOutcome,
    ConnectionStatus,
    MessageStatus,
    OutboundMessage,
    RecipientStatus,
    SenderNumber,
)
from messaging.outbox import states as outbox
from messaging.ringcentral import errors, limits
from messaging.ringcentral.emulator import Fault
from messaging.sending import ratelimit, reconcile, tasks
from mmsportal.celery import app as celery_app
from tests.factories import make_message
from tests.rc_fixtures import (
    NUMBER_SMS_MMS,
    NUMBER_SMS_ONLY,
    expire_access_token,
    journal,
    link_directly,
)

TO = "+16505550181"
TO_2 = "+16505550182"


# --- helpers shared with the other send test modules ------------------------------------------


def pattern(size: int, seed: int = 0) -> bytes:
    """Deterministic bytes that do not repeat in short runs (no accidental boundary)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def add_attachment(message, data: bytes, name: str, content_type: str, position: int = 0):
    stored = default_storage.save(
        f"attachments/{message.team_id}/test-{position}-{message.pk}", ContentFile(data)
    )
    return Attachment.objects.create(
        message=message,
        file=stored,
        original_name=name,
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        position=position,
    )


def posts(emu) -> list:
    """Every POST to the send endpoint the emulator saw, once its journal has caught up."""
    return [e for e in journal(emu, "/sms") if e.method == "POST"]


def clear_shared_limiter() -> None:
    """Forget every grant and pause of the shared limiter (Redis keys outlive a test's database)."""
    limiter = ratelimit.get_limiter()
    if isinstance(limiter, ratelimit.RedisRateLimiter):
        keys = list(limiter.client.scan_iter(match=f"{limiter.prefix}*"))
        if keys:
            limiter.client.delete(*keys)
    elif isinstance(limiter, ratelimit.DatabaseRateLimiter):
        from messaging.models import RateLimitBucket

        RateLimitBucket.objects.all().delete()


def status_of(message) -> str:
    return OutboundMessage.objects.values_list("status", flat=True).get(pk=message.pk)


def make_due(message) -> None:
    """What a countdown does: the message's waiting time is over."""
    OutboundMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    """Files in a temporary folder; re-scheduled tasks to a queue no worker reads, emptied after."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media", "base_url": None},
        },
    }
    queue = f"test-discard-{uuid.uuid4().hex[:12]}"
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    try:
        yield
    finally:
        celery_app.conf.task_default_queue = previous
        with celery_app.connection_for_write() as connection, contextlib.suppress(Exception):
            connection.default_channel.queue_delete(queue)


@pytest.fixture
def linked(emulator, rc_user, team, alice):
    """Alice's RingCentral link in Acme, with its numbers synced from the emulator."""
    clear_shared_limiter()
    connection = link_directly(emulator, team, alice, rc_user)
    connections.sync_numbers(connection)
    emulator.reset()  # the journal starts with the send
    return connection


def number(connection, phone=NUMBER_SMS_MMS) -> SenderNumber:
    return connection.numbers.get(phone_number=phone)


@pytest.fixture
def sms(linked, alice):
    return make_message(number(linked), alice, to=(TO,), text="Your order is ready 😀")


def send(message) -> str:
    return tasks.send_message(message.pk)


# --- the wire ---------------------------------------------------------------------------------


def test_plain_sms_goes_as_json_and_the_answer_is_recorded(emulator, sms):
    assert send(sms) == "sent"

    (post,) = posts(emulator)
    assert post.outcome == "accepted"
    assert post.content_type == "application/json"
    assert post.json == {
        "from": {"phoneNumber": NUMBER_SMS_MMS},
        "to": [{"phoneNumber": TO}],
        "text": "Your order is ready 😀",
    }
    stored = emulator.messages.get(post.message_id)
    sms.refresh_from_db()
    assert sms.status == MessageStatus.SENT and sms.sent_at
    # Both ids exceed 2**53: kept as exact strings.
    assert sms.rc_message_id == str(stored.id)
    assert sms.rc_conversation_id == str(stored.conversation_id)
    assert int(sms.rc_conversation_id) > 2**53
    assert sms.recipients.get().status == RecipientStatus.QUEUED
    attempt = sms.send_attempts.get()
    assert (attempt.outcome, attempt.http_status) == (AttemptOutcome.ACCEPTED, 200)
    assert attempt.rate_limit["X-Rate-Limit-Group"] == "medium"
    # The attempt keeps what RingCentral said, never the credentials the request carried.
    recorded = json.dumps(model_to_dict(attempt), default=str)
    assert sms.connection.access_token not in recorded and "Bearer" not in recorded


def test_mms_parts_arrive_json_first_then_each_file_with_its_name_type_and_bytes(
    emulator, linked, alice
):
    message = make_message(number(linked), alice, to=(TO, TO_2), text="Plans for Friday")
    files = [
        add_attachment(message, pattern(400_000, 1), "floor plan.png", "image/png", 0),
        add_attachment(message, pattern(300_000, 2), "Café menu.pdf", "application/pdf", 1),
        add_attachment(
            message, b"BEGIN:VCARD\r\nFN:Rita\r\nEND:VCARD\r\n", "rita.vcf", "text/vcard", 2
        ),
    ]
    assert send(message) == "sent"

    (post,) = posts(emulator)
    assert post.content_type.startswith("multipart/form-data; boundary=")
    json_part, *file_parts = post.parts
    assert json_part.header("Content-Type") == "application/json"
    assert 'name="json"' in json_part.header("Content-Disposition")
    expected_json = json.dumps(
        {
            "from": {"phoneNumber": NUMBER_SMS_MMS},
            "to": [{"phoneNumber": TO}, {"phoneNumber": TO_2}],
            "text": "Plans for Friday",
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    assert json_part.sha256 == hashlib.sha256(expected_json).hexdigest()

    assert len(file_parts) == 3
    for part, attachment in zip(file_parts, files, strict=True):
        assert part.header("Content-Type") == attachment.content_type
        assert part.size == attachment.size
        assert part.sha256 == attachment.sha256
    assert 'filename="floor plan.png"' in file_parts[0].header("Content-Disposition")
    assert "filename*=UTF-8''Caf%C3%A9%20menu.pdf" in file_parts[1].header("Content-Disposition")
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert set(message.recipients.values_list("status", flat=True)) == {RecipientStatus.QUEUED}


# --- answers: each class of error ends where it should -----------------------------------------


def _assert_failed_as(message, status: int, code: str, emulator) -> None:
    message.refresh_from_db()
    answer = errors.ERROR_TABLE[(status, code)]
    assert message.status == MessageStatus.FAILED
    assert (message.error_code, message.error_reason, message.error_fix) == (
        code,
        answer.reason,
        answer.fix,
    )
    assert set(message.recipients.values_list("status", flat=True)) == {RecipientStatus.FAILED}
    attempt = message.send_attempts.get()
    assert (attempt.outcome, attempt.http_status) == (AttemptOutcome.PERMANENT, status)
    assert len(posts(emulator)) == 1, "a permanent failure is never retried"


def test_a_number_that_is_not_the_users_fails_with_msg_245(emulator, linked, alice):
    # The number was in the portal's list but RingCentral no longer gives it to this user.
    foreign = SenderNumber.objects.create(
        connection=linked, phone_number="+16505550199", can_sms=True, can_mms=True
    )
    message = make_message(foreign, alice, to=(TO,), text="Hi")
    assert send(message) == "failed"
    _assert_failed_as(message, 400, "MSG-245", emulator)
    assert "not one of yours" in message.error_reason
    assert "re-sync numbers" in message.error_fix


def test_files_from_a_number_without_mms_fail_with_msg_242(emulator, linked, alice):
    message = make_message(number(linked, NUMBER_SMS_ONLY), alice, to=(TO,), text="Photo")
    add_attachment(message, pattern(1000), "a.jpg", "image/jpeg")
    assert send(message) == "failed"
    _assert_failed_as(message, 403, "MSG-242", emulator)


def test_an_unsupported_media_type_answer_fails_with_msg_348(emulator, linked, alice):
    # RingCentral's list of types changes; when it refuses one we still accept, the user learns
    # which types work.
    emulator.inject(Fault("status", path_contains="/sms", status=415, error_code="MSG-348"))
    message = make_message(number(linked), alice, to=(TO,), text="Clip")
    add_attachment(message, pattern(1000), "clip.webm", "video/webm")
    assert send(message) == "failed"
    _assert_failed_as(message, 415, "MSG-348", emulator)
    assert "JPG" in message.error_fix


def test_an_expired_token_is_refreshed_once_and_the_message_sent(emulator, sms):
    # RingCentral's clock passes the token's expiry while ours still thinks it valid.
    emulator.advance(3700)
    assert send(sms) == "sent"

    entries = journal(emulator)
    kinds = [
        (e.method, e.path.rsplit("/", 1)[-1], e.status)
        for e in entries
        if e.path.endswith(("/sms", "/token"))
    ]
    assert kinds == [("POST", "sms", 401), ("POST", "token", 200), ("POST", "sms", 200)]
    assert entries[-1].outcome == "accepted"
    assert status_of(sms) == MessageStatus.SENT


def test_two_server_errors_are_retried_then_the_message_is_sent(emulator, sms):
    emulator.inject(Fault("status", path_contains="/sms", status=503, count=2))
    for _ in range(2):
        assert send(sms) == "retry"
        sms.refresh_from_db()
        assert sms.status == MessageStatus.RETRY_WAIT
        assert sms.error_reason == errors.ERROR_TABLE[(503, "MSG-290")].reason
        assert sms.next_attempt_at > timezone.now()
        assert send(sms) == "not due"
        make_due(sms)
    assert send(sms) == "sent"

    assert [e.status for e in posts(emulator)] == [503, 503, 200]
    outcomes = list(sms.send_attempts.values_list("outcome", flat=True))
    assert outcomes == [AttemptOutcome.RETRYABLE, AttemptOutcome.RETRYABLE, AttemptOutcome.ACCEPTED]


def test_six_server_errors_fail_the_message_after_six_attempts(emulator, sms):
    emulator.inject(Fault("status", path_contains="/sms", status=503, count=10))
    results = []
    for _ in range(outbox.max_attempts()):
        results.append(send(sms))
        make_due(sms)
    assert results[-1] == "retry" and status_of(sms) == MessageStatus.FAILED
    assert send(sms) == "not claimable"

    sms.refresh_from_db()
    assert "after 6 attempts" in sms.error_reason
    assert errors.ERROR_TABLE[(503, "MSG-290")].reason in sms.error_reason
    assert sms.error_fix
    assert len(posts(emulator)) == 6


def test_429_pauses_the_users_send_group_for_everyone_then_the_message_is_sent(
    emulator, linked, alice, sms
):
    emulator.inject(Fault("rate_limit", path_contains="/sms", retry_after=2))
    assert send(sms) == "rate limited"
    sms.refresh_from_db()
    assert sms.status == MessageStatus.RETRY_WAIT
    assert sms.attempts == 0, "a 429 does not use up an attempt"
    # Only bounds that hold on a busy machine too: in the future, and no later than Retry-After.
    assert 0 < (sms.next_attempt_at - timezone.now()).total_seconds() <= 2.1
    assert sms.send_attempts.get().outcome == AttemptOutcome.RATE_LIMITED

    # Another message of the same RingCentral user is held back: the group is paused.
    other = make_message(number(linked), alice, to=(TO_2,), text="Second")
    assert send(other) == "deferred"
    other.refresh_from_db()
    assert other.status == MessageStatus.QUEUED and other.attempts == 0
    key = ratelimit.key_for(linked, limits.SEND_GROUP)
    assert ratelimit.get_limiter().try_acquire([key]) > 0

    time.sleep(2.1)
    make_due(sms)
    make_due(other)
    assert send(sms) == "sent"
    assert send(other) == "sent"
    statuses = [(e.status, e.time) for e in posts(emulator)]
    assert [s for s, _ in statuses] == [429, 200, 200]
    assert statuses[1][1] - statuses[0][1] >= 2.0


def test_a_worker_that_stalls_past_its_claim_sends_nothing_and_the_message_goes_once_later(
    settings, emulator, linked, sms
):
    # A stall between the claim and the POST (here a slow token refresh; in life a frozen VM
    # or a stopped process): by the time the worker could send, the sweeper may have given it
    # up and another worker may be sending the same message. It must not send.
    settings.OUTBOX_SENDING_LEASE = 1.0
    expire_access_token(linked)
    emulator.inject(Fault("stall", path_contains="/oauth/token", seconds=1.0))
    assert send(sms) == "retry"
    assert posts(emulator) == []
    sms.refresh_from_db()
    assert sms.status == MessageStatus.RETRY_WAIT
    attempt = sms.send_attempts.get()
    assert attempt.outcome == AttemptOutcome.RETRYABLE
    assert "stopped before reaching RingCentral" in sms.error_reason

    settings.OUTBOX_SENDING_LEASE = 180.0
    make_due(sms)
    assert send(sms) == "sent"
    assert len(posts(emulator)) == 1 and len(emulator.messages) == 1


class LimiterStoreDownAfterAcquire(ratelimit.DatabaseRateLimiter):
    """The limiter's store answers the acquire, then goes away (Redis restarting mid-send)."""

    def pause(self, key, seconds):
        raise ConnectionError("limiter store unreachable")

    def observe(self, key, headers):
        raise ConnectionError("limiter store unreachable")


@pytest.mark.parametrize(
    ("fault", "expected", "status"),
    [
        (Fault("rate_limit", path_contains="/sms", retry_after=2), "rate limited", "retry_wait"),
        (None, "sent", "sent"),
    ],
)
def test_ringcentrals_answer_is_recorded_even_when_the_limiter_store_is_down(
    monkeypatch, emulator, linked, alice, sms, fault, expected, status
):
    monkeypatch.setattr(
        ratelimit, "get_limiter", lambda: LimiterStoreDownAfterAcquire(ratelimit.configured_rates())
    )
    if fault:
        emulator.inject(fault)
    assert send(sms) == expected
    assert status_of(sms) == status, "RingCentral's answer is known: never 'unknown'"


def test_the_shared_limiter_defers_a_message_without_using_an_attempt(
    settings, emulator, linked, alice
):
    settings.RINGCENTRAL_RATE_LIMITS = {
        **settings.RINGCENTRAL_RATE_LIMITS,
        "Medium": {"limit": 1, "window": 30.0},
    }
    # RingCentral (the emulator) reports 40 per 60 s, which replaces the configured rate; the
    # operator's maximum still holds.
    settings.RINGCENTRAL_RATE_LIMIT_MAX = {"Medium": {"limit": 1, "window": 30.0}}
    first = make_message(number(linked), alice, to=(TO,), text="One")
    second = make_message(number(linked), alice, to=(TO_2,), text="Two")
    assert send(first) == "sent"
    assert send(second) == "deferred"
    second.refresh_from_db()
    assert second.status == MessageStatus.QUEUED and second.attempts == 0
    assert second.next_attempt_at > timezone.now() + timedelta(seconds=25)
    assert len(posts(emulator)) == 1


# --- transport failures: before, after, unknown -------------------------------------------------


def test_connection_refused_is_retried_safely(settings, emulator, sms):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    real = settings.RINGCENTRAL_SERVER_URL
    settings.RINGCENTRAL_SERVER_URL = f"http://127.0.0.1:{closed}"
    assert send(sms) == "retry"
    sms.refresh_from_db()
    assert sms.status == MessageStatus.RETRY_WAIT
    assert sms.send_attempts.get().outcome == AttemptOutcome.RETRYABLE

    settings.RINGCENTRAL_SERVER_URL = real
    make_due(sms)
    assert send(sms) == "sent"
    assert len(posts(emulator)) == 1


def test_drop_after_acceptance_is_reconciled_from_the_store_without_a_second_post(emulator, sms):
    emulator.inject(Fault("drop_after", path_contains="/sms"))
    assert send(sms) == "unknown"
    sms.refresh_from_db()
    assert sms.status == MessageStatus.UNKNOWN
    assert sms.send_attempts.get().outcome == AttemptOutcome.UNKNOWN

    assert tasks.reconcile_unknown() == {MessageStatus.SENT: 1}
    (post,) = posts(emulator)
    assert post.outcome == "dropped_after"
    sms.refresh_from_db()
    assert sms.status == MessageStatus.SENT
    assert sms.rc_message_id == str(post.message_id)
    assert sms.events.filter(kind="reconciled").exists()
    assert send(sms) == "not claimable"
    assert len(posts(emulator)) == 1


def test_drop_before_processing_is_sent_once_after_the_store_shows_nothing(
    settings, emulator, sms, django_capture_on_commit_callbacks
):
    # The client cannot tell this from a drop after processing: both end with the whole body
    # sent and no answer. Only the message store can tell, and only after the grace period.
    emulator.inject(Fault("drop_before", path_contains="/sms"))
    assert send(sms) == "unknown"
    assert tasks.reconcile_unknown() == {MessageStatus.UNKNOWN: 1}, "too early to decide"

    settings.OUTBOX_RECONCILE_GRACE = 0
    with django_capture_on_commit_callbacks() as callbacks:
        assert tasks.reconcile_unknown() == {MessageStatus.QUEUED: 1}
    assert len(callbacks) == 1, "queued again and handed to a worker"
    assert send(sms) == "sent"

    assert [e.outcome for e in posts(emulator)] == ["dropped_before", "accepted"]
    assert len(emulator.messages) == 1


def test_a_stall_past_the_read_timeout_is_unknown_then_settled(settings, emulator, sms):
    settings.RINGCENTRAL_TIMEOUT = (2.0, 0.5)
    emulator.inject(Fault("stall", path_contains="/sms", seconds=1.5))
    assert send(sms) == "unknown"
    settings.OUTBOX_RECONCILE_GRACE = 0
    assert tasks.reconcile_unknown() == {MessageStatus.QUEUED: 1}
    assert send(sms) == "sent"
    # The stalled request was abandoned before RingCentral stored it; exactly one message exists.
    assert [e.outcome for e in posts(emulator)] == ["stalled", "accepted"]
    assert len(emulator.messages) == 1


def test_a_crash_after_ringcentral_accepted_is_settled_without_a_second_post(
    monkeypatch, emulator, sms
):
    def database_gone(*args, **kwargs):
        raise RuntimeError("database connection lost")

    monkeypatch.setattr(outbox, "record_success", database_gone)
    with pytest.raises(RuntimeError):
        send(sms)
    monkeypatch.undo()
    assert status_of(sms) == MessageStatus.UNKNOWN

    assert tasks.reconcile_unknown() == {MessageStatus.SENT: 1}
    (post,) = posts(emulator)
    sms.refresh_from_db()
    assert sms.rc_message_id == str(post.message_id)


def test_reconcile_gives_two_identical_messages_two_different_records(emulator, linked, alice):
    # The same text to the same person twice (a real habit): each gets its own record.
    first = make_message(number(linked), alice, to=(TO,), text="Running late")
    second = make_message(number(linked), alice, to=(TO,), text="Running late")
    emulator.inject(Fault("drop_after", path_contains="/sms", count=2))
    assert send(first) == "unknown"
    assert send(second) == "unknown"
    assert tasks.reconcile_unknown() == {MessageStatus.SENT: 2}
    ids = set(OutboundMessage.objects.values_list("rc_message_id", flat=True))
    assert ids == {str(e.message_id) for e in posts(emulator)} and len(ids) == 2


def test_reconcile_never_takes_the_record_of_another_message(settings, emulator, linked, alice):
    sent = make_message(number(linked), alice, to=(TO,), text="Running late")
    assert send(sent) == "sent"
    lost = make_message(number(linked), alice, to=(TO,), text="Running late")
    emulator.inject(Fault("drop_before", path_contains="/sms"))
    assert send(lost) == "unknown"
    settings.OUTBOX_RECONCILE_GRACE = 0
    assert tasks.reconcile_unknown() == {MessageStatus.QUEUED: 1}


def find_sent(client, message, exclude_ids=frozenset()):
    """What reconciliation finds for `message` in the store (the lookup of reconcile_all)."""
    records = list(client.sent_since(reconcile.search_start(message)))
    return reconcile.match_sent(message, records, exclude_ids=exclude_ids)


def test_find_sent_matches_recipients_as_a_set_text_and_file_count(emulator, linked, alice):
    group = make_message(number(linked), alice, to=(TO, TO_2), text="Team lunch")
    assert send(group) == "sent"
    group.refresh_from_db()
    client = client_for(linked)
    twin = make_message(number(linked), alice, to=(TO_2, TO), text="Team lunch")
    OutboundMessage.objects.filter(pk=twin.pk).update(sending_since=timezone.now())
    twin.refresh_from_db()
    assert find_sent(client, twin).id == group.rc_message_id
    assert find_sent(client, twin, exclude_ids={group.rc_message_id}) is None
    add_attachment(twin, pattern(10), "a.jpg", "image/jpeg")
    assert find_sent(client, twin) is None, "a different number of files is another message"
    other_text = make_message(number(linked), alice, to=(TO, TO_2), text="Team lunch!")
    OutboundMessage.objects.filter(pk=other_text.pk).update(sending_since=timezone.now())
    other_text.refresh_from_db()
    assert find_sent(client, other_text) is None


# --- what is found before sending -------------------------------------------------------------


def test_a_file_changed_in_storage_fails_before_anything_is_sent(emulator, linked, alice):
    message = make_message(number(linked), alice, to=(TO,), text="Contract")
    attachment = add_attachment(message, pattern(5000), "contract.pdf", "application/pdf")
    default_storage.delete(attachment.file.name)
    default_storage.save(attachment.file.name, ContentFile(pattern(4000)))
    assert send(message) == "failed"
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert "contract.pdf" in message.error_reason and "4,000" in message.error_reason
    assert message.error_fix == "Attach the files again and send a new message."
    assert posts(emulator) == []


def test_files_over_the_budget_in_storage_fail_with_the_limits_message(emulator, linked, alice):
    message = make_message(number(linked), alice, to=(TO,), text="Photos")
    size = limits.MAX_ATTACHMENTS_BYTES // 2 + 1
    add_attachment(message, pattern(size, 1), "a.jpg", "image/jpeg", 0)
    add_attachment(message, pattern(size, 2), "b.jpg", "image/jpeg", 1)
    assert send(message) == "failed"
    message.refresh_from_db()
    assert message.error_reason.startswith("The files add up to 1,500,002 bytes")
    assert "(1.5 MB) per message" in message.error_reason
    assert posts(emulator) == []


def test_a_file_missing_from_storage_fails_with_a_clear_reason(emulator, linked, alice):
    message = make_message(number(linked), alice, to=(TO,), text="Photo")
    attachment = add_attachment(message, pattern(500), "a.jpg", "image/jpeg")
    default_storage.delete(attachment.file.name)
    assert send(message) == "failed"
    message.refresh_from_db()
    assert message.error_reason == "A file of this message is no longer in storage."
    assert posts(emulator) == []


def test_a_broken_link_fails_the_message_with_reconnect_ringcentral(emulator, linked, sms):
    type(linked).objects.filter(pk=linked.pk).update(
        status=ConnectionStatus.BROKEN, last_error="invalid_grant"
    )
    assert send(sms) == "failed"
    sms.refresh_from_db()
    assert sms.status == MessageStatus.FAILED
    assert sms.error_fix.startswith(errors.RECONNECT)
    assert posts(emulator) == []


# --- delivery of the task itself --------------------------------------------------------------


def test_a_task_delivered_again_after_the_claim_does_nothing(emulator, sms):
    # What a Redis redelivery or a countdown racing the dispatcher looks like.
    claimed = outbox.claim(sms.pk)
    assert claimed is not None
    assert send(sms) == "not claimable"
    assert posts(emulator) == []


def test_canceled_and_unknown_messages_are_never_sent(emulator, linked, alice, sms):
    outbox.cancel(sms)
    assert send(sms) == "not claimable"
    other = make_message(number(linked), alice, to=(TO_2,), text="x")
    OutboundMessage.objects.filter(pk=other.pk).update(
        status=MessageStatus.UNKNOWN, sending_since=timezone.now()
    )
    assert send(other) == "not claimable"
    assert posts(emulator) == []


def test_the_sweeper_moves_an_expired_lease_to_unknown_never_to_queued(settings, sms):
    outbox.claim(sms.pk)
    assert tasks.sweep_stuck() == 0
    settings.OUTBOX_SENDING_LEASE = 0
    assert tasks.sweep_stuck() == 1
    assert status_of(sms) == MessageStatus.UNKNOWN


# --- configuration ----------------------------------------------------------------------------


def test_the_beat_runs_the_outbox_safety_nets(settings):
    schedule = {
        entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert schedule["messaging.tasks.dispatch_due"] <= 10
    assert schedule["messaging.tasks.sweep_stuck"] == 60
    assert schedule["messaging.tasks.reconcile_unknown"] == 30
    assert "messaging.tasks.cleanup" in schedule


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"OUTBOX_SENDING_LEASE": "60"}, "OUTBOX_SENDING_LEASE (60 s) must exceed"),
        (
            {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/14", "OUTBOX_MAX_COUNTDOWN": "3500"},
            "must stay below the broker's visibility_timeout (3600 s)",
        ),
    ],
)
def test_settings_that_could_send_twice_stop_the_process_at_start_up(env, complaint):
    # A lease shorter than a send would sweep live sends; a countdown past Redis's visibility
    # timeout would have the task delivered twice.
    result = subprocess.run(
        [sys.executable, "-c", "import mmsportal.settings"],
        cwd=django_settings.BASE_DIR,
        env={**os.environ, "DATA_DIR": str(django_settings.DATA_DIR), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert complaint in result.stderr
