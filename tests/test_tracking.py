"""Delivery tracking against the emulator over a real socket: every final status and delivery
error lands on the right recipient, reports never move a status backwards, the check schedule
and the give-up after a day, bulk reads in as few Light calls as RingCentral allows, pacing and
the shared rate limiter, and the sender's email on a delivery failure."""

import math
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.core import mail
from django.utils import timezone

from messaging.core.phones import format_number
from messaging.links import connections, tokens
from messaging.links.tokens import client_for
from messaging.models import (
    ConnectionStatus,
    MessageEvent,
    MessageStatus,
    OutboundMessage,
    RecipientStatus,
)
from messaging.outbox import delivery_errors
from messaging.outbox import states as outbox
from messaging.outbox.events import EventKind
from messaging.ringcentral import limits, message_store
from messaging.ringcentral.emulator import Fault
from messaging.sending import ratelimit
from messaging.tracking import polling as tracking
from messaging.tracking.tasks import poll_statuses
from tests.rc_fixtures import link_directly
from tests.tracking_helpers import (
    Timeline,
    fresh_limits,  # noqa: F401 - fixture
    ids_in,
    link_sender,
    send,
    store_reads,
)

pytestmark = pytest.mark.usefixtures("fresh_limits")

DELIVERED_TO = "+16505550201"
LANDLINE = "+16505550202"
OPTED_OUT = "+16505550203"
SILENT = "+16505550204"


@pytest.fixture
def sender(emulator, team, alice, rc_user, settings):
    """Alice's linked RingCentral user (SMS+MMS number) with the emulator's clock frozen."""
    settings.TRACKING_MIN_READ_INTERVAL = 0  # pacing has its own tests
    _, number = link_sender(emulator, team, alice, rc_user)
    return number


@pytest.fixture
def timeline(emulator, sender):
    return Timeline(emulator)


def status_of(message):
    return OutboundMessage.objects.values_list("status", flat=True).get(pk=message.pk)


def recipients_of(message):
    return {r.phone_number: r for r in message.recipients.all()}


# --- outcomes and reasons ---------------------------------------------------------------------


def test_a_group_message_with_mixed_outcomes_gets_each_recipients_status_and_reason(
    emulator, sender, alice, timeline, django_capture_on_commit_callbacks
):
    emulator.set_recipient_behaviour(DELIVERED_TO, "delivered", delivered_after=3)
    emulator.set_recipient_behaviour(
        LANDLINE, "delivery_failed", error_code="SMS-CAR-411", delivered_after=20
    )
    emulator.set_recipient_behaviour(OPTED_OUT, "sending_failed", error_code="SMS-RC-413")
    emulator.set_recipient_behaviour(SILENT, "no_receipt")
    message = send(
        emulator, sender, alice, [DELIVERED_TO, LANDLINE, OPTED_OUT, SILENT], timeline=timeline
    )

    tracking.poll(now=timeline.at(10))
    rows = recipients_of(message)
    assert rows[DELIVERED_TO].status == RecipientStatus.DELIVERED
    assert rows[OPTED_OUT].status == RecipientStatus.SENDING_FAILED
    assert rows[OPTED_OUT].error_code == "SMS-RC-413"
    assert "opted out" in rows[OPTED_OUT].error_reason
    assert "START" in rows[OPTED_OUT].error_fix
    assert rows[LANDLINE].status == RecipientStatus.SENT
    assert rows[SILENT].status == RecipientStatus.SENT
    assert status_of(message) == MessageStatus.SENT

    tracking.poll(now=timeline.at(30))
    rows = recipients_of(message)
    assert rows[LANDLINE].status == RecipientStatus.DELIVERY_FAILED
    assert rows[LANDLINE].error_code == "SMS-CAR-411"
    assert "landline" in rows[LANDLINE].error_reason
    # The opted-out recipient keeps the reason it failed with.
    assert rows[OPTED_OUT].error_code == "SMS-RC-413"
    assert status_of(message) == MessageStatus.SENT  # one recipient has no report yet
    assert mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        tracking.poll(now=timeline.at(24 * 3600))
    rows = recipients_of(message)
    assert rows[SILENT].status == RecipientStatus.NO_RECEIPT
    assert rows[SILENT].error_reason == "The carrier never reported delivery."
    message.refresh_from_db()
    # Every recipient has an outcome: the most serious one is the message's.
    assert message.status == MessageStatus.SENDING_FAILED
    assert message.error_code == "SMS-RC-413"
    assert message.error_reason.startswith("1 of 4 recipients: The recipient has opted out")
    assert message.final_at is not None and message.next_check_at is None
    [email] = mail.outbox
    assert email.to == [alice.email]
    assert "not delivered" in email.subject
    assert format_number(OPTED_OUT) in email.body and "opted out" in email.body
    assert format_number(LANDLINE) in email.body and "landline" in email.body
    assert f"Delivered to: {DELIVERED_TO}" in email.body


