"""Contacts: importing 10,000 and 50,000 rows (time, peak memory), and the contacts page at
100,000 contacts.

Run with BENCH=1 (and a PostgreSQL DATABASE_URL for numbers that mean something); results go
to docs/benchmarks.md under "## Contacts". The import runs in-process exactly as the worker
runs it (`importing.run`), on a CSV in the test's private storage, with tracemalloc tracing
Python's allocations: peak memory must stay flat as the file grows (rows are streamed and
written in chunks), which is the one thing asserted besides the results. Times are recorded.
"""

from __future__ import annotations

import os
import time
import tracemalloc

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client

from messaging.contacts import importing
from messaging.models import Contact, ContactNumber, ImportJob, ImportStatus, Tag
from tests.bench.report import machine, replace_section
from tests.bench.test_bench_outbox import Server, _measure
from tests.conftest import client_for
from tests.test_isolation import use_private_media

pytestmark = [
    pytest.mark.skipif(os.environ.get("BENCH") != "1", reason="benchmarks run with BENCH=1"),
    pytest.mark.django_db(transaction=True),
]

SECTION = "## Contacts"
PAGE_CONTACTS = 100_000
TARGET_P95_MS = 50
RESULTS: dict = {}


@pytest.fixture(autouse=True)
def _private_media(tmp_path, settings):
    use_private_media(tmp_path, settings)


def _csv(rows: int) -> bytes:
    lines = ["Name,Company,Phone,Email,Tags,Opted out,Plan"]
    for i in range(rows):
        # Every 50th row repeats an earlier number (merged), every 100th is invalid.
        n = i - 1 if i % 50 == 49 else i
        phone = "555-12" if i % 100 == 99 else f"(650) 5{n // 10000:02d}-{n % 10000:04d}"
        opted = "yes" if i % 200 == 0 else ""
        lines.append(f"Person {i},Co {i % 300},{phone},p{i}@example.com,t{i % 7},{opted},gold")
    return ("\n".join(lines) + "\n").encode()


def _import(team, user, rows: int) -> dict:
    data = _csv(rows)
    name = default_storage.save(f"imports/{team.pk}/bench-{rows}.csv", ContentFile(data))
    job = ImportJob.objects.create(
        team=team,
        created_by=user,
        file_name=f"bench-{rows}.csv",
        stored_name=name,
        file_kind="csv",
        encoding="utf-8",
        file_size=len(data),
        headers=["Name", "Company", "Phone", "Email", "Tags", "Opted out", "Plan"],
        mapping=["name", "company", "number", "email", "tags", "opted_out", "custom"],
        status=ImportStatus.QUEUED,
    )
    tracemalloc.start()
    started = time.perf_counter()
    status = importing.run(job.pk)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    job.refresh_from_db()
    assert status == ImportStatus.DONE, job.failure
    assert job.position == rows
    return {
        "rows": rows,
        "bytes": len(data),
        "seconds": seconds,
        "peak_mb": peak / 1e6,
        "created": job.created_count,
        "merged": job.merged_count,
        "refused": job.refused_count,
        "opted_out": job.opted_out_count,
    }


def test_importing_10k_and_50k_rows_keeps_memory_flat(team, alice):
    small = _import(team, alice, 10_000)
    Contact.objects.filter(team=team).delete()
    large = _import(team, alice, 50_000)
    RESULTS["import"] = [small, large]
    assert large["created"] + large["merged"] + large["refused"] == 50_000
    # Five times the rows, not five times the memory.
    assert large["peak_mb"] < small["peak_mb"] * 2
    _write()


def test_the_contacts_page_at_100k_contacts(team, alice):
    tags = [Tag.objects.create(team=team, name=f"tag{i}") for i in range(10)]
    batch = 5000
    through = Contact.tags.through
    for start in range(0, PAGE_CONTACTS, batch):
        made = Contact.objects.bulk_create(
            Contact(team=team, name=f"Person {i:06d}", company=f"Company {i % 300}")
            for i in range(start, start + batch)
        )
        ContactNumber.objects.bulk_create(
            ContactNumber(contact=c, team=team, number=f"+1650{5000000 + i:07d}")
            for i, c in zip(range(start, start + batch), made, strict=True)
        )
        through.objects.bulk_create(
            through(contact_id=c.pk, tag_id=tags[i % 10].pk)
            for i, c in zip(range(start, start + batch), made, strict=True)
        )
    if connection.vendor == "postgresql":
        # What autovacuum would have done by the time a team has this many contacts.
        with connection.cursor() as cursor:
            for table in ("messaging_contact", "messaging_contactnumber", "messaging_contact_tags"):
                cursor.execute(f"VACUUM ANALYZE {table}")
    middle = Contact.objects.filter(team=team, name="Person 050000").values_list("pk", flat=True)
    server = Server(client_for(Client, alice, team))
    RESULTS["page"] = {
        "first page": _measure(server, "/contacts/"),
        "page 1,001 (after contact 50,000)": _measure(server, f"/contacts/?after={middle[0]}"),
        "by tag": _measure(server, "/contacts/?tag=tag3"),
        "search by name": _measure(server, "/contacts/?q=Person%200999"),
        "compose suggestions": _measure(server, "/contacts/search.json?q=Person%200999"),
    }
    # A fixed number of queries whatever the page: no query per contact.
    assert RESULTS["page"]["first page"]["queries"] <= 16
    _write()


def _write() -> None:
    lines = [
        SECTION,
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}, database {connection.vendor}; "
        f"load average (1 min) {os.getloadavg()[0]:.2f} (other work on the machine inflates "
        "times).",
        "",
    ]
    if "import" in RESULTS:
        lines += [
            "Import (tests/bench/test_bench_contacts.py), `importing.run` in-process as the "
            "worker runs it, tracemalloc on (it slows allocation, so times are upper bounds):",
            "",
            "| Rows | File | Time | Rows/s | Peak Python memory | Created | Merged | Refused "
            "| Opted out |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in RESULTS["import"]:
            lines.append(
                f"| {r['rows']:,} | {r['bytes'] / 1e6:.1f} MB | {r['seconds']:.1f} s | "
                f"{r['rows'] / r['seconds']:,.0f} | {r['peak_mb']:.1f} MB | {r['created']:,} | "
                f"{r['merged']:,} | {r['refused']:,} | {r['opted_out']:,} |"
            )
        small, large = RESULTS["import"]
        lines += [
            "",
            f"Peak memory {small['peak_mb']:.1f} MB at {small['rows']:,} rows and "
            f"{large['peak_mb']:.1f} MB at {large['rows']:,}: flat in file size (rows are "
            f"streamed and written {importing.CHUNK} at a time).",
        ]
        lines.append("")
    if "page" in RESULTS:
        lines += [
            f"Contacts page at {PAGE_CONTACTS:,} contacts (server time in-process, "
            f"target p95 ≤ {TARGET_P95_MS} ms):",
            "",
            "| Page | p50 | p95 | Queries |",
            "|---|---:|---:|---:|",
        ]
        for name, m in RESULTS["page"].items():
            lines.append(f"| {name} | {m['p50']:.1f} ms | {m['p95']:.1f} ms | {m['queries']} |")
        missed = [name for name, m in RESULTS["page"].items() if m["p95"] > TARGET_P95_MS]
        lines += [
            "",
            f"Target missed by: {', '.join(missed)}."
            if missed
            else f"Every page meets the target (p95 ≤ {TARGET_P95_MS} ms).",
        ]
        lines.append("")
    replace_section(SECTION, "\n".join(lines))
