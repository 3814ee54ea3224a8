"""Never sent twice, nothing lost: real `celery worker` processes against the emulator.

The workers run as subprocesses (tests/worker.py) on a queue of their own, against the test
database and the configured broker (SQLite by default; PostgreSQL and Redis in CI). They reach
the emulator, which runs in this process, over a socket; its journal is the record of what
arrived. The beat tasks (sweeper, reconciler, dispatcher) are called here, in the test process,
where a test can shorten the lease and the grace period for itself.

Workers are started once per configuration and shared by the tests that need it; the tests that
kill a worker start their own.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone

from messaging.links import connections
from messaging.models import AttemptOutcome, MessageStatus, OutboundMessage
from messaging.outbox import states as outbox
from messaging.ringcentral import limits
from messaging.ringcentral.emulator import Fault
from messaging.sending import ratelimit, tasks
from mmsportal.celery import app as celery_app
from tests.factories import make_message
from tests.rc_fixtures import NUMBER_SMS_MMS, link_directly, shared_emulator
from tests.test_send_task import add_attachment, clear_shared_limiter, pattern, posts
from tests.worker import WorkerProcess, celery_worker, subprocess_env, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

# Retries come back quickly in these workers; the table's shape is what test_outbox.py checks.
FAST_BACKOFF = "0.3,0.3,0.3,0.3,0.3"
# A short-window variant of RingCentral's Medium limit (40 per 60 s): 4 per 2 s, configured the
# same in the emulator and in the portal, so that several windows pass in seconds. The portal's
# limiter adds its fixed 2 s margin to the window (ratelimit.WINDOW_MARGIN_SECONDS); at 60 s that
# costs 3 % of the rate, at 2 s half of it, which only makes this test slower, not laxer.
SHORT_LIMIT, SHORT_WINDOW = 4, 2.0
TASK_RESULT = re.compile(r"messaging\.tasks\.send_message\[.*\] succeeded in [0-9.]+s: '([^']+)'")


# --- the world: one emulator per module, a fresh link per test ---------------------------------


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("send-media")


@pytest.fixture(scope="module")
def emu():
    with shared_emulator() as emulator:
        yield emulator


def worker_env(emu, media_dir, **extra) -> dict:
    return {
        # Demo mode reads the emulator's address from DEMO_EMULATOR_URL; otherwise the other.
        "DEMO_EMULATOR_URL": emu.base_url,
        "RINGCENTRAL_SERVER_URL": emu.base_url,
        "MEDIA_ROOT": str(media_dir),
        "OUTBOX_BACKOFF_SECONDS": FAST_BACKOFF,
        **extra,
    }


@contextmanager
def routed_to(queue: str):
    """Tasks published from this process go to `queue` while the block runs."""
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    try:
        yield
    finally:
        celery_app.conf.task_default_queue = previous


def declare(queue: str) -> None:
    """Create the queue before several workers start on it: on the SQLite broker, workers that
    create the same new queue at the same moment collide on its unique name and one dies."""
    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False)


@contextmanager
def worker_pool(count: int, **env):
    """`count` separate worker processes (concurrency 1 each) sharing one fresh queue; tasks
    published here go to it while the pool runs."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    declare(queue)
    workers = [WorkerProcess(queue, 1, subprocess_env(**env)) for _ in range(count)]
    try:
        for worker in workers:
            worker.wait_ready()
        with routed_to(queue):
            yield workers
    finally:
        # Warm shutdowns take a few seconds each; let them run side by side.
        for worker in workers:
            if worker.process.poll() is None:
                os.killpg(worker.process.pid, signal.SIGTERM)
        for worker in workers:
            worker.stop()


def task_results(workers, since: list[int]) -> Counter:
    """What send tasks returned in `workers` after their output lines `since`."""
    results = Counter()
    for worker, start in zip(workers, since, strict=True):
        for line in worker.output[start:]:
            found = TASK_RESULT.search(line)
            if found:
                results[found.group(1)] += 1
    return results


