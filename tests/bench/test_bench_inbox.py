"""Inbox speed: the list and thread pages at 100,000 messages in 10,000 conversations, and the
webhook handler, on PostgreSQL.

Run with `make bench` (or BENCH=1 and a PostgreSQL DATABASE_URL). Server time of the WSGI
application called in-process (middleware, views, queries, templates; no network), as the
outbox benchmark measures it, written to docs/benchmarks.md under "## Inbox pages". Only the
fixed number of queries is asserted; times are recorded. Catching up after downtime (Light
calls and time until visible) is measured against the emulator in
tests/bench/test_bench_inbox_sync.py.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging.models import (
    Conversation,
    ConversationMessage,
    ConversationNote,
    ConversationRead,
    Direction,
    InboxSync,
    MessageSource,
    WebhookStatus,
    WebhookSubscription,
)
from messaging.tracking import subscriptions as tracking
from tests.bench.report import machine, replace_section
from tests.bench.test_bench_outbox import Server
from tests.factories import make_connection, make_number

pytestmark = [
    pytest.mark.skipif(os.environ.get("BENCH") != "1", reason="benchmarks run with BENCH=1"),
    pytest.mark.django_db(transaction=True),
]

CONVERSATIONS = 10_000
PER_CONVERSATION = 10
RUNS = 60
WARMUP = 5
WEBHOOK_DELIVERIES = 200
TARGET_P95_MS = 50
SECTION = "## Inbox pages"
OURS = "+16505550100"
WORDS = ("appointment", "invoice", "pickup", "refill", "estimate", "delivery", "question")


def contact(i: int) -> str:
    return f"+1650{7_000_000 + i:07d}"


def populate(team, connection_, people) -> None:
    """CONVERSATIONS conversations of PER_CONVERSATION messages each, over about half a year,
    half of them read by the first person, some assigned, some closed, a note in every tenth."""
    rng = random.Random(7)
    start = timezone.now() - timedelta(days=180)
    conversations = []
    for i in range(CONVERSATIONS):
        last = start + timedelta(seconds=i * 1500)
        conversations.append(
            Conversation(
                team=team,
                connection=connection_,
                team_number=OURS,
                contact_key=contact(i),
                state="closed" if i % 7 == 0 else "open",
                assignee=people[i % len(people)] if i % 3 == 0 else None,
                last_message_at=last,
                last_preview=f"Message {PER_CONVERSATION} about the {WORDS[i % len(WORDS)]}",
                last_direction=Direction.INBOUND,
                inbound_count=PER_CONVERSATION // 2,
                updated_at=last,
            )
        )
    Conversation.objects.bulk_create(conversations, batch_size=2_000)
    conversations = list(Conversation.objects.filter(team=team).order_by("pk"))
    messages = []
    rc_id = 9_100_000_000
    for conversation in conversations:
        for j in range(PER_CONVERSATION):
            inbound = j % 2 == 0
            rc_id += 1
            word = WORDS[rng.randrange(len(WORDS))]
            messages.append(
                ConversationMessage(
                    conversation=conversation,
                    connection=connection_,
                    rc_message_id=str(rc_id),
                    direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
                    source=MessageSource.SYNC,
                    from_number=conversation.contact_key if inbound else OURS,
                    to_numbers=[OURS] if inbound else [conversation.contact_key],
                    text=f"Message {j + 1} about the {word} (ref {rc_id})",
                    rc_status="Received" if inbound else "Delivered",
                    at=conversation.last_message_at - timedelta(minutes=PER_CONVERSATION - j),
                )
            )
        if len(messages) >= 20_000:
            ConversationMessage.objects.bulk_create(messages, batch_size=5_000)
            messages = []
    ConversationMessage.objects.bulk_create(messages, batch_size=5_000)
    ConversationRead.objects.bulk_create(
        [
            ConversationRead(conversation=c, user=people[0], seen_count=c.inbound_count)
            for c in conversations[::2]
        ],
        batch_size=5_000,
    )
    ConversationNote.objects.bulk_create(
        [
            ConversationNote(conversation=c, author=people[1], text="Called back")
            for c in conversations[::10]
        ],
        batch_size=5_000,
    )
    with connection.cursor() as cursor:
        for table in (
            "messaging_conversation",
            "messaging_conversationmessage",
            "messaging_conversationread",
            "messaging_conversationnote",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")


@pytest.fixture
def big_inbox(team, alice, bob):
    if connection.vendor != "postgresql":
        pytest.skip(f"The inbox benchmark needs PostgreSQL (this run uses {connection.vendor}).")
    linked = make_connection(team, alice, shared=True)
    make_number(linked, OURS)
    populate(team, linked, [alice, bob])
    return team, linked


def measure(server, url) -> dict:
    for _ in range(WARMUP):
        assert server.get(url) == 200, url
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        status = server.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert status == 200
    with CaptureQueriesContext(connection) as queries:
        server.get(url)
    times.sort()
    return {
        "p50": statistics.median(times),
        "p95": times[int(len(times) * 0.95) - 1],
        "queries": len(queries),
    }


def webhook_times(client, sub, count: int) -> dict:
    """Server time of `count` instant deliveries, each a new message of an existing contact."""
    times = []
    for i in range(count):
        rc_id = 9_900_000_000 + i
        body = {
            "id": rc_id,
            "type": "SMS",
            "direction": "Inbound",
            "from": {"phoneNumber": contact(i * 37 % CONVERSATIONS)},
            "to": [{"phoneNumber": OURS}],
            "subject": f"New question {i}",
            "messageStatus": "Received",
            "creationTime": timezone.now().strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "attachments": [],
        }
        payload = {
            "event": "/restapi/v1.0/account/1/extension/2/message-store/instant?type=SMS",
            "subscriptionId": sub.rc_subscription_id,
            "body": body,
        }
        started = time.perf_counter()
        answer = client.post(
            "/ringcentral/webhook/",
            data=json.dumps(payload),
            content_type="application/json",
            headers={"Verification-Token": sub.verification_token},
        )
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200
    times.sort()
    return {
        "p50": statistics.median(times),
        "p95": times[int(len(times) * 0.95) - 1],
        "queries": "—",
    }


def test_inbox_pages_at_100k_messages_in_10k_conversations(big_inbox, alice):
    team, linked = big_inbox
    client = Client()
    client.force_login(alice)
    session = client.session
    session["current_team_id"] = team.pk
    session.save()
    middle = Conversation.objects.filter(team=team).order_by("pk")[CONVERSATIONS // 2]
    busy = Conversation.objects.filter(team=team).order_by("-last_message_at").first()
    older = client.get("/inbox/").context["older_url"]
    for _ in range(38):
        older = client.get("/inbox/" + older).context["older_url"]
    pages = {
        "Inbox, open, first page": "/inbox/",
        "Inbox, open, page 40 (cursor)": "/inbox/" + older,
        "Inbox, unread": "/inbox/?filter=unread",
        "Inbox, assigned to me": "/inbox/?filter=mine",
        "Inbox, unassigned": "/inbox/?filter=unassigned",
        "Inbox, closed": "/inbox/?filter=closed",
        "Inbox, search by number (one match)": "/inbox/?q="
        + quote(f"{middle.contact_key[-7:-4]}-{middle.contact_key[-4:]}"),
        "Inbox, search by text (one match)": "/inbox/?q=" + quote(f"ref {9_100_050_000}"),
        "Inbox, search by text (many match)": "/inbox/?q=invoice",
        "Inbox, live check (nothing new)": "/inbox/live/?version="
        + client.get("/inbox/live/").json()["version"],
        "Thread (10 messages, a note)": f"/inbox/{busy.pk}/",
        "Thread, live check (nothing new)": f"/inbox/{busy.pk}/live/?version="
        + client.get(f"/inbox/{busy.pk}/live/").json()["version"],
    }
    server = Server(client)
    load_before = os.getloadavg()[0]
    results = {name: measure(server, url) for name, url in pages.items()}

    sub = WebhookSubscription.objects.create(connection=linked, status=WebhookStatus.PENDING)
    sub.verification_token = tracking.new_verification_token(sub.pk)
    sub.rc_subscription_id = "bench"
    sub.status = WebhookStatus.ACTIVE
    sub.expires_at = timezone.now() + timedelta(days=7)
    sub.save()
    results["Webhook: an instant delivery stored (new message)"] = webhook_times(
        Client(), sub, WEBHOOK_DELIVERIES
    )
    load = (load_before, os.getloadavg()[0])
    write_report(results, load)
    for name, r in results.items():
        print(f"{name}: p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms, {r['queries']} queries")
    assert (
        results["Inbox, open, first page"]["queries"]
        == results["Inbox, open, page 40 (cursor)"]["queries"]
    )


def write_report(results: dict, load: tuple[float, float]) -> None:
    lines = [
        SECTION,
        "",
        f"{CONVERSATIONS * PER_CONVERSATION:,} messages in {CONVERSATIONS:,} conversations of one "
        f"team on PostgreSQL ({connection.pg_version // 10000}); server time of the WSGI "
        f"application called in-process (middleware, queries, templates; no network), {RUNS} runs "
        f"after {WARMUP} warm-ups; the webhook row is {WEBHOOK_DELIVERIES} instant deliveries, "
        "each a new message stored (through the test client). "
        f"Target: p95 ≤ {TARGET_P95_MS} ms for the pages, with a fixed number of queries. "
        "Produced by `tests/bench/test_bench_inbox.py`.",
        "",
        f"- Date: {timezone.now():%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}",
        f"- Load average (1 min) before / after: {load[0]:.2f} / {load[1]:.2f}",
        "",
        "| Page | p50 (ms) | p95 (ms) | Queries | Target |",
        "|---|---:|---:|---:|---|",
    ]
    for name, r in results.items():
        met = (
            "—"
            if name.startswith("Webhook")
            else ("met" if r["p95"] <= TARGET_P95_MS else "**not met**")
        )
        lines.append(f"| {name} | {r['p50']:.1f} | {r['p95']:.1f} | {r['queries']} | {met} |")
    replace_section(SECTION, "\n".join(lines) + "\n")


# --- Catching up after downtime -------------------------------------------------------------------

CATCH_UP = 1_000
CATCH_UP_SECTION = "## Inbox catch-up"


def test_catching_up_1000_messages_after_downtime(emulator, team, alice, rc_user, settings):
    """While the portal was down, 1,000 texts arrived from 1,000 people (some with a photo).
    When it is back, beat's first run finds the sync overdue: how many Light calls, and how long
    until every message is in the inbox."""
    from messaging.inbox import sync as inbox_sync
    from tests.rc_fixtures import NUMBER_SMS_MMS, journal
    from tests.tracking_helpers import link_sender

    settings.RINGCENTRAL_RATE_LIMITING = False
    linked, _ = link_sender(emulator, team, alice, rc_user)
    inbox_sync.sync_connection(linked.pk)  # the link's history import, before the downtime
    before = [e for e in journal(emulator, "/message-sync") if e.status != 401]
    for i in range(CATCH_UP):
        files = (
            [("photo.png", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(64))] if i % 10 == 0 else ()
        )
        emulator.inbound(
            contact(i), NUMBER_SMS_MMS, f"Sent while you were away {i}", attachments=files
        )
    # The downtime lasted longer than the sync interval: the sync is overdue.
    InboxSync.objects.filter(connection=linked).update(
        next_sync_at=timezone.now() - timedelta(minutes=10)
    )
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    counts = inbox_sync.sync_due()
    took = time.perf_counter() - started
    calls = [e for e in journal(emulator, "/message-sync") if e.status != 401][len(before) :]
    visible = ConversationMessage.objects.filter(direction=Direction.INBOUND).count()
    assert visible == CATCH_UP, counts
    lines = [
        CATCH_UP_SECTION,
        "",
        f"{CATCH_UP:,} texts from {CATCH_UP:,} people (one in ten with a photo) arrived at "
        "RingCentral (the emulator) while the portal was down; when it is back, beat's first "
        "run finds the link's sync overdue. Measured: message-sync requests (Light calls) and "
        "the time from that run's start until every message is stored in its conversation "
        "(the files follow, fetched by their own task). Target: at most 3 Light calls. "
        "Produced by `tests/bench/test_bench_inbox.py`.",
        "",
        f"- Date: {timezone.now():%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}",
        f"- Run on: {db_vendor()} database; load average (1 min) before / after: "
        f"{load_before:.2f} / {os.getloadavg()[0]:.2f}",
        "",
        "| Messages | Light calls | Time until all visible (s) | Target |",
        "|---:|---:|---:|---|",
        f"| {visible:,} | {len(calls)} | {took:.1f} | "
        f"{'met' if len(calls) <= 3 else '**not met**'} |",
    ]
    replace_section(CATCH_UP_SECTION, "\n".join(lines) + "\n")
    print(f"catch-up: {len(calls)} calls, {took:.1f} s")


def db_vendor() -> str:
    return connection.vendor
