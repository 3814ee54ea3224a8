"""Contacts: the team's address book.

A `Contact` is a person or a business with one or more `ContactNumber`s (E.164). A number
belongs to at most one contact of a team (the constraint `contact_number_once_per_team`), so a
number leads to one name on every page and an import merges rows by number. `Tag`s group
contacts ("patients"); their names are unique per team whatever their case. `custom_fields`
holds the team's own fields (key -> text) for campaigns to merge into texts.

An `ImportJob` is one uploaded file on its way into the address book: uploaded, mapped,
queued, running, then done or failed. The import is resumable: rows are written in chunks,
each chunk in one transaction with the job's `position`, so the position always matches what
was stored, and a run that stops continues from there. `ImportProblem`s are the rows the
import reported (refused or merged), with their cells, for the downloadable problems file.
"""

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from .teams import Team


class Tag(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="contact_tags")
    name = models.CharField(max_length=50)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), "team", name="tag_name_once_per_team"),
        ]

    def __str__(self):
        return self.name


class Contact(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=200, blank=True)
    company = models.CharField(max_length=200, blank=True)
    email = models.EmailField(max_length=254, blank=True)
    notes = models.TextField(blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    time_zone = models.CharField(max_length=64, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="contacts")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # The contacts page lists a team's contacts by name, a page at a time.
            models.Index(fields=["team", "name", "id"], name="contact_team_name"),
        ]

    def __str__(self):
        return self.name or self.company or f"Contact {self.pk}"

    @property
    def display_name(self) -> str:
        return self.name or self.company or "(no name)"


class ContactNumber(models.Model):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="numbers")
    # The contact's team again, so that the constraint below can hold across contacts.
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    number = models.CharField(max_length=20, help_text="E.164.")
    label = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["team", "number"], name="contact_number_once_per_team"),
        ]

    def __str__(self):
        return self.number


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", "Waiting for its columns"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Importing"
    DONE = "done", "Imported"
    FAILED = "failed", "Stopped"


class ImportJob(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="contact_imports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    file_name = models.CharField(max_length=200)
    stored_name = models.CharField(max_length=300)
    file_kind = models.CharField(max_length=10)  # "csv" or "xlsx"
    encoding = models.CharField(max_length=40, blank=True)
    file_size = models.PositiveBigIntegerField(default=0)
    headers = models.JSONField(default=list)
    mapping = models.JSONField(default=list, blank=True)
    status = models.CharField(
        max_length=10, choices=ImportStatus.choices, default=ImportStatus.UPLOADED
    )
    # Data rows (after the header row) read and settled so far.
    position = models.PositiveIntegerField(default=0)
    total_rows = models.PositiveIntegerField(null=True, blank=True)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    merged_count = models.PositiveIntegerField(default=0)
    refused_count = models.PositiveIntegerField(default=0)
    opted_out_count = models.PositiveIntegerField(default=0)
    failure = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When a run last started or wrote a chunk: a job queued or running that has not moved for
    # a while lost its worker, and may be resumed.
    progressed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=ImportStatus.values), name="import_status_is_known"
            ),
        ]

    def __str__(self):
        return f"Import {self.pk}: {self.file_name}"

    @property
    def finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED)

    def stalled(self, now, after) -> bool:
        """Queued or running, and nothing happened for `after` (a timedelta)."""
        last = self.progressed_at or self.created_at
        return self.status in (ImportStatus.QUEUED, ImportStatus.RUNNING) and now - last > after


class ImportProblem(models.Model):
    class Kind(models.TextChoices):
        REFUSED = "refused", "Not imported"
        MERGED = "merged", "Merged with another row or contact"

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="problems")
    line = models.PositiveIntegerField(help_text="The row's line in the file, the header is 1.")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    message = models.CharField(max_length=300)
    cells = models.JSONField(default=list)

    class Meta:
        ordering = ["line", "pk"]
        indexes = [models.Index(fields=["job", "line"], name="import_problem_line")]

    def __str__(self):
        return f"Row {self.line}: {self.message}"