@pytest.mark.parametrize(
    ("outcome", "code", "words"),
    [
        ("sending_failed", "SMS-UP-413", "opted out"),
        ("sending_failed", "SMS-RC-430", "spam filter"),
        ("sending_failed", "SMS-UP-414", "not registered for business texting"),
        ("delivery_failed", "SMS-CAR-411", "landline"),
        ("sending_failed", "SMS-RC-403", "texting limit"),
        ("delivery_failed", "SMS-CAR-451", "daily limit"),
        ("delivery_failed", "SMS-CAR-434", "too large"),
        ("delivery_failed", "SMS-CAR-461", "toll-free"),
        ("delivery_failed", "SMS-CAR-435", "shortened link"),
        ("delivery_failed", "SMS-CAR-500", "did not deliver"),
        ("delivery_failed", "SMS-CAR-777", "did not deliver"),  # unknown: by prefix
    ],
)
def test_each_delivery_error_reaches_the_recipient_with_its_reason_and_fix(
    emulator, sender, alice, timeline, outcome, code, words
):
    emulator.set_recipient_behaviour(LANDLINE, outcome, error_code=code)
    message = send(emulator, sender, alice, [LANDLINE], timeline=timeline)

    tracking.poll(now=timeline.at(10))

    [row] = message.recipients.all()
    expected = delivery_errors.explain(code)
    assert row.status == outcome
    assert (row.error_code, row.error_reason, row.error_fix) == (
        code,
        expected.reason,
        expected.fix,
    )
    assert words in row.error_reason
    message.refresh_from_db()
    assert message.status == outcome
    assert (message.error_code, message.error_reason) == (code, expected.reason)


def test_a_delivered_message_clears_its_tracking_and_tells_nobody(
    emulator, sender, alice, timeline
):
    message = send(emulator, sender, alice, [DELIVERED_TO], timeline=timeline)
    tracking.poll(now=timeline.at(10))
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    assert message.next_check_at is None and message.final_at is not None
    assert [e.text for e in MessageEvent.objects.filter(message=message)] == [
        f"Delivered to {DELIVERED_TO}."
    ]
    assert mail.outbox == []


def test_the_failure_email_is_sent_once_per_message(
    emulator, sender, alice, timeline, django_capture_on_commit_callbacks
):
    emulator.set_recipient_behaviour(OPTED_OUT, "sending_failed", error_code="SMS-RC-413")
    message = send(emulator, sender, alice, [OPTED_OUT], timeline=timeline)
    with django_capture_on_commit_callbacks(execute=True):
        tracking.poll(now=timeline.at(10))
        tracking.refresh_connection(sender.connection_id, now=timeline.at(20))
        outbox.apply_delivery_report(
            message, [outbox.DeliveryReport(OPTED_OUT, "SendingFailed", "SMS-RC-413")]
        )
    assert status_of(message) == MessageStatus.SENDING_FAILED
    assert len(mail.outbox) == 1


# --- reports never move backwards ---------------------------------------------------------------


def test_delivered_then_a_late_sent_changes_nothing(emulator, sender, alice, timeline):
    message = send(emulator, sender, alice, [DELIVERED_TO], timeline=timeline)
    tracking.poll(now=timeline.at(10))
    assert status_of(message) == MessageStatus.DELIVERED
    events = MessageEvent.objects.filter(message=message).count()

    for late in ("Sent", "Queued", "DeliveryFailed", "SendingFailed"):
        outbox.apply_delivery_report(
            message, [outbox.DeliveryReport(DELIVERED_TO, late, "SMS-CAR-500")]
        )

    [row] = message.recipients.all()
    assert row.status == RecipientStatus.DELIVERED and row.error_code == ""
    assert status_of(message) == MessageStatus.DELIVERED
    assert MessageEvent.objects.filter(message=message).count() == events


