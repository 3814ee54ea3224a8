"""Importing contacts from a file: upload, columns, then the rows written in chunks.

1. `receive(membership, upload)`: the file is checked (size, kind, encoding, a header and at
   least one row), stored privately, and an `ImportJob` made with its headers.
2. `start(job, mapping)`: the columns chosen (one target per column, `TARGETS`); at least one
   column holds numbers. The job is queued; its caller hands it to a worker
   (`tasks.import_soon`).
3. `run(job_id)` in the worker: a first pass reads the whole file without writing (so a file
   unreadable at row 40,000 stops before anything is stored, and the progress bar knows the
   total), then the rows are written `CHUNK` at a time. Each chunk is one transaction with the
   job's `position`: contacts, numbers, tags, opt-outs (through the consent ledger) and the
   chunk's problems commit together or not at all.

The import is resumable, not all-or-nothing: a run that stops (a worker lost, the database
gone) leaves the rows of the chunks it finished, every one complete, and the job says where it
stopped; "Resume" on the import's page continues from there, skipping the rows already
written. Rows are never written twice, so resuming never duplicates anything. A worker lost in
the middle (killed, its machine gone) hands the task back to the broker, which gives it to
another worker (`acks_late`), and that run continues the same way; should the task be lost
too, the job shows as not moving and can be resumed by hand after STALLED_AFTER.

Rows are matched by number: a row whose number belongs to a contact updates that contact (the
file's filled cells replace the stored ones, tags are added), a row repeating an earlier row's
number is merged into it, and each is listed. A row is refused, and listed with its cells in
the problems file, when a number is invalid, no number is given, the email or time zone is
wrong, or its numbers belong to two different contacts.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from messaging.consent import ledger
from messaging.contacts import reading
from messaging.contacts.columns import Row, RowRefused, guess_mapping, mapping_problems, parse_row
from messaging.models import (
    ConsentSource,
    ConsentState,
    Contact,
    ContactNumber,
    ImportJob,
    ImportProblem,
    ImportStatus,
    Tag,
)

log = logging.getLogger(__name__)

CHUNK = 500
# An import queued or running that wrote nothing for this long lost its worker.
STALLED_AFTER = timedelta(minutes=10)


class ImportRefused(ValueError):
    """The file or the mapping cannot be used; `str(error)` says why."""


# --- 1. Receiving the file ------------------------------------------------------------------------


def receive(membership, upload) -> ImportJob:
    """Check and store an uploaded file; raises ImportRefused with the reason."""
    limit = settings.CONTACTS_IMPORT_MAX_BYTES
    if upload.size > limit:
        raise ImportRefused(
            f"The file is {upload.size / 1e6:.1f} MB; an import takes files of up to "
            f"{limit / 1e6:.0f} MB. Split it and import each part."
        )
    head = upload.read(reading.SAMPLE_BYTES)
    upload.seek(0)
    try:
        kind = reading.kind_of(head)
        encoding = reading.encoding_of(head) if kind == reading.CSV else ""
    except reading.FileRefused as refused:
        raise ImportRefused(str(refused)) from None
    name = f"imports/{membership.team_id}/{uuid.uuid4().hex}.{kind}"
    stored = default_storage.save(name, upload)
    try:
        headers, _ = reading.header_and_preview(stored, kind, encoding)
    except reading.FileRefused as refused:
        default_storage.delete(stored)
        raise ImportRefused(str(refused)) from None
    headers = [h or f"Column {i + 1}" for i, h in enumerate(headers)]
    return ImportJob.objects.create(
        team=membership.team,
        created_by=membership.user,
        file_name=(upload.name or "contacts")[-200:],
        stored_name=stored,
        file_kind=kind,
        encoding=encoding,
        file_size=upload.size,
        headers=headers,
        mapping=guess_mapping(headers),
    )


def preview(job: ImportJob, count: int = 10) -> list[list[str]]:
    """The first rows under the header, as many cells as headers."""
    try:
        _, rows = reading.header_and_preview(job.stored_name, job.file_kind, job.encoding, count)
    except reading.FileRefused:
        return []
    width = len(job.headers)
    return [(cells + [""] * width)[:width] for _, cells in rows]


# --- 2. Starting ----------------------------------------------------------------------------------


def start(job: ImportJob, mapping: list[str]) -> None:
    problems = mapping_problems(job.headers, mapping)
    if problems:
        raise ImportRefused(" ".join(problems))
    with transaction.atomic():
        updated = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.UPLOADED).update(
            mapping=mapping, status=ImportStatus.QUEUED, progressed_at=timezone.now()
        )
        if not updated:
            raise ImportRefused("This import has already started.")


def resumable(job: ImportJob) -> bool:
    return job.status == ImportStatus.FAILED or job.stalled(timezone.now(), STALLED_AFTER)


def resume(job: ImportJob) -> None:
    """Queue a stopped import again, or one whose worker was lost (nothing moved for
    STALLED_AFTER); its run continues from its position."""
    now = timezone.now()
    stopped = Q(status=ImportStatus.FAILED) | Q(
        status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING],
        progressed_at__lt=now - STALLED_AFTER,
    )
    updated = (
        ImportJob.objects.filter(pk=job.pk)
        .filter(stopped)
        .update(status=ImportStatus.QUEUED, failure="", progressed_at=now)
    )
    if not updated:
        raise ImportRefused("This import is still running; only a stopped one can be resumed.")


# --- 3. Running -----------------------------------------------------------------------------------


def _apply(contact: Contact, row: Row) -> None:
    for name, value in row.values.items():
        setattr(contact, name, value)
    if row.custom:
        contact.custom_fields = {**(contact.custom_fields or {}), **row.custom}


class _Chunk:
    """The rows of one chunk resolved against the contacts already stored, then written."""

    def __init__(self, job: ImportJob, tag_ids: dict[str, int]):
        self.job = job
        self.team_id = job.team_id
        self.tag_ids = tag_ids  # lower-case tag name -> id, for the whole run
        self.created: list[Contact] = []
        self.touched: dict[int, Contact] = {}
        self.new_numbers: list[tuple[object, str]] = []  # (contact or its new index, number)
        self.tagging: list[tuple[object, str]] = []
        self.opted_out: list[str] = []
        self.problems: list[ImportProblem] = []
        self.counts = {"created": 0, "updated": 0, "merged": 0, "refused": 0}

    def refuse(self, row_line: int, cells: list[str], message: str) -> None:
        self.counts["refused"] += 1
        self.problems.append(
            ImportProblem(
                job=self.job,
                line=row_line,
                kind=ImportProblem.Kind.REFUSED,
                message=message[:300],
                cells=cells,
            )
        )

    def resolve(self, rows: list[Row]) -> None:
        wanted = {n for row in rows for n in row.numbers}
        stored = dict(
            ContactNumber.objects.filter(team_id=self.team_id, number__in=wanted).values_list(
                "number", "contact_id"
            )
        )
        contacts = Contact.objects.in_bulk(set(stored.values()))
        owner: dict[str, tuple[str, int]] = {n: ("stored", pk) for n, pk in stored.items()}
        first_line: dict[tuple[str, int], int] = {}
        for row in rows:
            keys = {owner[n] for n in row.numbers if n in owner}
            if len(keys) > 1:
                names = sorted(
                    {
                        contacts[k[1]].display_name
                        if k[0] == "stored"
                        else f"row {first_line[k]} of this file"
                        for k in keys
                    }
                )
                self.refuse(
                    row.line,
                    row.cells,
                    "Its numbers belong to different contacts (" + ", ".join(names) + "). "
                    "Merge those contacts first, or give this row one of them only.",
                )
                continue
            if keys:
                key = keys.pop()
                if key[0] == "new":
                    contact = self.created[key[1]]
                    self._merged(row, f"Same number as row {first_line[key]}: merged into it.")
                else:
                    contact = contacts[key[1]]
                    self.touched[contact.pk] = contact
                    if self.job.started_at and contact.created_at >= self.job.started_at:
                        self._merged(row, "Same number as an earlier row: merged into it.")
                    else:
                        self.counts["updated"] += 1
            else:
                contact = Contact(team_id=self.team_id)
                self.created.append(contact)
                key = ("new", len(self.created) - 1)
                first_line[key] = row.line
                self.counts["created"] += 1
            _apply(contact, row)
            for number in row.numbers:
                if number not in owner:
                    owner[number] = key
                    self.new_numbers.append((contact, number))
            self.tagging += [(contact, name) for name in row.tags]
            if row.opted_out:
                self.opted_out += row.numbers

    def _merged(self, row: Row, message: str) -> None:
        self.counts["merged"] += 1
        self.problems.append(
            ImportProblem(
                job=self.job,
                line=row.line,
                kind=ImportProblem.Kind.MERGED,
                message=message,
                cells=row.cells,
            )
        )

    def _tag_id(self, name: str) -> int:
        lowered = name.lower()
        if lowered not in self.tag_ids:
            tag = Tag.objects.filter(team_id=self.team_id, name__iexact=name).first()
            if tag is None:
                tag = Tag.objects.create(team_id=self.team_id, name=name)
            self.tag_ids[lowered] = tag.pk
        return self.tag_ids[lowered]

    def write(self, by, file_name: str) -> None:
        now = timezone.now()
        for contact in self.created:
            contact.created_at = contact.updated_at = now
        Contact.objects.bulk_create(self.created)
        for contact in self.touched.values():
            contact.updated_at = now
        Contact.objects.bulk_update(
            list(self.touched.values()),
            ["name", "company", "email", "notes", "time_zone", "custom_fields", "updated_at"],
        )
        ContactNumber.objects.bulk_create(
            ContactNumber(contact_id=c.pk, team_id=self.team_id, number=n)
            for c, n in self.new_numbers
        )
        pairs = {(c.pk, self._tag_id(name)) for c, name in self.tagging}
        through = Contact.tags.through
        through.objects.bulk_create(
            [through(contact_id=c, tag_id=t) for c, t in pairs], ignore_conflicts=True
        )
        team = self.job.team
        note = f"Imported from {file_name}"[:200]
        for number in dict.fromkeys(self.opted_out):
            ledger.record(
                team, number, ConsentState.OPTED_OUT, ConsentSource.IMPORT, by=by, note=note
            )
        ImportProblem.objects.bulk_create(self.problems)


def _chunks(found):
    """Rows after the header, CHUNK at a time, as (first data index, [(line, cells)])."""
    batch, index = [], 0
    for line, cells in found:
        if line == 1:
            continue
        batch.append((line, cells))
        if len(batch) == CHUNK:
            yield index, batch
            index += len(batch)
            batch = []
    if batch:
        yield index, batch


def _count_rows(job: ImportJob) -> int:
    with reading.rows(job.stored_name, job.file_kind, job.encoding) as found:
        return sum(1 for line, _ in found if line > 1)


def _fail(job_id: int, message: str) -> None:
    ImportJob.objects.filter(pk=job_id).update(
        status=ImportStatus.FAILED, failure=message[:300], finished_at=timezone.now()
    )


def run(job_id: int) -> str:
    """Import a queued job (or continue a stopped one) to its end; returns its status."""
    claimed = ImportJob.objects.filter(
        pk=job_id, status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING]
    ).update(status=ImportStatus.RUNNING, failure="", progressed_at=timezone.now())
    if not claimed:
        return "skipped"
    job = ImportJob.objects.select_related("team", "created_by").get(pk=job_id)
    if job.started_at is None:
        job.started_at = timezone.now()
        ImportJob.objects.filter(pk=job_id).update(started_at=job.started_at)
    try:
        if job.total_rows is None:
            job.total_rows = _count_rows(job)
            ImportJob.objects.filter(pk=job_id).update(total_rows=job.total_rows)
        _write_all(job)
    except reading.FileRefused as refused:
        done = ImportJob.objects.filter(pk=job_id).values_list("position", flat=True).first()
        _fail(
            job_id,
            f"{refused} Rows up to {done:,} were imported, none after."
            if done
            else f"{refused} Nothing was imported.",
        )
        return ImportStatus.FAILED
    except Exception:
        log.exception("Import %s stopped", job_id)
        done = ImportJob.objects.filter(pk=job_id).values_list("position", flat=True).first()
        _fail(
            job_id,
            f"Stopped by a server error after {done or 0:,} rows; those are imported. "
            "Resume to import the rest.",
        )
        return ImportStatus.FAILED
    ImportJob.objects.filter(pk=job_id).update(status=ImportStatus.DONE, finished_at=timezone.now())
    return ImportStatus.DONE


def _write_all(job: ImportJob) -> None:
    headers, mapping = job.headers, job.mapping
    tag_ids: dict[str, int] = {}
    with reading.rows(job.stored_name, job.file_kind, job.encoding) as found:
        for index, batch in _chunks(found):
            with transaction.atomic():
                locked = ImportJob.objects.select_for_update().get(pk=job.pk)
                if locked.status != ImportStatus.RUNNING:
                    return  # another run finished it meanwhile
                if locked.position >= index + len(batch):
                    continue  # written by an earlier run
                chunk = _Chunk(locked, tag_ids)
                rows = []
                for line, cells in batch:
                    try:
                        rows.append(parse_row(line, cells, headers, mapping))
                    except RowRefused as refused:
                        chunk.refuse(line, cells, str(refused))
                chunk.resolve(rows)
                chunk.write(job.created_by, job.file_name)
                counts = chunk.counts
                ImportJob.objects.filter(pk=job.pk).update(
                    progressed_at=timezone.now(),
                    position=index + len(batch),
                    created_count=locked.created_count + counts["created"],
                    updated_count=locked.updated_count + counts["updated"],
                    merged_count=locked.merged_count + counts["merged"],
                    refused_count=locked.refused_count + counts["refused"],
                    opted_out_count=locked.opted_out_count + len(set(chunk.opted_out)),
                )


def problem_rows(job: ImportJob):
    """The problems file: the file's own columns, then the row, the result and the reason."""
    width = len(job.headers)
    header = list(job.headers) + ["Import row", "Import result", "Import problem"]
    rows = (
        (list(p.cells) + [""] * width)[:width] + [p.line, p.get_kind_display(), p.message]
        for p in job.problems.order_by("line", "pk").iterator(chunk_size=2000)
    )
    return header, rows