@pytest.fixture(scope="module")
def unlimited_workers(django_db_setup, emu, media_dir):
    env = worker_env(emu, media_dir, RINGCENTRAL_RATE_LIMITING="False")
    with worker_pool(2, **env) as workers:
        yield workers


@pytest.fixture(scope="module")
def limited_workers(django_db_setup, emu, media_dir):
    rates = {"Medium": {"limit": SHORT_LIMIT, "window": SHORT_WINDOW}}
    env = worker_env(emu, media_dir, RINGCENTRAL_RATE_LIMITS=json.dumps(rates))
    with worker_pool(2, **env) as workers:
        yield workers


@pytest.fixture
def linked(emu, team, alice, settings, media_dir):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": media_dir, "base_url": None},
        },
    }
    emu.update_config(rate_limits_enabled=False)
    emu.reset()
    clear_shared_limiter()
    connection = link_directly(emu, team, alice, emu.rc_user)
    connections.sync_numbers(connection)
    emu.reset()
    return connection


def sender(connection):
    return connection.numbers.get(phone_number=NUMBER_SMS_MMS)


def enqueue(*messages) -> None:
    """As the compose page does: hand over once the creating transaction has committed."""
    with transaction.atomic():
        outbox.enqueue([m.pk for m in messages])


def statuses(messages) -> dict:
    return dict(
        OutboundMessage.objects.filter(pk__in=[m.pk for m in messages]).values_list("pk", "status")
    )


def wait_until_all(messages, status=MessageStatus.SENT, timeout=60.0) -> None:
    try:
        wait_for(
            lambda: set(statuses(messages).values()) == {status},
            timeout=timeout,
            interval=0.1,
            message=f"{len(messages)} message(s) to be {status}",
        )
    except AssertionError as exc:
        left = Counter(statuses(messages).values())
        raise AssertionError(f"{exc}; statuses now: {dict(left)}") from None


# --- many messages, two processes --------------------------------------------------------------


def test_two_workers_send_200_messages_each_exactly_once(unlimited_workers, emu, linked, alice):
    number = sender(linked)
    messages = [
        make_message(number, alice, to=(f"+1650555{1000 + i:04d}",), text=f"Reminder #{i}")
        for i in range(200)
    ]
    before = [len(worker.output) for worker in unlimited_workers]
    enqueue(*messages)
    # A quarter of the tasks delivered twice, as a broker redelivery or the dispatcher racing a
    # countdown would: the claim lets only one of each pair send.
    twice = messages[::4]
    enqueue(*twice)
    wait_until_all(messages, timeout=120)
    wait_for(
        lambda: task_results(unlimited_workers, before).total() >= len(messages) + len(twice),
        timeout=30,
        message="every task to finish",
    )

    sends = posts(emu)
    assert len(sends) == 200
    assert {e.outcome for e in sends} == {"accepted"}
    bodies = {json.dumps(e.json, sort_keys=True) for e in sends}
    assert len(bodies) == 200
    assert len(emu.messages) == 200

    rows = list(OutboundMessage.objects.values_list("text", "rc_message_id", "attempts"))
    assert len({rc_id for _, rc_id, _ in rows}) == 200
    assert {attempts for _, _, attempts in rows} == {1}
    by_text = {m.text: str(m.id) for m in emu.messages}
    assert all(by_text[text] == rc_id for text, rc_id, _ in rows)

    results = task_results(unlimited_workers, before)
    assert results["sent"] == 200
    assert results["not claimable"] + results["taken"] == len(twice)
    # Both processes took part.
    assert all(
        task_results([w], [n]).total() for w, n in zip(unlimited_workers, before, strict=True)
    )


def test_server_errors_come_back_by_countdown_and_the_message_is_sent(
    unlimited_workers, emu, linked, alice
):
    emu.inject(Fault("status", path_contains="/sms", status=503, count=2))
    message = make_message(sender(linked), alice, to=("+16505550181",), text="Retry me")
    add_attachment(message, pattern(200_000), "photo.jpg", "image/jpeg")
    enqueue(message)
    wait_until_all([message], timeout=30)

    assert [e.status for e in posts(emu)] == [503, 503, 200]
    assert posts(emu)[-1].parts[1].sha256 == message.attachments.get().sha256
    outcomes = list(message.send_attempts.values_list("outcome", flat=True))
    assert outcomes == [AttemptOutcome.RETRYABLE, AttemptOutcome.RETRYABLE, AttemptOutcome.ACCEPTED]


