"""Consent speed: RingCentral's consent list of 10,000 records read into the ledger (the first
time, and again when nothing changed), and the consent check of a compose submission to 1,000
recipients.

Run with `make bench` (or BENCH=1 and a PostgreSQL DATABASE_URL). Against the emulator over a
socket; written to docs/benchmarks.md under "## Consent". Only the query counts are asserted;
times are recorded.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import pytest
from django.db import connection

from messaging.compose import submission
from messaging.models import ConsentRecord
from messaging.tracking import consents
from tests.bench.report import machine, replace_section
from tests.rc_fixtures import NUMBER_SMS_MMS, journal
from tests.tracking_helpers import fresh_limits, link_sender  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.skipif(os.environ.get("BENCH") != "1", reason="benchmarks run with BENCH=1"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fresh_limits"),
]

RECORDS = 10_000
RECIPIENTS = 1_000
SECTION = "## Consent"


def timed(work):
    queries = 0

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        started = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - started
    return result, seconds, queries


def test_reading_ten_thousand_consent_records_and_checking_a_thousand_recipients(
    emulator, team, alice
):
    emulator.update_config(rate_limits_enabled=False)
    rc_user = emulator.add_extension(
        name="Rita Frontdesk",
        numbers=[{"phone_number": NUMBER_SMS_MMS, "features": ["SmsSender", "MmsSender"]}],
    )
    conn, number = link_sender(emulator, team, alice, rc_user)
    ConsentRecord.objects.all().delete()
    contacts = [f"+1650555{i:04d}" for i in range(RECORDS)]
    for index, contact in enumerate(contacts):
        sender = "*" if index % 10 == 0 else NUMBER_SMS_MMS
        emulator.set_consent(sender, contact, "OptOut", "Recipient", account_id=rc_user.account_id)
    calls_before = len(journal(emulator, "/sms/consents"))

    first, first_s, first_q = timed(lambda: consents.read_all(conn.pk))
    again, again_s, again_q = timed(lambda: consents.read_all(conn.pk))
    calls = len(journal(emulator, "/sms/consents")) - calls_before

    assert first["changed"] == RECORDS and again == {"unchanged": RECORDS}
    assert again_q <= 20  # one read of what the ledger holds, whatever the list's size

    membership = team.memberships.get(user=alice)
    to = "\n".join(contacts[:: RECORDS // RECIPIENTS][:RECIPIENTS])
    check = lambda: submission.prepare(  # noqa: E731
        membership, sender=number.pk, to=to, text="Hello", check_only=True
    )
    refused, check_s, check_q = timed(lambda: _refusals(check))
    assert refused == RECIPIENTS

    load = os.getloadavg()[0]
    rows = [
        ("Read the whole list, 10,000 records new to the ledger", first_s, first_q),
        ("Read it again, nothing changed", again_s, again_q),
        ("Compose check, 1,000 recipients, all opted out", check_s, check_q),
    ]
    lines = [
        SECTION,
        "",
        f"RingCentral's SMS consent list of {RECORDS:,} opt-outs (one in ten for every number of "
        "the account) read from the emulator over a socket into the consent ledger, "
        f"{calls // 2} page requests a read (1,000 records a page); then the compose page's "
        f"check of a submission to {RECIPIENTS:,} of them. Produced by "
        "`tests/bench/test_bench_consent.py`.",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}",
        f"- Run on: {connection.vendor} database; load average (1 min) after: {load:.2f} "
        "(other work on the machine inflates times)",
        "",
        "| What | Time (s) | Queries |",
        "|---|---:|---:|",
        *[f"| {what} | {seconds:.2f} | {queries:,} |" for what, seconds, queries in rows],
    ]
    replace_section(SECTION, "\n".join(lines) + "\n")


def _refusals(check) -> int:
    try:
        check()
    except submission.ComposeInvalid as invalid:
        return sum("opted out" in message for message in invalid.errors.get("to", []))
    return 0
