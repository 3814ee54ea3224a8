"""The outbox state machine: every transition, its guards, and the schema's invariants."""

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.db import IntegrityError, close_old_connections, transaction
from django.db import connection as db_connection
from django.db.models import prefetch_related_objects
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging.hooks import endpoints as hook_endpoints
from messaging.models import (
    Attachment,
    AttemptOutcome,
    MessageStatus,
    OutboundMessage,
    Recipient,
    RecipientStatus,
    SendAttempt,
)
from messaging.outbox import rows
from messaging.outbox import states as outbox
from tests.factories import make_connection, make_message, make_number, team_history
from tests.plans import plan_without_seqscan


@pytest.fixture
def number(team, alice):
    return make_number(make_connection(team, alice))


@pytest.fixture
def message(number, alice):
    return make_message(number, alice, to=("+16505550111", "+16505550112"))


def status_of(message):
    return OutboundMessage.objects.values_list("status", flat=True).get(pk=message.pk)


def test_claim_moves_queued_to_sending_and_opens_an_attempt(message):
    message_, attempt = outbox.claim(message.pk)
    assert message_.status == MessageStatus.SENDING
    assert message_.sending_since is not None
    assert message_.attempts == 1
    assert attempt.number == 1 and attempt.outcome == AttemptOutcome.IN_PROGRESS


def test_a_claim_brings_what_the_send_reads_without_another_query(message, number):
    for position in (1, 0):
        Attachment.objects.create(
            message=message,
            file=f"attachments/{position}.jpg",
            original_name=f"{position}.jpg",
            content_type="image/jpeg",
            size=10 + position,
            sha256="0" * 64,
            position=position,
        )
    expected = (
        OutboundMessage.objects.select_related("connection")
        .prefetch_related("recipients", "attachments")
        .get(pk=message.pk)
    )
    claimed, attempt = outbox.claim(message.pk)
    with CaptureQueriesContext(db_connection) as queries:
        assert [r.phone_number for r in claimed.recipients.all()] == [
            r.phone_number for r in expected.recipients.all()
        ]
        assert [(a.original_name, a.size, a.file.name) for a in claimed.attachments.all()] == [
            (a.original_name, a.size, a.file.name) for a in expected.attachments.all()
        ]
        assert claimed.connection.access_token == expected.connection.access_token
        assert claimed.connection.access_expires_at == expected.connection.access_expires_at
        assert (claimed.from_number, claimed.text) == (expected.from_number, expected.text)
        assert claimed.created_at == expected.created_at
    assert len(queries) == 0
    stored = SendAttempt.objects.get(pk=attempt.pk)
    assert (stored.number, stored.outcome, stored.message_id) == (1, "in_progress", message.pk)


def test_a_claimed_messages_related_rows_behave_as_the_orms(message, number, alice):
    # Another message to one of the same numbers: nothing of it may leak into this one's rows.
    other = make_message(number, alice, to=("+16505550111",))
    claimed, _ = outbox.claim(message.pk)
    with CaptureQueriesContext(db_connection) as queries:
        numbers = [r.phone_number for r in rows.prefetched(claimed, "recipients")]
        assert numbers == ["+16505550111", "+16505550112"]
        assert rows.prefetched(claimed, "attachments") == []
    assert len(queries) == 0  # read by the claim
    # A filter is the ORM's, on this message's rows only.
    matching = claimed.recipients.filter(phone_number="+16505550111")
    assert [r.message_id for r in matching] == [message.pk]
    assert claimed.recipients.count() == 2
    assert other.recipients.get().message_id == other.pk
    # What prefetch_related leaves and what refresh_from_db clears work as for any instance.
    with CaptureQueriesContext(db_connection) as queries:
        assert "recipients" in claimed._prefetched_objects_cache
        assert [r.phone_number for r in claimed.recipients.all()] == numbers
    assert len(queries) == 0
    claimed.refresh_from_db()
    with CaptureQueriesContext(db_connection) as queries:
        assert [r.phone_number for r in rows.prefetched(claimed, "recipients")] == numbers
    assert len(queries) == 1


