"""Campaigns: from a list to every message queued, and use of the allowed rate.

Run with `make bench` (BENCH=1); writes "## Campaigns" in docs/benchmarks.md.

(a) A campaign of N recipients from an uploaded CSV (N = 2,000 and 10,000): creation (reading,
    merging, writing the recipients), the pre-flight summary, the start and the feeder's rounds
    until every recipient is released as a queued outbox message. Server time (the same steps
    called in-process, no HTTP), peak memory (tracemalloc, Python allocations, in a second run
    of the same steps) and database queries per 1,000 recipients. The senders' budget is made
    large enough for one round to release everything, so the figure is the cost of the work,
    not of waiting for the rate limit. The hand-off of each message to the broker is the
    outbox's and is left out (one publish per message, measured under "## Sending").
(b) Use of the allowed rate: the emulator (a child process) enforces LIMIT sends per WINDOW s
    on the Medium group and the portal is configured the same; a campaign of 4 × LIMIT
    recipients is sent by two worker processes while this process plays beat (the feeder every
    FEED_EVERY s), i.e. over three full windows after the first burst. Use = the least time the
    limit allows / the time taken, from the emulator's journal. Once alone and once with a
    person's direct messages composed during the campaign (each one's wait is recorded).
    Target: ≥ 95 % and no 429.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
import tracemalloc

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from messaging.campaigns import creation, preflight, running
from messaging.compose import submission as compose
from messaging.models import (
    Campaign,
    CampaignRecipient,
    MessageStatus,
    OutboundMessage,
    RecipientState,
)
from messaging.outbox import handoff
from tests.bench.report import machine, replace_section
from tests.bench.test_bench_send import (
    FROM,
    databases,
    link,
    load,
    media,  # noqa: F401 - fixture
    met,
    start_emulator,
    stop_pool,
    worker_pool,
)
from tests.factories import make_connection, make_number
from tests.worker import wait_for

pytestmark = [
    pytest.mark.skipif(os.environ.get("BENCH") != "1", reason="benchmarks run with BENCH=1"),
    pytest.mark.django_db(transaction=True),
]

SECTION = "## Campaigns"
RESULTS: dict[str, dict] = {}
SIZES = (2_000, 10_000)
LIMIT, WINDOW = 10, 10.0
# RingCentral's 60 s window is shortened six-fold here, and with it every period measured
# against it: beat's 2 s for the feeder (settings.py) and the feeder's 10 s release window.
SCALE = WINDOW / 60.0
FEED_EVERY = 2.0 * SCALE
DIRECT_EVERY = 5.0


class Counted:
    """Counts statements, and apart those of the inbox threading each new message into its
    conversation (messaging/inbox/storing.py, run on the outbox's messages_created)."""

    def __init__(self):
        self.total = 0
        self.threading = 0

    def __call__(self, execute, sql, params, many, context):
        self.total += 1
        if '"messaging_conversation' in sql:
            self.threading += 1
        return execute(sql, params, many, context)


def csv_of(count: int) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["First name", "Phone", "Appointment", "Clinic"])
    for i in range(count):
        writer.writerow([f"Person{i}", f"+1650{5550000 + i:07d}", f"Mon {9 + i % 8}:00", "North"])
    return buffer.getvalue().encode()


def whole_run(membership, number, data: bytes) -> Campaign:
    upload = SimpleUploadedFile("list.csv", data, "text/csv")
    request = creation.Request(
        name="Bench",
        sender_ids=[str(number.pk)],
        text="Hi {first_name}, your appointment at {clinic} is {appointment}.",
        source="file",
        upload=upload,
    )
    campaign = creation.create(membership, request)
    preflight.summary(campaign)
    running.start(campaign)
    while running.feed():
        pass
    return campaign


@pytest.fixture
def big_budget(settings):
    settings.RINGCENTRAL_RATE_LIMITING = False
    settings.RINGCENTRAL_RATE_LIMITS = {
        **settings.RINGCENTRAL_RATE_LIMITS,
        "Medium": {"limit": 1_000_000, "window": 60},
        "SenderNumber": {"limit": 1_000_000, "window": 60},
    }
    # Hand-offs to the broker are left out (see the docstring).
    handoff.register(lambda message_id: None)
    yield
    from messaging.sending import tasks

    handoff.register(tasks.send_soon)


