"""Reading a team's audit log: the filters of its page, its pages and its CSV export.

CSV cells that a spreadsheet would run as a formula get a leading apostrophe
(`contacts.exporting.safe_cell` is the same rule; the audit room sits below contacts, so the
rule is repeated here rather than imported).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from messaging.models import AuditAction, AuditEntry

PAGE_SIZE = 50
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = [
    "When (UTC)",
    "Who",
    "API key",
    "Address",
    "Action",
    "Target type",
    "Target id",
    "Target",
    "Details",
]


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(
        required=False, choices=[("", "Any action"), *AuditAction.choices], label="Action"
    )
    person = forms.CharField(
        required=False, max_length=254, label="Person", help_text="Email, or part of it."
    )
    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError("The start date is after the end date.")
        return data


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def entries_for(team, filters: dict) -> QuerySet:
    """The team's entries, newest first, narrowed by a valid `AuditFilterForm`'s data."""
    entries = AuditEntry.objects.filter(team=team).order_by("-at", "-pk")
    if filters.get("action"):
        entries = entries.filter(action=filters["action"])
    if filters.get("person"):
        entries = entries.filter(actor_label__icontains=filters["person"].replace("\x00", ""))
    if filters.get("since"):
        entries = entries.filter(at__gte=_day_start(filters["since"]))
    if filters.get("until"):
        entries = entries.filter(at__lt=_day_start(filters["until"]) + timedelta(days=1))
    return entries


def safe_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Line:
    def write(self, value: str) -> str:
        return value


def csv_rows(entries: QuerySet) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield "\ufeff" + writer.writerow(COLUMNS)
    for entry in entries.iterator(chunk_size=2000):
        key = f"{entry.api_key_prefix} {entry.api_key_name}".strip()
        row = [
            entry.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            entry.actor_label,
            key,
            entry.ip or "",
            entry.action,
            entry.target_type,
            entry.target_id,
            entry.target_label,
            _details_text(entry.details),
        ]
        yield writer.writerow([safe_cell(v) for v in row])


def _details_text(details) -> str:
    if not details:
        return ""
    return "; ".join(f"{key}={value}" for key, value in details.items())
