"""The REST API: server time of `POST /api/v1/messages` (an SMS) over 200 requests, and the
queries of the list endpoints at few and many rows.

Run with BENCH=1 (a PostgreSQL DATABASE_URL and a Redis CELERY_BROKER_URL for numbers that
mean something); results go to docs/benchmarks.md under "## REST API". The WSGI application is
called in-process with the key in the Authorization header (authentication, throttling, the
compose checks, the transaction that creates the message and the hand-off to the broker; no
network). Query counts must not grow with the rows; times are recorded, not asserted.
"""

from __future__ import annotations

import json
import os
import statistics
import time

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from messaging.contacts import book
from messaging.models import Conversation, Role
from tests.api_fixtures import FROM, key_for
from tests.bench.report import machine, replace_section
from tests.factories import make_message
from tests.tracking_helpers import link_sender

pytestmark = [
    pytest.mark.skipif(os.environ.get("BENCH") != "1", reason="benchmarks run with BENCH=1"),
    pytest.mark.django_db(transaction=True),
]

SECTION = "## REST API"
REQUESTS = 200
WARMUP = 10
TARGET_P95_MS = 30
LISTS = ("/api/v1/messages", "/api/v1/contacts", "/api/v1/conversations")


class Server:
    """The WSGI application called as a server calls it, with an API key."""

    def __init__(self, secret: str):
        self.authorization = f"Bearer {secret}"
        self.handler = WSGIHandler()
        self.factory = RequestFactory()

    def call(self, environ) -> tuple[int, bytes]:
        statuses = []
        body = self.handler(environ, lambda status, headers, exc_info=None: statuses.append(status))
        return int(statuses[0].split()[0]), b"".join(body)

    def get(self, url) -> int:
        return self.call(self.factory.get(url, HTTP_AUTHORIZATION=self.authorization).environ)[0]

    def post(self, url, data) -> tuple[int, bytes]:
        environ = self.factory.post(
            url, json.dumps(data), content_type="application/json",
            HTTP_AUTHORIZATION=self.authorization,
        ).environ  # fmt: skip
        return self.call(environ)


def _queries(server, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert server.get(url) == 200
    return len(captured)


def _fill(team, number, user, start: int, count: int) -> None:
    for index in range(start, start + count):
        make_message(number, user, to=(f"+1650556{index:04d}",), text=f"Reminder {index}")
        book.save(
            team, None, fields={"name": f"Contact {index}"},
            numbers=[(f"+1650557{index:04d}", "")], tag_names=["north"],
        )  # fmt: skip
        Conversation.objects.create(
            team=team, connection=number.connection, team_number=FROM,
            contact_key=f"+1650558{index:04d}", last_message_at=number.synced_at,
        )  # fmt: skip


def test_bench_api(emulator, team, alice, rc_user, settings):
    settings.API_THROTTLE_RATE = "100000/min"
    connection_, number = link_sender(emulator, team, alice, rc_user)
    connection_.shared_with_team = True
    connection_.save()
    server = Server(key_for(team, alice, Role.SENDER).secret)

    times = []
    for index in range(WARMUP + REQUESTS):
        body = {"from": FROM, "to": [f"+1650555{index:04d}"], "text": "Your table is ready."}
        started = time.perf_counter()
        status, content = server.post("/api/v1/messages", body)
        elapsed = (time.perf_counter() - started) * 1000
        assert status == 201, content[:300]
        if index >= WARMUP:
            times.append(elapsed)
    times.sort()
    send = {
        "p50": statistics.median(times),
        "p95": times[int(len(times) * 0.95) - 1],
        "max": times[-1],
    }

    # The same sends through the services alone (compose's checks, the outbox, the inbox's
    # threading, the hand-off), without HTTP, authentication or serializers: the API's own share
    # is the difference.
    from messaging.api import messages as api_messages
    from messaging.models import Membership

    membership = Membership.objects.select_related("team", "user").get(team=team, user=alice)
    service_times = []
    for index in range(REQUESTS):
        data = {"from": FROM, "to": [f"+1650553{index:04d}"], "text": "Your table is ready."}
        started = time.perf_counter()
        api_messages.send(membership, data, [], origin="")
        service_times.append((time.perf_counter() - started) * 1000)
    service_times.sort()
    service = {
        "p50": statistics.median(service_times),
        "p95": service_times[int(len(service_times) * 0.95) - 1],
        "max": service_times[-1],
    }

    _fill(team, number, alice, 0, 10)
    few = {url: _queries(server, url) for url in LISTS}
    _fill(team, number, alice, 10, 190)
    many = {url: _queries(server, url) for url in LISTS}
    assert few == many

    verdict = "meets" if send["p95"] <= TARGET_P95_MS else "misses"
    load = os.getloadavg()[0]
    lines = [
        SECTION,
        "",
        f"Measured on {machine()}, database {connection.vendor}, broker "
        f"{settings.CELERY_BROKER_URL.split(':')[0]}; the machine was shared with other work "
        "while measuring (tests/bench/test_bench_api.py).",
        "",
        f"`POST /api/v1/messages`, one SMS per request, {REQUESTS} requests after {WARMUP} "
        "warm-up ones, server time in-process (key lookup, throttle, the compose checks, the "
        "transaction that creates the message, the hand-off to the broker):",
        "",
        "| | p50 | p95 | max |",
        "|---|---:|---:|---:|",
        f"| `POST /api/v1/messages` | {send['p50']:.1f} ms | {send['p95']:.1f} ms | "
        f"{send['max']:.1f} ms |",
        f"| the services alone (no HTTP, key or serializers) | {service['p50']:.1f} ms | "
        f"{service['p95']:.1f} ms | {service['max']:.1f} ms |",
        "",
        f"p95 {verdict} the target of {TARGET_P95_MS} ms (load average {load:.1f} on "
        f"{os.cpu_count()} CPUs while measuring). Most of a send is spent in the services every "
        "way of sending shares (the second row: compose's checks, the outbox, the inbox "
        "threading the new message); the API adds the WSGI middleware, the key, the throttle, "
        "the serializers and the answer.",
        "",
        "Queries per list page (one page, the key's request included), with 10 and with 200 "
        "rows of each kind:",
        "",
        "| List | 10 rows | 200 rows |",
        "|---|---:|---:|",
        *[f"| `{url}` | {few[url]} | {many[url]} |" for url in LISTS],
        "",
    ]
    replace_section(SECTION, "\n".join(lines))