def test_on_demand_prefetch_gives_way_to_changes_of_the_relation(message, number, alice):
    claimed, _ = outbox.claim(message.pk)
    # Adding a related row forgets the rows read with the message, as after prefetch_related.
    claimed.recipients.create(phone_number="+16505550113")
    numbers = ["+16505550111", "+16505550112", "+16505550113"]
    assert [r.phone_number for r in rows.prefetched(claimed, "recipients")] == numbers
    assert [r.phone_number for r in claimed.recipients.all()] == numbers
    # A later prefetch_related replaces what the claim read.
    again, _ = outbox.claim(make_message(number, alice, to=("+16505550114",)).pk)
    Recipient.objects.filter(message=again).update(phone_number="+16505550115")
    prefetch_related_objects([again], "recipients")
    assert [r.phone_number for r in rows.prefetched(again, "recipients")] == ["+16505550114"]
    again._prefetched_objects_cache["recipients"] = again.recipients.none()
    assert rows.prefetched(again, "recipients") == []
    # Refreshing the relation alone drops it (`del`), and the next read asks the database.
    third, _ = outbox.claim(make_message(number, alice, to=("+16505550116",)).pk)
    Recipient.objects.filter(message=third).update(phone_number="+16505550117")
    third.refresh_from_db(fields=["recipients"])
    assert "recipients" not in third._prefetched_objects_cache
    assert [r.phone_number for r in rows.prefetched(third, "recipients")] == ["+16505550117"]


@pytest.mark.django_db(transaction=True)  # as in a worker: no transaction around the claim
def test_claiming_and_recording_an_sms_take_few_statements(message):
    # Outgoing webhooks read which events the team wants once a minute, not per message.
    hook_endpoints.events_of(message.team_id)
    with CaptureQueriesContext(db_connection) as claiming:
        claimed, attempt = outbox.claim(message.pk)
    with CaptureQueriesContext(db_connection) as recording:
        assert outbox.record_success(claimed, attempt, outbox.Accepted(rc_message_id="991"))
    if db_connection.vendor == "postgresql":
        # One statement each, committed on its own.
        assert (len(claiming), len(recording)) == (1, 1)
    else:
        # A transaction of two statements, then the reads; one transaction of three.
        assert len(claiming) <= 6 and len(recording) <= 5
    claimed.refresh_from_db()
    assert claimed.status == MessageStatus.SENT and claimed.rc_message_id == "991"
    assert set(claimed.recipients.values_list("status", flat=True)) == {RecipientStatus.QUEUED}
    attempt.refresh_from_db()
    assert attempt.outcome == AttemptOutcome.ACCEPTED and attempt.finished_at


def test_a_claimed_message_cannot_be_claimed_again(message):
    assert outbox.claim(message.pk)
    assert outbox.claim(message.pk) is None


def test_a_retry_is_not_claimed_before_its_time(message):
    msg, attempt = outbox.claim(message.pk)
    outbox.schedule_retry(msg, attempt, outbox.Failure(reason="503", retry_after=60))
    assert status_of(message) == MessageStatus.RETRY_WAIT
    assert outbox.claim(message.pk) is None


def test_claim_refuses_to_run_inside_a_callers_transaction(message):
    # The claim must be committed before the HTTP request; a surrounding transaction would hold it.
    with transaction.atomic(), pytest.raises(RuntimeError):
        outbox.claim(message.pk)
    assert status_of(message) == MessageStatus.QUEUED


def test_success_records_the_ringcentral_id_and_recipient_statuses(message):
    msg, attempt = outbox.claim(message.pk)
    accepted = outbox.Accepted(
        rc_message_id="123456789012345678",
        conversation_id="6288356833283647895",
        recipient_statuses={"+16505550111": "Queued", "+16505550112": "Sent"},
    )
    assert outbox.record_success(msg, attempt, accepted)
    msg.refresh_from_db()
    attempt.refresh_from_db()
    assert msg.status == MessageStatus.SENT
    assert msg.rc_message_id == "123456789012345678"
    assert msg.rc_conversation_id == "6288356833283647895"
    assert msg.sent_at is not None
    statuses = dict(msg.recipients.values_list("phone_number", "status"))
    assert statuses == {
        "+16505550111": RecipientStatus.QUEUED,
        "+16505550112": RecipientStatus.SENT,
    }
    assert attempt.outcome == AttemptOutcome.ACCEPTED and attempt.finished_at