def test_a_message_whose_task_the_broker_lost_is_sent_by_the_dispatcher(
    unlimited_workers, emu, linked, alice
):
    message = make_message(sender(linked), alice, to=("+16505550182",), text="Lost task")
    OutboundMessage.objects.filter(pk=message.pk).update(
        created_at=timezone.now() - timedelta(minutes=2)
    )
    assert tasks.dispatch_due() == 1
    wait_until_all([message], timeout=30)
    assert len(posts(emu)) == 1


# --- the shared rate limiter ------------------------------------------------------------------


@pytest.fixture
def short_limits(emu, settings):
    emu.update_config(
        rate_limits_enabled=True, rate_window=SHORT_WINDOW, rate_limits={"Medium": SHORT_LIMIT}
    )
    emu.rate_limiter.reset()
    settings.RINGCENTRAL_RATE_LIMITS = {
        **settings.RINGCENTRAL_RATE_LIMITS,
        "Medium": {"limit": SHORT_LIMIT, "window": SHORT_WINDOW},
    }
    yield
    emu.update_config(rate_window=60.0, rate_limits={"Medium": 40}, rate_limits_enabled=False)


def test_two_workers_stay_under_the_medium_limit_and_never_get_a_429(
    limited_workers, emu, linked, alice, short_limits
):
    number = sender(linked)
    messages = [
        make_message(number, alice, to=(f"+1650555{2000 + i:04d}",), text=f"Paced #{i}")
        for i in range(3 * SHORT_LIMIT)
    ]
    enqueue(*messages)
    wait_until_all(messages, timeout=60)

    sends = posts(emu)
    assert [e.status for e in sends] == [200] * len(messages), "no 429, no retries"
    times = sorted(e.time for e in sends)
    for i, started in enumerate(times):
        in_window = [t for t in times[i:] if t < started + SHORT_WINDOW]
        assert len(in_window) <= SHORT_LIMIT
    assert OutboundMessage.objects.filter(attempts=1).count() == len(messages)


def paused_until(key: ratelimit.LimitKey) -> float:
    """When the shared limiter's pause of `key` ends (0 when none), on the limiter's own clock,
    with that clock's current time."""
    limiter = ratelimit.get_limiter()
    if isinstance(limiter, ratelimit.RedisRateLimiter):
        value = limiter.client.get(limiter._redis_key(key, "pause"))
        seconds, micros = limiter.client.time()
        return float(value or 0), seconds + micros / 1e6
    from messaging.models import RateLimitBucket

    bucket = RateLimitBucket.objects.filter(key=key.name).first()
    return (bucket.paused_until if bucket else 0.0), limiter._now()


def test_a_429_pauses_the_group_for_every_worker_then_both_messages_are_sent(
    limited_workers, emu, linked, alice, short_limits
):
    emu.inject(Fault("rate_limit", path_contains="/sms", retry_after=2))
    first = make_message(sender(linked), alice, to=("+16505550183",), text="First")
    enqueue(first)
    wait_for(lambda: posts(emu), timeout=20, message="the first POST")
    key = ratelimit.key_for(linked, limits.SEND_GROUP)
    wait_for(lambda: paused_until(key)[0] > 0, timeout=10, message="the pause")
    ends, now = paused_until(key)
    assert 0 < ends - now <= 2.0

    second = make_message(sender(linked), alice, to=("+16505550184",), text="Second")
    enqueue(second)
    wait_until_all([first, second], timeout=30)

    sends = posts(emu)
    assert [e.status for e in sends] == [429, 200, 200]
    assert min(e.time for e in sends[1:]) - sends[0].time >= 2.0, "nothing sent while paused"
    first.refresh_from_db()
    assert first.attempts == 1, "the 429 did not use up an attempt"
    assert list(first.send_attempts.values_list("outcome", flat=True)) == [
        AttemptOutcome.RATE_LIMITED,
        AttemptOutcome.ACCEPTED,
    ]


