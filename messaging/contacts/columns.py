"""The columns of a contacts file: what each may hold, the guess from its header, and one row
read into a contact's values (or refused with the reason, quoting the cell)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from messaging.contacts import book
from messaging.contacts.exporting import FORMULA_STARTS
from messaging.contacts.forms import time_zone_problem
from messaging.contacts.numbers import BadNumber, to_e164

IGNORE = ""
CUSTOM = "custom"
# What a column may hold. Only "number" and "custom" may be chosen for several columns.
TARGETS = [
    (IGNORE, "Do not import"),
    ("name", "Name"),
    ("first_name", "First name"),
    ("last_name", "Last name"),
    ("company", "Company"),
    ("number", "Phone number"),
    ("email", "Email"),
    ("tags", "Tags"),
    ("time_zone", "Time zone"),
    ("notes", "Notes"),
    ("opted_out", "Opted out (yes / no)"),
    (CUSTOM, "Custom field (named after the column)"),
]
TARGET_KEYS = {key for key, _ in TARGETS}
REPEATABLE = {IGNORE, "number", CUSTOM}
OPTED_OUT_WORDS = {
    "yes", "y", "true", "1", "x", "opted out", "opted_out", "opted-out", "opt out", "opt-out",
    "optout", "stop", "stopped", "unsubscribed",
}  # fmt: skip
NUMBER_SEPARATORS = re.compile(r"[;,|]")
# Columns of our own problems file, left out when it comes back fixed.
OWN_COLUMNS = ("import row", "import result", "import problem")

_GUESSES = [
    ("first_name", ("first name", "firstname", "given name", "first")),
    ("last_name", ("last name", "lastname", "surname", "family name", "last")),
    ("name", ("name", "full name", "contact", "contact name", "display name")),
    ("company", ("company", "organization", "organisation", "business", "employer")),
    (
        "number",
        (
            "phone",
            "number",
            "numbers",
            "phone number",
            "mobile",
            "cell",
            "telephone",
            "tel",
            "mobile phone",
            "cell phone",
            "phone numbers",
            "sms",
        ),
    ),  # fmt: skip
    ("email", ("email", "e-mail", "email address", "mail")),
    ("tags", ("tags", "tag", "groups", "group", "labels", "lists")),
    ("time_zone", ("time zone", "timezone", "tz")),
    ("notes", ("notes", "note", "comments", "comment")),
    ("opted_out", ("opted out", "opt out", "opt-out", "optout", "unsubscribed", "stop")),
]


def guess_mapping(headers: list[str]) -> list[str]:
    taken: set[str] = set()
    mapping = []
    for header in headers:
        words = " ".join(header.lower().replace("_", " ").split())
        guess = CUSTOM if words else IGNORE
        if words in OWN_COLUMNS:
            guess = IGNORE
        for target, names in _GUESSES:
            if words in names and (target not in taken or target in REPEATABLE):
                guess = target
                break
        taken.add(guess)
        mapping.append(guess)
    return mapping


def mapping_problems(headers: list[str], mapping: list[str]) -> list[str]:
    if len(mapping) != len(headers) or any(m not in TARGET_KEYS for m in mapping):
        return ["Choose what each column holds."]
    problems = []
    if "number" not in mapping:
        problems.append("Choose the column (or columns) with the phone numbers.")
    for target, label in TARGETS:
        if target not in REPEATABLE and mapping.count(target) > 1:
            problems.append(f"Only one column can be “{label}”.")
    return problems


@dataclass
class Row:
    line: int
    cells: list[str]
    numbers: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    custom: dict[str, str] = field(default_factory=dict)
    opted_out: bool = False


class RowRefused(ValueError):
    pass


def _unescaped(cell: str) -> str:
    """A cell as our export wrote it, with the apostrophe that kept it from being a formula
    taken off again."""
    if cell.startswith("'") and cell[1:2].startswith(FORMULA_STARTS):
        return cell[1:]
    return cell


def parse_row(line: int, cells: list[str], headers: list[str], mapping: list[str]) -> Row:
    """One row of the file as a contact's values; raises RowRefused with the reason."""
    row = Row(line, cells)
    first = last = ""
    for index, target in enumerate(mapping):
        cell = _unescaped(cells[index]) if index < len(cells) else ""
        if "\x00" in cell:
            raise RowRefused(f"The “{headers[index]}” cell holds a NUL character.")
        if not cell or target == IGNORE:
            continue
        if target == "number":
            for typed in NUMBER_SEPARATORS.split(cell):
                if typed.strip():
                    try:
                        number = to_e164(typed)
                    except BadNumber as bad:
                        raise RowRefused(f"Invalid number: {bad}") from None
                    if number not in row.numbers:
                        row.numbers.append(number)
        elif target == "first_name":
            first = cell
        elif target == "last_name":
            last = cell
        elif target == "tags":
            row.tags = book.split_tags(cell)
        elif target == CUSTOM:
            row.custom[headers[index][:50]] = cell[:500]
        elif target == "opted_out":
            row.opted_out = cell.strip().lower() in OPTED_OUT_WORDS
        else:
            row.values[target] = cell
    if not row.numbers:
        raise RowRefused("Missing phone number: every row needs one.")
    if len(row.numbers) > 20:
        raise RowRefused("More than 20 numbers in one row.")
    if first or last:
        row.values.setdefault("name", " ".join(p for p in (first, last) if p))
    row.values = {k: (v[:200] if k in ("name", "company") else v) for k, v in row.values.items()}
    if row.values.get("email"):
        try:
            validate_email(row.values["email"])
        except ValidationError:
            raise RowRefused(f"Invalid email “{row.values['email'][:60]}”.") from None
    problem = time_zone_problem(row.values.get("time_zone", ""))
    if problem:
        raise RowRefused(problem)
    return row
