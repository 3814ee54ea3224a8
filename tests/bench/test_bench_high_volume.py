"""High Volume SMS: requests per 10,000 recipients, creating the batches and reading every
recipient's result, against the emulator over a socket.

Run with `make bench` (or BENCH=1 and a PostgreSQL DATABASE_URL). Written to docs/benchmarks.md
under "## High Volume SMS". The request counts are asserted; times are recorded. The emulator
works a number's messages through at 1,000 a second of its clock, which the benchmark moves
forward instead of sleeping; followed every 5 s as a runner would.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import pytest
from django.db import connection

from messaging.campaigns import high_volume
from messaging.links import connections
from messaging.ringcentral import limits
from tests.bench.report import machine, replace_section
from tests.rc_fixtures import NUMBERS, journal, link_directly
from tests.tracking_helpers import fresh_limits  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.skipif(os.environ.get("BENCH") != "1", reason="benchmarks run with BENCH=1"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fresh_limits"),
]

RECIPIENTS = 10_000
HV = "+16505550135"
SECTION = "## High Volume SMS"
POLL = 5.0


def run(emulator, conn, items):
    """Send, follow and read one campaign; (result, report, requests by step, seconds)."""
    before = len(journal(emulator, "/a2p-sms/"))
    started = time.perf_counter()
    result = high_volume.send_batches(conn, HV, items)
    sent_s = time.perf_counter() - started
    created = len(journal(emulator, "/a2p-sms/")) - before

    reports, followed, read_s = [], 0, 0.0
    for batch in result.batches:
        started = time.perf_counter()
        report, requests = high_volume.wait_until_done(
            conn,
            batch.batch_id,
            batch.recipients,
            timeout=600,
            interval=POLL,
            sleep=emulator.advance,
            clock=emulator.now,
        )
        read_s += time.perf_counter() - started
        reports.append(report)
        followed += requests
    read = sum(r.requests for r in reports)
    return (
        result,
        reports,
        {"create": created, "follow": followed - read, "read": read},
        sent_s,
        read_s,
    )


def test_requests_per_ten_thousand_recipients(emulator, team, alice):
    rc_user = emulator.add_extension(
        name="Rita Frontdesk",
        numbers=[
            *(dict(n) for n in NUMBERS),
            {"phone_number": HV, "features": ["A2PSmsSender"]},
        ],
    )
    conn = link_directly(emulator, team, alice, rc_user)
    connections.sync_numbers(conn)
    numbers = [f"+1650{i:07d}" for i in range(RECIPIENTS)]
    start = emulator.now()
    emulator.clock = lambda: start

    rows = []
    for label, text_for in (
        (
            "Same text for everyone",
            lambda i: "Our office is closed on Friday. Reply STOP to opt out.",
        ),
        ("A text of its own each (merged name)", lambda i: f"Hi patient {i}, see you on Friday."),
    ):
        emulator.reset()
        items = [(f"r{i}", n, text_for(i)) for i, n in enumerate(numbers)]
        result, reports, requests, sent_s, read_s = run(emulator, conn, items)
        body = sum(e.body_size for e in journal(emulator, "/a2p-sms/batches") if e.method == "POST")
        results = sum(len(r.results) for r in reports)
        assert result.error is None and not result.unsent and results == RECIPIENTS
        assert requests["create"] == 1
        assert requests["read"] == 1 + RECIPIENTS // limits.A2P_MESSAGES_PER_PAGE
        rows.append((label, requests, body, sent_s, read_s))

    total = {label: sum(r.values()) for label, r, *_ in rows}
    lines = [
        SECTION,
        "",
        "A text-only campaign to 10,000 recipients from a number with `A2PSmsSender`, against the "
        "emulator over a socket: `high_volume.send_batches`, then `wait_until_done` (the batch "
        f"read every {POLL:.0f} s of emulator time until every message has left, then every "
        "recipient's result, a page of 1,000 a request). Every request is one grant of the "
        "user's Light group from the shared limiter. Produced by "
        "`tests/bench/test_bench_high_volume.py`.",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}",
        f"- Run on: {connection.vendor} database; load average (1 min) after: "
        f"{os.getloadavg()[0]:.2f} (the machine was shared with other work)",
        "",
        "| Texts | Create | Follow | Read results | Requests in all | Batch body | Send (s) | "
        "Read (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, requests, body, sent_s, read_s in rows:
        lines.append(
            f"| {label} | {requests['create']} | {requests['follow']} | {requests['read']} | "
            f"{total[label]} | {body / 1e6:.2f} MB | {sent_s:.2f} | {read_s:.2f} |"
        )
    lines += [
        "",
        f"Creating takes one request per {limits.A2P_MAX_MESSAGES_PER_BATCH:,} recipients (or "
        f"{limits.A2P_MAX_BATCH_BYTES / 1e6:.0f} MB of body); reading results one request for "
        "the batch and one per 1,000 recipients; following adds one per poll while messages "
        "leave. The same campaign through `POST …/sms` takes 10,000 requests of the Medium "
        "group (40 a minute: over four hours for one linked user) before any status is read.",
        "",
    ]
    replace_section(SECTION, "\n".join(lines))