def test_the_same_report_twice_records_one_event(emulator, sender, alice, timeline):
    emulator.set_recipient_behaviour(SILENT, "no_receipt")
    message = send(emulator, sender, alice, [SILENT], timeline=timeline)

    tracking.poll(now=timeline.at(10))
    tracking.refresh_connection(sender.connection_id, now=timeline.at(12))
    tracking.refresh_connection(sender.connection_id, now=timeline.at(14))

    assert len(store_reads(emulator)) == 3
    [event] = MessageEvent.objects.filter(message=message)
    assert event.kind == EventKind.RECIPIENT_STATUS
    assert event.text == f"Passed on to the carrier for {SILENT}."
    assert recipients_of(message)[SILENT].status == RecipientStatus.SENT


def test_numbers_written_differently_by_ringcentral_still_match(sender, alice):
    message = send_offline(sender, alice, ["+16505550199"])
    outbox.apply_delivery_report(message, [outbox.DeliveryReport("(650) 555-0199", "Delivered")])
    assert status_of(message) == MessageStatus.DELIVERED


def test_a_real_report_replaces_our_own_no_receipt(sender, alice):
    message = send_offline(sender, alice, ["+16505550199"])
    outbox.give_up_delivery(
        message,
        reason=delivery_errors.NO_RECEIPT_REASON,
        fix=delivery_errors.NO_RECEIPT_FIX,
    )
    assert status_of(message) == MessageStatus.NO_RECEIPT
    outbox.apply_delivery_report(message, [outbox.DeliveryReport("+16505550199", "Delivered")])
    assert status_of(message) == MessageStatus.DELIVERED


def test_reports_for_a_message_ringcentral_never_accepted_are_ignored(sender, alice):
    from tests.factories import make_message

    message = make_message(sender, alice, to=("+16505550199",))
    outbox.apply_delivery_report(message, [outbox.DeliveryReport("+16505550199", "Delivered")])
    assert status_of(message) == MessageStatus.QUEUED
    assert message.recipients.get().status == RecipientStatus.PENDING


def send_offline(number, user, to):
    """An accepted message without the emulator (for state-machine-only checks)."""
    from tests.factories import make_message

    message = make_message(number, user, to=tuple(to))
    claimed, attempt = outbox.claim(message.pk)
    outbox.record_success(claimed, attempt, outbox.Accepted(rc_message_id=str(900 + message.pk)))
    message.refresh_from_db()
    return message


# --- the schedule and giving up ------------------------------------------------------------------


def test_checks_follow_the_schedule_and_give_up_after_a_day(emulator, sender, alice, timeline):
    emulator.set_recipient_behaviour(SILENT, "no_receipt")
    message = send(emulator, sender, alice, [SILENT], timeline=timeline)

    tracking.poll(now=timeline.at(9))
    assert store_reads(emulator) == []  # the first check is 10 s after sending

    # Seconds, then minutes, then hours; each read is at the time the previous one set.
    expected = [15, 30, 45, 60, 120, 180, 240, 300, 900, 1800, 7200, 14400, 21600, 43200, 64800]
    checked_at, seen = 10, []
    for _ in expected:
        tracking.poll(now=timeline.at(checked_at))
        message.refresh_from_db()
        seen.append(round((message.next_check_at - timeline.start).total_seconds()))
        checked_at = seen[-1]
    assert seen == expected + [86400][: len(seen) - len(expected)]
    assert checked_at == 64800

    tracking.poll(now=timeline.at(86399))  # not due yet: nothing happens
    assert status_of(message) == MessageStatus.SENT
    tracking.poll(now=timeline.at(86400))

    message.refresh_from_db()
    assert message.status == MessageStatus.NO_RECEIPT
    assert message.error_reason == "The carrier never reported delivery."
    assert message.checks == 16
    assert len(store_reads(emulator)) == 17
    [row] = message.recipients.all()
    assert row.status == RecipientStatus.NO_RECEIPT
    assert mail.outbox == []  # no receipt is not a failure


def test_next_check_times_on_the_grid():
    sent = datetime(2026, 3, 2, 6, 0, 0, tzinfo=UTC)  # grid points are in Unix time

    def after(seconds, **kwargs):
        now = sent + timedelta(seconds=seconds)
        return (tracking.next_check_at(sent, now, **kwargs) - sent).total_seconds()

    assert after(10) == 15
    assert after(14.5) == 30  # at least a second away
    assert after(61) == 120
    assert after(301) == 900
    assert after(3 * 3600) == 4 * 3600
    assert after(20 * 3600) == 24 * 3600
    assert after(23.5 * 3600) == 24 * 3600
    # A healthy webhook reports changes; polling then only checks every 15 minutes at most.
    assert after(10, webhook_healthy=True) == 900