def test_permanent_failure_keeps_reason_and_fix_and_emails_the_sender(
    message, django_capture_on_commit_callbacks
):
    msg, attempt = outbox.claim(message.pk)
    failure = outbox.Failure(
        reason="The sending number is not one of yours.",
        fix="Pick another number.",
        code="MSG-245",
        http_status=400,
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox.record_failure(msg, attempt, failure)
    msg.refresh_from_db()
    assert msg.status == MessageStatus.FAILED
    assert (msg.error_code, msg.error_fix) == ("MSG-245", "Pick another number.")
    assert set(msg.recipients.values_list("status", flat=True)) == {RecipientStatus.FAILED}
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@example.com"]
    assert "The sending number is not one of yours." in mail.outbox[0].body
    assert "Pick another number." in mail.outbox[0].body


def test_retry_uses_the_backoff_table_with_jitter(message):
    msg, attempt = outbox.claim(message.pk)
    before = timezone.now()
    outbox.schedule_retry(msg, attempt, outbox.Failure(reason="HTTP 503"))
    msg.refresh_from_db()
    wait = (msg.next_attempt_at - before).total_seconds()
    base = settings.OUTBOX_BACKOFF_SECONDS[0]
    assert base * (1 - outbox.JITTER) - 1 <= wait <= base * (1 + outbox.JITTER) + 1


def test_retry_after_from_ringcentral_wins_over_the_table(message):
    msg, attempt = outbox.claim(message.pk)
    before = timezone.now()
    outbox.schedule_retry(msg, attempt, outbox.Failure(reason="429", retry_after=42))
    msg.refresh_from_db()
    assert 41 <= (msg.next_attempt_at - before).total_seconds() <= 43


def test_after_six_attempts_the_message_fails_with_the_last_reason(message):
    for _ in range(outbox.max_attempts()):
        msg, attempt = outbox.claim(message.pk)
        outbox.schedule_retry(msg, attempt, outbox.Failure(reason="RingCentral answered 503."))
        OutboundMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert "after 6 attempts" in message.error_reason
    assert "RingCentral answered 503." in message.error_reason
    assert message.send_attempts.count() == 6


def test_a_rate_limited_attempt_does_not_use_up_an_attempt(message):
    msg, attempt = outbox.claim(message.pk)
    outbox.schedule_retry(
        msg,
        attempt,
        outbox.Failure(reason="rate limited", retry_after=30),
        counts_as_attempt=False,
    )
    message.refresh_from_db()
    assert message.attempts == 0
    assert message.send_attempts.get().outcome == AttemptOutcome.RATE_LIMITED


def test_unknown_outcome_found_in_the_message_store_becomes_sent(message):
    msg, attempt = outbox.claim(message.pk)
    outbox.mark_unknown(msg, attempt, outbox.Failure(reason="read timeout"))
    assert status_of(message) == MessageStatus.UNKNOWN
    msg.refresh_from_db()
    assert outbox.reconcile(msg, outbox.Accepted(rc_message_id="77")) == MessageStatus.SENT
    msg.refresh_from_db()
    assert msg.rc_message_id == "77" and msg.sent_at


def test_unknown_outcome_not_found_waits_for_the_grace_period_then_is_queued(
    message, settings, django_capture_on_commit_callbacks
):
    msg, attempt = outbox.claim(message.pk)
    outbox.mark_unknown(msg, attempt, outbox.Failure(reason="connection dropped"))
    msg.refresh_from_db()
    assert outbox.reconcile(msg, None) == MessageStatus.UNKNOWN

    OutboundMessage.objects.filter(pk=msg.pk).update(
        sending_since=timezone.now() - timedelta(hours=1)
    )
    msg.refresh_from_db()
    with django_capture_on_commit_callbacks() as callbacks:
        assert outbox.reconcile(msg, None) == MessageStatus.QUEUED
    assert len(callbacks) == 1  # handed to a worker once committed


def test_sweeper_moves_expired_leases_to_unknown_never_to_queued(message, number, alice):
    fresh = make_message(number, alice)
    outbox.claim(message.pk)
    outbox.claim(fresh.pk)
    OutboundMessage.objects.filter(pk=message.pk).update(
        sending_since=timezone.now() - timedelta(hours=1)
    )
    assert outbox.sweep_stuck() == 1
    assert status_of(message) == MessageStatus.UNKNOWN
    assert status_of(fresh) == MessageStatus.SENDING
    assert message.send_attempts.get().outcome == AttemptOutcome.UNKNOWN


def test_cancel_only_before_a_worker_claims_it(message, number, alice):
    assert outbox.cancel(message)
    assert status_of(message) == MessageStatus.CANCELED
    claimed = make_message(number, alice)
    outbox.claim(claimed.pk)
    assert not outbox.cancel(claimed)
    assert status_of(claimed) == MessageStatus.SENDING


def test_requeue_only_failed_messages_with_fresh_attempts(
    message, number, alice, django_capture_on_commit_callbacks
):
    msg, attempt = outbox.claim(message.pk)
    outbox.record_failure(msg, attempt, outbox.Failure(reason="refused"))
    with django_capture_on_commit_callbacks() as callbacks:
        assert outbox.requeue(msg)
    msg.refresh_from_db()
    assert (msg.status, msg.attempts, msg.error_reason) == (MessageStatus.QUEUED, 0, "")
    assert len(callbacks) == 1
    sent = make_message(number, alice)
    assert not outbox.requeue(sent)


def test_enqueue_waits_for_the_commit(message, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        outbox.enqueue([message.pk])
    assert len(callbacks) == 1


def test_due_messages_include_stale_queued_and_due_retries_only(message, number, alice):
    stale = make_message(number, alice, created_at=timezone.now() - timedelta(minutes=5))
    later = make_message(
        number,
        alice,
        created_at=timezone.now() - timedelta(minutes=5),
        next_attempt_at=timezone.now() + timedelta(minutes=5),
    )
    due = outbox.due_message_ids()
    assert stale.pk in due
    assert message.pk not in due  # just created: its own hand-off is on the way
    assert later.pk not in due


def test_schema_refuses_an_accepted_message_without_a_ringcentral_id(message):
    with pytest.raises(IntegrityError), transaction.atomic():
        OutboundMessage.objects.filter(pk=message.pk).update(
            status=MessageStatus.SENT, sent_at=timezone.now()
        )


def test_schema_refuses_a_duplicate_ringcentral_id_on_one_connection(message, number, alice):
    other = make_message(number, alice)
    OutboundMessage.objects.filter(pk=message.pk).update(
        status=MessageStatus.SENT, sent_at=timezone.now(), rc_message_id="1"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        OutboundMessage.objects.filter(pk=other.pk).update(
            status=MessageStatus.SENT, sent_at=timezone.now(), rc_message_id="1"
        )


@pytest.mark.django_db(transaction=True)
def test_eight_threads_claiming_one_message_exactly_one_wins(team, alice):
    message = make_message(make_number(make_connection(team, alice)), alice)
    results, barrier = [], threading.Barrier(8)

    def worker():
        barrier.wait()
        try:
            results.append(outbox.claim(message.pk) is not None)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    assert OutboundMessage.objects.get(pk=message.pk).attempts == 1


def test_an_unknown_message_that_used_all_attempts_fails_instead_of_cycling(message):
    msg, attempt = outbox.claim(message.pk)
    outbox.mark_unknown(msg, attempt, outbox.Failure(reason="connection dropped"))
    OutboundMessage.objects.filter(pk=msg.pk).update(
        attempts=outbox.max_attempts(), sending_since=timezone.now() - timedelta(hours=1)
    )
    msg.refresh_from_db()
    assert outbox.reconcile(msg, None) == MessageStatus.FAILED
    msg.refresh_from_db()
    assert "None of the 6 attempts reached RingCentral" in msg.error_reason
    assert msg.error_fix


# --- The worker's queries have their indexes (PostgreSQL) ------------------------------------


def _first_query_of(action) -> tuple[str, tuple]:
    with CaptureQueriesContext(db_connection) as queries:
        action()
    return queries.captured_queries[0]["sql"], ()


QUERIES = {
    "due to send": lambda: _first_query_of(outbox.due_message_ids),
    "leases to sweep": lambda: _first_query_of(outbox.sweep_stuck),
    "unknown outcomes to reconcile": lambda: outbox.unknown_messages().query.sql_with_params(),
}


@pytest.mark.parametrize(
    "query, index",
    [
        ("due to send", "msg_due_to_send"),
        ("leases to sweep", "msg_in_flight"),
        ("unknown outcomes to reconcile", "msg_in_flight"),
    ],
)
def test_each_worker_query_uses_its_partial_index_on_postgresql(query, index, team, alice, bob):
    if db_connection.vendor != "postgresql":
        pytest.skip("the plans are PostgreSQL's")
    # A team's history, mostly final, with a few messages on their way, as the planner sees it.
    team_history(team, [alice, bob], 3_000)
    with db_connection.cursor() as cursor:
        cursor.execute("ANALYZE messaging_outboundmessage")
    sql, params = QUERIES[query]()
    assert index in plan_without_seqscan(sql, params), sql
