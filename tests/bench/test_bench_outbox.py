"""Outbox page speed with 100,000 messages in one team, on PostgreSQL.

Run with `make bench` (or BENCH=1 and a PostgreSQL DATABASE_URL). It measures the server time of
the outbox pages people open most (the WSGI application called in-process: middleware, views,
queries and templates; no network) and writes p50/p95 to docs/benchmarks.md under
"## Outbox page". It asserts only that the number of queries stays fixed; times are recorded,
never asserted.
"""

import os
import statistics
import time
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging.models import (
    OutboundMessage,
    Recipient,
)
from tests.bench.report import machine, replace_section
from tests.factories import team_history

pytestmark = [
    pytest.mark.skipif(os.environ.get("BENCH") != "1", reason="benchmarks run with BENCH=1"),
    pytest.mark.django_db(transaction=True),
]

MESSAGES = 100_000
BATCH = 5_000
RUNS = 60
WARMUP = 5
TARGET_P95_MS = 50
SECTION = "## Outbox page"


@pytest.fixture
def big_team(team, alice, bob):
    if connection.vendor != "postgresql":
        pytest.skip(
            "The outbox benchmark needs PostgreSQL: set DATABASE_URL=postgres://… "
            f"(this run uses {connection.vendor})."
        )
    populate(team, [alice, bob])
    return team


def populate(team, authors) -> None:
    """MESSAGES messages with one recipient each, in `team`, spread over about half a year."""
    team_history(team, authors, MESSAGES, batch=BATCH)
    # What autovacuum would have done by the time a team has this much history.
    with connection.cursor() as cursor:
        for table in ("messaging_outboundmessage", "messaging_recipient"):
            cursor.execute(f"VACUUM ANALYZE {table}")


class Server:
    """Calls the WSGI application the way a server does, as the signed-in user of `client`.

    The test client would also copy every template context for inspection, which costs more
    than some of the pages being measured; this goes through the same middleware and views
    without it.
    """

    def __init__(self, client):
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        self.cookie = f"{settings.SESSION_COOKIE_NAME}={cookie}"
        self.handler = WSGIHandler()
        self.factory = RequestFactory()

    def get(self, url) -> int:
        environ = self.factory.get(url, HTTP_COOKIE=self.cookie).environ
        statuses = []
        body = self.handler(environ, lambda status, headers, exc_info=None: statuses.append(status))
        b"".join(body)
        return int(statuses[0].split()[0])


def _measure(server, url) -> dict:
    for _ in range(WARMUP):
        assert server.get(url) == 200
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


def _deep_url(client, pages: int) -> str:
    url = "/messages/"
    for _ in range(pages):
        older = client.get(url).context["older_url"]
        url = "/messages/" + older
    return url


def _write_report(results: dict, load: tuple[float, float]) -> None:
    lines = [
        SECTION,
        "",
        f"{MESSAGES:,} messages in one team on PostgreSQL "
        f"({connection.pg_version // 10000}); server time of the WSGI application called "
        f"in-process (middleware, queries, templates; no network), {RUNS} runs after {WARMUP} "
        "warm-ups. "
        f"Target: p95 ≤ {TARGET_P95_MS} ms. Produced by `tests/bench/test_bench_outbox.py`.",
        "",
        f"- Date: {timezone.now():%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}",
        f"- Load average (1 min) before / after: {load[0]:.2f} / {load[1]:.2f} "
        "(other work on the machine inflates the times)",
        "",
        "| Page | p50 (ms) | p95 (ms) | Queries |",
        "|---|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {r['p50']:.1f} | {r['p95']:.1f} | {r['queries']} |")
    section = "\n".join(lines) + "\n"

    replace_section(SECTION, section)


def test_outbox_pages_with_100k_messages(big_team, alice):
    client = Client()
    client.force_login(alice)
    session = client.session
    session["current_team_id"] = big_team.pk
    session.save()

    # The last seven digits of a recipient in the middle of the history, as people type them.
    middle = (
        Recipient.objects.filter(message__team=big_team)
        .order_by("pk")
        .values_list("phone_number", flat=True)[MESSAGES // 2]
    )
    typed_number = f"{middle[-7:-4]}-{middle[-4:]}"
    pages = {
        "Outbox, all, first page": "/messages/",
        "Outbox, all, page 40 (cursor)": _deep_url(client, 39),
        "Outbox, delivered": "/messages/?folder=delivered",
        "Outbox, failed (3 statuses)": "/messages/?folder=failed",
        "Outbox, needs attention": "/messages/?folder=attention",
        "Outbox, queued": "/messages/?folder=queued",
        "Outbox, search by number (one match)": "/messages/?q=" + quote(typed_number),
        "Outbox, search by text (every message matches)": "/messages/?q=appointment",
        "Outbox, search by text (one match)": "/messages/?q=" + quote("Reminder 4242:"),
        "Live status (50 ids)": "/messages/status/?ids="
        + ",".join(
            str(pk)
            for pk in OutboundMessage.objects.filter(team=big_team).values_list("pk", flat=True)[
                :50
            ]
        ),
        "Dashboard (counts + 30-day chart)": "/dashboard/",
    }
    server = Server(client)
    load_before = os.getloadavg()[0]
    results = {name: _measure(server, url) for name, url in pages.items()}
    load = (load_before, os.getloadavg()[0])
    _write_report(results, load)
    for name, r in results.items():
        print(f"{name}: p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms, {r['queries']} queries")

    # The same fixed number of queries on the first page and forty pages in.
    assert (
        results["Outbox, all, first page"]["queries"]
        == results["Outbox, all, page 40 (cursor)"]["queries"]
    )