def test_a_broken_link_gives_up_after_a_day_without_calling_ringcentral(
    emulator, sender, alice, timeline
):
    emulator.set_recipient_behaviour(SILENT, "no_receipt")
    message = send(emulator, sender, alice, [SILENT], timeline=timeline)
    type(sender.connection).objects.filter(pk=sender.connection_id).update(
        status=ConnectionStatus.BROKEN
    )

    tracking.poll(now=timeline.at(60))
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert message.next_check_at == timeline.at(60) + timedelta(minutes=10)
    tracking.poll(now=timeline.at(24 * 3600))

    message.refresh_from_db()
    assert message.status == MessageStatus.NO_RECEIPT
    assert message.error_reason == delivery_errors.LINK_LOST_REASON
    assert store_reads(emulator) == []


# --- batching, pacing and the rate limiter --------------------------------------------------------


def test_tracked_messages_are_read_fifty_per_light_call_per_connection(
    emulator, sender, alice, timeline, team, bob, settings
):
    settings.TRACKING_MIN_READ_INTERVAL = 45
    emulator.update_config(rate_limits={"Medium": 1000})
    other_user = emulator.add_extension(
        name="Bob Backoffice",
        numbers=[{"phone_number": "+16505550150", "features": ["SmsSender", "MmsSender"]}],
    )
    bob_connection = link_directly(emulator, team, bob, other_user)
    connections.sync_numbers(bob_connection)
    bobs_number = bob_connection.numbers.get()
    alices = [
        send(emulator, sender, alice, [f"+1650555{3000 + i}"], timeline=timeline)
        for i in range(120)
    ]
    bobs = [
        send(emulator, bobs_number, bob, [f"+1650555{4000 + i}"], timeline=timeline)
        for i in range(30)
    ]
    counts = tracking.poll(now=timeline.at(10))

    reads = store_reads(emulator)
    by_user = {}
    for entry in reads:
        by_user.setdefault(entry.extension_id, []).append(len(ids_in(entry)))
    # Alice: two full batches at once, her last 20 wait for the pace; Bob: one read of 30.
    assert by_user == {rc_user_id(alice, team): [50, 50], other_user.id: [30]}
    assert counts["reads"] == 3 and counts["paced"] == 1
    tracking.poll(now=timeline.at(30))
    assert len(store_reads(emulator)) == 3
    tracking.poll(now=timeline.at(56))

    reads = store_reads(emulator)
    assert len(reads) == math.ceil(120 / 50) + math.ceil(30 / 50)
    for entry in reads:
        assert len(ids_in(entry)) <= 50
    read_ids = sorted(i for entry in reads for i in ids_in(entry))
    assert read_ids == sorted(m.rc_message_id for m in alices + bobs)
    assert OutboundMessage.objects.filter(status=MessageStatus.DELIVERED).count() == 150


def rc_user_id(user, team):
    return int(user.rc_connections.get(team=team).extension_id)


def test_a_small_batch_tops_up_with_the_next_due_messages(emulator, sender, alice, timeline):
    emulator.set_recipient_behaviour(SILENT, "no_receipt")
    waiting = send(emulator, sender, alice, [SILENT], timeline=timeline)
    tracking.poll(now=timeline.at(10))  # next check at 15 s
    timeline.at(12)
    fresh = send(emulator, sender, alice, [DELIVERED_TO], timeline=timeline)

    tracking.poll(now=timeline.at(15))  # only the first is due; the fresh one rides along

    [_, read] = store_reads(emulator)
    assert sorted(ids_in(read)) == sorted([waiting.rc_message_id, fresh.rc_message_id])
    assert status_of(fresh) == MessageStatus.DELIVERED


def test_a_quiet_connection_is_read_at_once_but_small_reads_are_paced(
    emulator, sender, alice, timeline, settings
):
    settings.TRACKING_MIN_READ_INTERVAL = 45
    emulator.set_recipient_behaviour(SILENT, "no_receipt")
    message = send(emulator, sender, alice, [SILENT], timeline=timeline)

    assert tracking.poll(now=timeline.at(10))["reads"] == 1
    assert tracking.poll(now=timeline.at(15)) == {"paced": 1}
    assert tracking.poll(now=timeline.at(54)) == {"paced": 1}
    assert tracking.poll(now=timeline.at(55))["reads"] == 1
    assert len(store_reads(emulator)) == 2
    assert status_of(message) == MessageStatus.SENT