def test_a_from_a_list_to_every_message_queued(big_budget, team, alice, media):  # noqa: F811
    membership = team.memberships.get(user=alice)
    number = make_number(make_connection(team, alice, shared=True), FROM)
    before = load()
    for size in SIZES:
        data = csv_of(size)
        started = time.perf_counter()
        queries = Counted()
        with connection.execute_wrapper(queries):
            campaign = whole_run(membership, number, data)
        seconds = time.perf_counter() - started
        released = campaign.recipients.filter(state=RecipientState.RELEASED).count()
        assert released == size
        assert (
            OutboundMessage.objects.filter(
                campaign_recipient__campaign=campaign, status=MessageStatus.QUEUED
            ).count()
            == size
        )
        Campaign.objects.all().delete()
        OutboundMessage.objects.all().delete()
        tracemalloc.start()
        whole_run(membership, number, data)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        Campaign.objects.all().delete()
        OutboundMessage.objects.all().delete()
        RESULTS.setdefault("a", {})[size] = {
            "seconds": seconds,
            "per_1000_ms": seconds * 1000 / (size / 1000),
            "peak_mb": peak / 1e6,
            "queries": queries.total,
            "queries_per_1000": queries.total / (size / 1000),
            "own_per_1000": (queries.total - queries.threading) / (size / 1000),
        }
    RESULTS["a_load"] = f"{before} / {load()}"
    write_report()


# --- (b) use of the allowed rate ----------------------------------------------------------------


@pytest.mark.parametrize("direct", [False, True], ids=["campaign alone", "with direct messages"])
def test_b_use_of_the_allowed_rate(settings, media, team, alice, direct, monkeypatch):  # noqa: F811
    emu = start_emulator(
        settings,
        rate_limits_enabled=True,
        rate_window=WINDOW,
        rate_limits={"Light": 50, "Medium": LIMIT, "Heavy": 10, "Auth": 5},
    )
    rates = {"Medium": {"limit": LIMIT, "window": WINDOW}}
    settings.RINGCENTRAL_RATE_LIMITS = {**settings.RINGCENTRAL_RATE_LIMITS, **rates}
    # The short window the feeder fills, shortened with RingCentral's (10 s of 60 s).
    settings.CAMPAIGN_RELEASE_WINDOW_SECONDS = 10.0 * SCALE
    env = {
        "RINGCENTRAL_SERVER_URL": emu.base_url,
        "DEMO_EMULATOR_URL": emu.base_url,
        "MEDIA_ROOT": str(media),
        "RINGCENTRAL_RATE_LIMITS": json.dumps(rates),
    }
    from mmsportal.celery import app
    from tests.test_send_task import clear_shared_limiter

    clear_shared_limiter()
    # This process plays beat: the feed a start asks a worker for is left out.
    monkeypatch.setattr(running, "_feed_soon", None)
    before = load()
    queue, workers = worker_pool(2, env)
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    directs: list[OutboundMessage] = []
    try:
        linked = link(emu, team, alice)
        number = linked.numbers.get(phone_number=FROM)
        membership = team.memberships.get(user=alice)
        count = 4 * LIMIT
        people = count - (4 if direct else 0)
        campaign = creation.create(
            membership,
            creation.Request(
                name="Rate",
                sender_ids=[str(number.pk)],
                text="Reminder for {first_name}",
                source="file",
                upload=SimpleUploadedFile("list.csv", csv_of(people), "text/csv"),
            ),
        )
        running.start(campaign)
        started = time.monotonic()
        next_direct = started + 2.0
        next_feed = started

        def done() -> bool:
            nonlocal next_feed, next_direct
            now = time.monotonic()
            if now >= next_feed:
                running.feed()
                next_feed = now + FEED_EVERY
            if direct and len(directs) < 4 and now >= next_direct:
                directs.extend(
                    compose.send(
                        membership,
                        sender=number,
                        to=f"+1650557{len(directs):04d}",
                        text=f"Direct {len(directs)}",
                    )
                )
                next_direct = now + DIRECT_EVERY
            waiting = CampaignRecipient.objects.filter(
                campaign=campaign, state=RecipientState.PENDING
            ).exists()
            unsent = OutboundMessage.objects.filter(sent_at__isnull=True).exists()
            return not waiting and not unsent and (not direct or len(directs) == 4)

        wait_for(done, timeout=30 * WINDOW, interval=0.2, message="every message sent")
        sends = emu.sends()
    finally:
        app.conf.task_default_queue = previous
        stop_pool(workers)
        emu.stop()
    statuses = [e["status"] for e in sends]
    assert statuses.count(429) == 0
    assert statuses.count(200) == count
    times = sorted(e["time"] for e in sends)
    needed = (count - 1) // LIMIT * WINDOW
    taken = times[-1] - times[0]
    sent_directs = list(OutboundMessage.objects.filter(pk__in=[d.pk for d in directs]))
    waits = [(m.sent_at - m.created_at).total_seconds() for m in sent_directs]
    # Campaign messages released after a direct message was written but sent before it.
    overtaking = [
        OutboundMessage.objects.filter(
            campaign_recipient__campaign=campaign,
            created_at__gt=m.created_at,
            sent_at__lt=m.sent_at,
        ).count()
        for m in sent_directs
    ]
    RESULTS.setdefault("b", {})["with direct messages" if direct else "campaign alone"] = {
        "messages": count,
        "directs": len(directs),
        "needed_s": needed,
        "taken_s": taken,
        "use": needed / taken,
        "rejected": statuses.count(429),
        "direct_wait_max": max(waits) if waits else None,
        "overtaking": max(overtaking) if overtaking else None,
        "load": f"{before} / {load()}",
    }
    write_report()


