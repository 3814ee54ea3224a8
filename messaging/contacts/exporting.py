"""The team's contacts as CSV, one row per contact, in the columns the import reads back.

Cells that a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage
return) get a leading apostrophe, as OWASP recommends for CSV injection; the import strips it
again. Rows are streamed, a few thousand contacts read at a time.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.db.models import Prefetch

from messaging.models import Contact, ContactNumber, Tag

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = ["Name", "Company", "Email", "Numbers", "Tags", "Time zone", "Notes"]


def safe_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Line:
    """A file-like object whose write returns the line, for csv.writer in a generator."""

    def write(self, value: str) -> str:
        return value


def custom_keys(team) -> list[str]:
    keys: dict[str, None] = {}
    for fields in (
        Contact.objects.filter(team=team)
        .exclude(custom_fields={})
        .values_list("custom_fields", flat=True)
        .iterator(chunk_size=2000)
    ):
        for key in fields or {}:
            keys.setdefault(key, None)
    return list(keys)


def export_rows(team) -> Iterator[str]:
    writer = csv.writer(_Line())
    keys = custom_keys(team)
    yield "\ufeff" + writer.writerow(COLUMNS + [safe_cell(k) for k in keys])
    contacts = (
        Contact.objects.filter(team=team)
        .order_by("name", "pk")
        .prefetch_related(
            Prefetch("numbers", queryset=ContactNumber.objects.order_by("pk")),
            Prefetch("tags", queryset=Tag.objects.order_by("name")),
        )
    )
    for contact in contacts.iterator(chunk_size=2000):
        custom = contact.custom_fields or {}
        row = [
            contact.name,
            contact.company,
            contact.email,
            "; ".join(n.number for n in contact.numbers.all()),
            ", ".join(t.name for t in contact.tags.all()),
            contact.time_zone,
            contact.notes,
        ] + [custom.get(k, "") for k in keys]
        yield writer.writerow([safe_cell(v) for v in row])


def csv_lines(header: list[str], rows) -> Iterator[str]:
    """Any table as CSV lines with safe cells (the import's problems file)."""
    writer = csv.writer(_Line())
    yield "\ufeff" + writer.writerow([safe_cell(v) for v in header])
    for row in rows:
        yield writer.writerow([safe_cell(v) for v in row])
