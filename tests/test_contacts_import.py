"""Importing contacts from CSV and Excel files: columns, problems, merges, opt-outs, refusals."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import Workbook

from messaging.consent import checks
from messaging.contacts import importing, tasks
from messaging.models import (
    ConsentSource,
    ConsentState,
    Contact,
    ContactNumber,
    ImportJob,
    ImportStatus,
)
from tests.test_isolation import use_private_media


@pytest.fixture(autouse=True)
def _private_media(tmp_path, settings):
    use_private_media(tmp_path, settings)


@pytest.fixture
def queued(monkeypatch):
    """What is handed to Celery after the commit, run as the worker would run it."""
    calls = []

    class Worker:
        @staticmethod
        def delay(job_id):
            calls.append(job_id)
            importing.run(job_id)

    monkeypatch.setattr(tasks, "import_contacts", Worker)
    return calls


def upload(client, name: str, data: bytes, content_type="text/csv"):
    return client.post(
        "/contacts/import/", {"file": SimpleUploadedFile(name, data, content_type=content_type)}
    )


def import_file(client, name, data, mapping=None, capture=None):
    response = upload(client, name, data)
    assert response.status_code == 302, response.content[:500]
    job = ImportJob.objects.latest("pk")
    mapping = mapping or job.mapping
    form = {f"column-{i}": target for i, target in enumerate(mapping)}
    with capture(execute=True):
        started = client.post(f"/contacts/import/{job.pk}/", form)
    assert started.status_code == 302, started.content[:1000]
    job.refresh_from_db()
    return job


CSV_WITH_PROBLEMS = (
    b"Name,Phone,Email,Tags,Opted out,Birthday\n"
    b"Ann Lee,(650) 555-0101,ann@example.com,patients,no,May 1\n"
    b'Bob Roe,650.555.0102,,"patients, north",yes,\n'
    b"No Number,,nn@example.com,,,\n"
    b"Bad Number,555-12,,,,\n"
    b"Ann again,+1 650 555 0101,,vip,,\n"
    b"Wrong mail,650-555-0103,not-an-email,,,\n"
)


def test_a_csv_is_imported_with_problems_listed_and_duplicates_merged(
    dana_client, team, dana, queued, django_capture_on_commit_callbacks
):
    job = import_file(
        dana_client, "people.csv", CSV_WITH_PROBLEMS, capture=django_capture_on_commit_callbacks
    )
    assert job.mapping == ["name", "number", "email", "tags", "opted_out", "custom"]
    assert job.status == ImportStatus.DONE
    assert (job.total_rows, job.position) == (6, 6)
    assert (job.created_count, job.merged_count, job.refused_count) == (2, 1, 3)
    ann = Contact.objects.get(team=team, numbers__number="+16505550101")
    # The later row's filled cells replace the stored ones; tags are added.
    assert ann.name == "Ann again"
    assert sorted(t.name for t in ann.tags.all()) == ["patients", "vip"]
    assert ann.custom_fields == {"Birthday": "May 1"}
    bob = Contact.objects.get(team=team, numbers__number="+16505550102")
    assert sorted(t.name for t in bob.tags.all()) == ["north", "patients"]
    # The opted-out column went through the consent ledger, team-wide.
    (record,) = checks.state_of(team.pk, "+16505550102")
    assert record.state == ConsentState.OPTED_OUT and record.source == ConsentSource.IMPORT
    assert record.note == "Imported from people.csv" and record.changed_by == dana
    assert record.from_number == "*" and record.account_id == ""
    assert checks.state_of(team.pk, "+16505550101") == []

    problems = dana_client.get(f"/contacts/import/{job.pk}/problems.csv")
    assert problems.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(problems.streaming_content).decode("utf-8-sig"))))
    assert rows[0][-3:] == ["Import row", "Import result", "Import problem"]
    by_row = {r[-3]: r for r in rows[1:]}
    assert by_row["4"][0] == "No Number" and "Missing phone number" in by_row["4"][-1]
    assert "not a valid phone number" in by_row["5"][-1] or "not a phone" in by_row["5"][-1]
    assert "Same number as row 2" in by_row["6"][-1]
    assert "Invalid email" in by_row["7"][-1]
    page = dana_client.get(f"/contacts/import/{job.pk}/")
    assert b"Missing phone number" in page.content


def test_the_fixed_problems_file_imports_cleanly(
    dana_client, team, queued, django_capture_on_commit_callbacks
):
    first = import_file(
        dana_client, "people.csv", CSV_WITH_PROBLEMS, capture=django_capture_on_commit_callbacks
    )
    text = b"".join(
        dana_client.get(f"/contacts/import/{first.pk}/problems.csv").streaming_content
    ).decode("utf-8-sig")
    fixed = (
        text.replace(",,nn@example.com", ",650-555-0104,nn@example.com")
        .replace("555-12", "650-555-0105")
        .replace("not-an-email", "wm@example.com")
    )
    second = import_file(
        dana_client, "fixed.csv", fixed.encode(), capture=django_capture_on_commit_callbacks
    )
    assert second.mapping[-3:] == ["", "", ""]  # our own columns are left out
    assert second.refused_count == 0
    assert Contact.objects.filter(team=team).count() == 5
    assert ContactNumber.objects.filter(team=team).count() == 5


def test_an_excel_file_with_numbers_typed_as_numbers_is_imported(
    dana_client, team, queued, django_capture_on_commit_callbacks
):
    book = Workbook()
    sheet = book.active
    sheet.append(["Full name", "Mobile", "Company"])
    sheet.append(["Cara Diaz", 6505550110, "Diaz & Co"])
    sheet.append(["Dev Patel", "+44 20 7946 0958", None])
    data = io.BytesIO()
    book.save(data)
    job = import_file(
        dana_client, "people.xlsx", data.getvalue(), capture=django_capture_on_commit_callbacks
    )
    assert job.status == ImportStatus.DONE and job.created_count == 2
    assert Contact.objects.get(numbers__number="+16505550110").company == "Diaz & Co"
    assert Contact.objects.filter(numbers__number="+442079460958", name="Dev Patel").exists()


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.csv", b"", b"The file is empty."),
        ("header.csv", b"Name,Phone\n", b"no contacts under it"),
        ("photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), b"not a CSV or Excel"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(200), b"old Excel"),
        ("broken.xlsx", b"PK\x03\x04" + bytes(300), b"not a readable Excel workbook"),
    ],
)
def test_files_that_cannot_be_imported_are_refused_with_a_reason(
    dana_client, team, name, data, message
):
    response = upload(dana_client, name, data)
    assert response.status_code == 400
    assert message in response.content
    assert not ImportJob.objects.exists()


def test_a_file_over_the_limit_is_refused(dana_client, team, settings):
    settings.CONTACTS_IMPORT_MAX_BYTES = 1000
    response = upload(dana_client, "big.csv", b"Name,Phone\n" + b"Ann,6505550101\n" * 200)
    assert response.status_code == 413
    assert b"an import takes files of up to" in response.content


def test_a_latin1_file_is_read_in_its_encoding(
    dana_client, team, queued, django_capture_on_commit_callbacks
):
    data = "Name;Phone\nJosé Müller;6505550120\nFrançoise Ça;6505550121\n".encode("cp1252")
    job = import_file(dana_client, "latin.csv", data, capture=django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.DONE, job.failure
    assert Contact.objects.filter(name="José Müller").exists()


def test_a_row_whose_numbers_belong_to_two_contacts_is_refused_and_nothing_changes(
    dana_client, team, queued, django_capture_on_commit_callbacks
):
    one = Contact.objects.create(team=team, name="One")
    ContactNumber.objects.create(contact=one, team=team, number="+16505550131")
    two = Contact.objects.create(team=team, name="Two")
    ContactNumber.objects.create(contact=two, team=team, number="+16505550132")
    data = b"Name,Phone\nBoth,6505550131; 6505550132\n"
    job = import_file(dana_client, "both.csv", data, capture=django_capture_on_commit_callbacks)
    assert job.refused_count == 1
    assert Contact.objects.get(pk=one.pk).name == "One"
    assert Contact.objects.get(pk=two.pk).name == "Two"


def test_a_mapping_without_numbers_is_refused(dana_client, team):
    upload(dana_client, "people.csv", CSV_WITH_PROBLEMS)
    job = ImportJob.objects.get()
    response = dana_client.post(f"/contacts/import/{job.pk}/", {"column-0": "name"})
    assert response.status_code == 400
    assert b"phone numbers" in response.content
    assert ImportJob.objects.get().status == ImportStatus.UPLOADED


def test_a_stopped_import_resumes_where_it_stopped_without_writing_twice(
    dana_client, team, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(importing, "CHUNK", 2)
    lines = ["Name,Phone"] + [f"P{i},650555{i:04d}" for i in range(1, 8)]
    upload(dana_client, "seven.csv", "\n".join(lines).encode())
    job = ImportJob.objects.get()
    importing.start(job, job.mapping)
    real_write = importing._Chunk.write
    calls = {"n": 0}

    def failing_write(self, by, file_name):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("database went away")
        return real_write(self, by, file_name)

    monkeypatch.setattr(importing._Chunk, "write", failing_write)
    assert importing.run(job.pk) == ImportStatus.FAILED
    job.refresh_from_db()
    assert job.position == 4 and "Resume" in job.failure
    assert Contact.objects.filter(team=team).count() == 4  # two whole chunks, nothing half
    importing.resume(job)
    assert importing.run(job.pk) == ImportStatus.DONE
    job.refresh_from_db()
    assert job.position == 7 and job.created_count == 7
    assert Contact.objects.filter(team=team).count() == 7


def test_senders_may_not_import_and_outsiders_get_404(
    dana_client, bob_client, charlie_client, team
):
    assert bob_client.get("/contacts/import/").status_code == 403
    assert upload(bob_client, "p.csv", CSV_WITH_PROBLEMS).status_code == 403
    upload(dana_client, "people.csv", CSV_WITH_PROBLEMS)
    job = ImportJob.objects.get()
    for path in ("", "progress/", "problems.csv"):
        assert charlie_client.get(f"/contacts/import/{job.pk}/{path}").status_code == 404
    assert (
        charlie_client.post(f"/contacts/import/{job.pk}/", {"column-1": "number"}).status_code
        == 404
    )
    assert ImportJob.objects.get().status == ImportStatus.UPLOADED


def test_an_import_whose_worker_was_lost_can_be_resumed_after_a_while(
    dana_client, team, queued, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    upload(dana_client, "people.csv", CSV_WITH_PROBLEMS)
    job = ImportJob.objects.get()
    importing.start(job, job.mapping)
    # The worker took it and was lost before writing anything.
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING)
    refused = dana_client.post(f"/contacts/import/{job.pk}/resume/", follow=True)
    assert "still running" in refused.content.decode()
    assert not queued
    ImportJob.objects.filter(pk=job.pk).update(
        progressed_at=timezone.now() - importing.STALLED_AFTER - timedelta(seconds=1)
    )
    assert b"has not moved for a while" in dana_client.get(f"/contacts/import/{job.pk}/").content
    with django_capture_on_commit_callbacks(execute=True):
        dana_client.post(f"/contacts/import/{job.pk}/resume/")
    assert queued == [job.pk]
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and job.created_count == 2


def test_an_export_imports_back_without_changing_anything(
    dana_client, team, queued, django_capture_on_commit_callbacks
):
    from tests.test_contacts import new_contact

    new_contact(
        team,
        '=HYPERLINK("http://x")',
        "+16505550101",
        "+442079460958",
        tags=["patients", "north"],
        company="-Minus Co",
        custom_fields={"Plan": "+gold"},
        time_zone="Europe/London",
    )
    exported = b"".join(dana_client.get("/contacts/export.csv").streaming_content)
    job = import_file(
        dana_client, "contacts.csv", exported, capture=django_capture_on_commit_callbacks
    )
    assert (job.created_count, job.updated_count, job.refused_count) == (0, 1, 0)
    (contact,) = Contact.objects.filter(team=team)
    assert contact.name == '=HYPERLINK("http://x")' and contact.company == "-Minus Co"
    assert contact.custom_fields == {"Plan": "+gold"}
    assert sorted(n.number for n in contact.numbers.all()) == ["+16505550101", "+442079460958"]
    assert sorted(t.name for t in contact.tags.all()) == ["north", "patients"]


def test_a_body_over_the_limit_is_refused_unread(dana_client, team, settings):
    settings.CONTACTS_IMPORT_MAX_BYTES = 1000
    big = b"Name,Phone\n" + b"Ann,6505550101\n" * 10_000
    response = upload(dana_client, "big.csv", big)
    assert response.status_code == 413
    assert b"the most an import takes" in response.content
    assert not ImportJob.objects.exists()


def test_an_upload_without_a_file_gets_a_message(dana_client, team):
    response = dana_client.post("/contacts/import/", {})
    assert response.status_code == 400
    assert b"Choose a CSV or Excel file" in response.content


def test_a_utf16_tab_separated_file_is_read(
    dana_client, team, queued, django_capture_on_commit_callbacks
):
    data = "Name\tPhone\nZoë Quinn\t6505550140\n".encode("utf-16")
    job = import_file(dana_client, "unicode.txt", data, capture=django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.DONE, job.failure
    assert Contact.objects.get(team=team).name == "Zoë Quinn"


def test_a_file_that_changes_encoding_far_down_stops_before_writing_anything(
    dana_client, team, queued, django_capture_on_commit_callbacks
):
    rows = [f"Person {i},650555{i % 10000:04d}" for i in range(5000)]
    data = ("Name,Phone\n" + "\n".join(rows) + "\n").encode() + "Renée,6505559999\n".encode(
        "cp1252"
    )
    job = import_file(dana_client, "mixed.csv", data, capture=django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.FAILED
    assert "after row 4" in job.failure and "not readable as utf-8" in job.failure
    assert "Nothing was imported." in job.failure
    assert job.position == 0
    assert not Contact.objects.filter(team=team).exists()