# --- a worker killed in the middle of a send ------------------------------------------------------


def test_a_worker_killed_mid_send_leads_to_exactly_one_message(
    unlimited_workers, emu, linked, alice, media_dir, settings
):
    env = worker_env(emu, media_dir, RINGCENTRAL_RATE_LIMITING="False")
    message = make_message(sender(linked), alice, to=("+16505550185",), text="Kill me")
    emu.inject(Fault("stall", path_contains="/sms", seconds=10))
    with celery_worker(concurrency=1, **env) as worker:
        enqueue(message)
        # The fault is taken when the request arrives: the claim is committed, the POST is open.
        wait_for(lambda: not emu.faults.pending(), timeout=20, message="the POST to arrive")
        worker.stop(signal.SIGKILL)
    wait_for(lambda: posts(emu), timeout=5, message="the emulator to notice")
    assert posts(emu)[0].outcome == "stalled"
    assert OutboundMessage.objects.get(pk=message.pk).status == MessageStatus.SENDING

    settings.OUTBOX_SENDING_LEASE = 0
    assert tasks.sweep_stuck() == 1
    assert OutboundMessage.objects.get(pk=message.pk).status == MessageStatus.UNKNOWN
    settings.OUTBOX_RECONCILE_GRACE = 0
    # Nothing in the store: queued again, and handed to the workers still running.
    assert tasks.reconcile_unknown() == {MessageStatus.QUEUED: 1}
    wait_until_all([message], timeout=30)

    assert [e.outcome for e in posts(emu)] == ["stalled", "accepted"]
    assert len(emu.messages) == 1


@contextmanager
def holding_the_message_row(message):
    """Keep a worker from writing the message's outcome (a row lock; SQLite's write lock)."""
    with transaction.atomic():
        row = OutboundMessage.objects.select_for_update().get(pk=message.pk)
        if db_connection.vendor == "sqlite":
            # BEGIN IMMEDIATE took the write lock already; a write makes it unmistakable.
            OutboundMessage.objects.filter(pk=row.pk).update(error_fix=row.error_fix)
        yield


def test_a_worker_killed_after_ringcentral_accepted_is_settled_without_a_second_post(
    emu, linked, alice, media_dir, settings
):
    env = worker_env(emu, media_dir, RINGCENTRAL_RATE_LIMITING="False")
    message = make_message(sender(linked), alice, to=("+16505550186",), text="Accepted, then?")
    emu.inject(Fault("stall", path_contains="/sms", seconds=1.5))
    with celery_worker(concurrency=1, **env) as worker:
        enqueue(message)
        wait_for(lambda: not emu.faults.pending(), timeout=20, message="the POST to arrive")
        with holding_the_message_row(message):
            wait_for(lambda: posts(emu), timeout=10, message="RingCentral to accept")
            time.sleep(0.5)  # the worker now waits to record the answer
            worker.stop(signal.SIGKILL)

    (post,) = posts(emu)
    assert post.outcome == "accepted"
    if db_connection.vendor == "postgresql":
        # The worker had already sent the one statement that records the answer; PostgreSQL
        # completes it once the lock is released, worker or no worker: the answer is kept.
        wait_for(
            lambda: OutboundMessage.objects.get(pk=message.pk).status == MessageStatus.SENT,
            timeout=10,
            message="the answer to be recorded",
        )
    else:
        # SQLite: the worker's transaction died with it; the sweeper and the message store
        # settle the message.
        assert OutboundMessage.objects.get(pk=message.pk).status == MessageStatus.SENDING
        settings.OUTBOX_SENDING_LEASE = 0
        assert tasks.sweep_stuck() == 1
        assert tasks.reconcile_unknown() == {MessageStatus.SENT: 1}
    message.refresh_from_db()
    assert message.rc_message_id == str(post.message_id)
    assert len(posts(emu)) == 1 and len(emu.messages) == 1