def write_report() -> None:
    lines = [
        SECTION,
        "",
        "Produced by `tests/bench/test_bench_campaigns.py` (`make bench`).",
        "",
        f"- Date: {timezone.now():%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}",
        f"- Configuration: {databases()}",
        "",
    ]
    if "a" in RESULTS:
        lines += [
            "### (a) From a list to every message queued",
            "",
            "An uploaded CSV of N rows: creation (reading, merging, writing the recipients), the "
            "pre-flight summary, the start and the feeder's rounds until every recipient is a "
            "queued outbox message, called in-process (no HTTP; the broker hand-off, the "
            "outbox's, left out). Peak memory is tracemalloc's in a second run. Target: peak "
            "memory flat in N. The rest of the queries are the inbox threading each new message "
            "into its conversation (one UPDATE per message, `messaging/inbox/storing.py`).",
            "",
            "| Recipients | Server time (s) | ms per 1,000 | Peak memory (MB) | Queries | "
            "Queries per 1,000 | Of which the campaign's own, per 1,000 |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for size, r in RESULTS["a"].items():
            lines.append(
                f"| {size:,} | {r['seconds']:.1f} | {r['per_1000_ms']:.0f} | "
                f"{r['peak_mb']:.1f} | {r['queries']:,} | {r['queries_per_1000']:.0f} | "
                f"{r['own_per_1000']:.0f} |"
            )
        small, large = (RESULTS["a"][s]["peak_mb"] for s in SIZES)
        lines += [
            "",
            f"Peak memory at {SIZES[1]:,} against {SIZES[0]:,} recipients: "
            f"{large / small:.2f} × ({met(large / small < 1.5)}: flat means under 1.5 × for "
            f"{SIZES[1] // SIZES[0]} × the recipients). Load average (1 min) before / after: "
            f"{RESULTS['a_load']}.",
            "",
        ]
    if "b" in RESULTS:
        lines += [
            "### (b) Use of the allowed rate",
            "",
            f"The emulator enforces {LIMIT} sends per {WINDOW:.0f} s on the Medium group and the "
            f"portal is configured the same; a campaign of {4 * LIMIT} messages in all, i.e. "
            "three full windows after the first burst, two worker processes, the feeder every "
            f"{FEED_EVERY:.2f} s filling the next {10 * SCALE:.1f} s: RingCentral's window is "
            "shortened six-fold, and with it beat's 2 s period for the feeder and the feeder's "
            "10 s release window."
            f" With direct messages: 4 of the {4 * LIMIT} are a person's own, "
            f"composed every {DIRECT_EVERY:.0f} s during the campaign. Use = the least time the "
            "limit allows / the time taken. Target: ≥ 95 %, no 429.",
            "",
            "| Run | Messages | Least time (s) | Time taken (s) | Use | 429 answers | "
            "Longest wait of a direct message (s) | Campaign messages released after a direct "
            "message but sent before it | Target | Load |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
        ]
        for name, r in RESULTS["b"].items():
            wait = f"{r['direct_wait_max']:.1f}" if r["direct_wait_max"] is not None else "–"
            ahead = str(r["overtaking"]) if r["overtaking"] is not None else "–"
            lines.append(
                f"| {name} | {r['messages']} | {r['needed_s']:.0f} | {r['taken_s']:.1f} | "
                f"{r['use']:.0%} | {r['rejected']} | {wait} | {ahead} | "
                f"{met(r['use'] >= 0.95 and r['rejected'] == 0)} | {r['load']} |"
            )
        lines += [
            "",
            "A direct message waits only for the user's budget: one written while the window's "
            f"{LIMIT} sends are used up goes at the first slot that frees, and no campaign "
            "message released after it is sent before it.",
            "",
        ]
    replace_section(SECTION, "\n".join(lines))