def test_reads_wait_for_the_shared_rate_limiter(emulator, sender, alice, timeline):
    message = send(emulator, sender, alice, [DELIVERED_TO], timeline=timeline)
    limiter = ratelimit.get_limiter()
    key = ratelimit.key_for(sender.connection, limits.READ_GROUP)
    while limiter.try_acquire([key]) == 0:  # someone else used the whole Light budget
        pass

    counts = tracking.poll(now=timeline.at(10))

    assert counts == {"deferred": 1}
    assert store_reads(emulator) == []
    assert status_of(message) == MessageStatus.SENT


def test_a_429_pauses_the_light_budget_and_leaves_the_messages_for_later(
    emulator, sender, alice, timeline
):
    message = send(emulator, sender, alice, [DELIVERED_TO], timeline=timeline)
    emulator.inject(Fault("rate_limit", path_contains="/message-store/", retry_after=40))

    counts = tracking.poll(now=timeline.at(10))

    assert counts["deferred"] == 1
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert message.next_check_at == timeline.at(10) + timedelta(seconds=40)
    assert (
        ratelimit.get_limiter().try_acquire(
            [ratelimit.key_for(sender.connection, limits.READ_GROUP)]
        )
        > 30
    )


def test_a_failed_read_is_retried_on_the_schedule(emulator, sender, alice, timeline):
    message = send(emulator, sender, alice, [DELIVERED_TO], timeline=timeline)
    emulator.inject(Fault("status", path_contains="/message-store/", status=503))

    assert tracking.poll(now=timeline.at(10))["failed_reads"] == 1
    message.refresh_from_db()
    assert message.next_check_at == timeline.at(15)
    tracking.poll(now=timeline.at(15))
    assert status_of(message) == MessageStatus.DELIVERED


def test_the_beat_task_polls(emulator, sender, alice):
    message = send(emulator, sender, alice, [DELIVERED_TO])
    OutboundMessage.objects.filter(pk=message.pk).update(
        sent_at=timezone.now() - timedelta(seconds=30)
    )
    emulator.advance(30)

    poll_statuses()

    assert status_of(message) == MessageStatus.DELIVERED


# --- reading the message store (the provider side) ----------------------------------------------


def test_a_bulk_read_is_one_request_and_reports_unknown_ids_as_missing(emulator, sender, alice):
    first = send(emulator, sender, alice, [DELIVERED_TO])
    second = send(emulator, sender, alice, [LANDLINE, OPTED_OUT])
    client = client_for(sender.connection)

    result = client.read_messages([first.rc_message_id, "42", second.rc_message_id])

    [read] = store_reads(emulator)
    assert read.status == 207 and ids_in(read) == [first.rc_message_id, "42", second.rc_message_id]
    assert set(result.found) == {first.rc_message_id, second.rc_message_id}
    assert result.missing == {"42"}
    group = result.found[second.rc_message_id]
    assert [r.phone_number for r in group.recipients] == [LANDLINE, OPTED_OUT]
    assert result.headers.get("X-Rate-Limit-Group", "").lower() == "light"


def test_a_single_unknown_id_is_missing_rather_than_an_error(emulator, sender):
    result = client_for(sender.connection).read_messages(["42"])
    assert result.found == {} and result.missing == {"42"}


def test_ringcentrals_json_flavour_of_the_bulk_answer_reads_the_same(emulator, sender, alice):
    emulator.set_recipient_behaviour(OPTED_OUT, "sending_failed", error_code="SMS-RC-413")
    messages = [send(emulator, sender, alice, [n]) for n in (DELIVERED_TO, OPTED_OUT)]
    emulator.advance(10)
    ids = [m.rc_message_id for m in messages] + ["42"]
    token = tokens.fresh_access_token(sender.connection_id)
    answer = requests.get(
        f"{emulator.base_url}{message_store.build_read(ids).path}",
        headers={"Authorization": f"Bearer {token}", "Accept": message_store.BULK_JSON},
        timeout=10,
    )

    result = message_store.parse_read(answer.status_code, answer.headers, answer.content, ids)

    assert result.missing == {"42"}
    assert result.found[ids[0]].status == "Delivered"
    assert result.found[ids[1]].error_code == "SMS-RC-413"
    assert result.found[ids[1]].is_final


def test_a_read_never_asks_for_more_than_fifty_ids():
    with pytest.raises(ValueError):
        message_store.build_read([str(n) for n in range(1, 52)])
    with pytest.raises(ValueError):
        message_store.build_read(["1", "2/../x"])
