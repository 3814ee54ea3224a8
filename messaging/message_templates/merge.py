"""Merge fields: ``{first_name}`` in a template replaced by what is known of one recipient.

A field is a name in braces: letters, digits and underscores, case-insensitive
(``{First_Name}`` is ``{first_name}``). ``{{`` and ``}}`` stand for literal braces. The values
come from a contact (``contact_values``) or from a row of an uploaded list, whose column names
are made field names by ``field_name``. A field with no value (missing or blank) is *missing*:
what happens then is the template's choice, applied by the caller from ``MergeResult.missing``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
VALID_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")

# The fields every contact has, with what each means (shown beside the template editor).
CONTACT_FIELDS = {
    "first_name": "The first word of the contact's name",
    "last_name": "The rest of the contact's name",
    "name": "The contact's whole name",
    "company": "The contact's company",
    "email": "The contact's email address",
    "phone": "The number the message goes to",
}


class TemplateError(ValueError):
    """The template text itself is wrong (a field name that cannot be, a lone brace)."""


@dataclass(frozen=True)
class MergeResult:
    text: str
    missing: tuple[str, ...]  # fields that had no value, in the order they appear


def field_name(label: str) -> str:
    """A column heading or custom field label as a field name: ``"First Name"`` → ``first_name``."""
    ascii_label = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    name = re.sub(r"[^0-9a-z]+", "_", ascii_label.strip().lower()).strip("_")
    if name and name[0].isdigit():
        name = "f_" + name
    return name


def fields_in(text: str) -> list[str]:
    """The fields ``text`` uses, each once, in order; ``TemplateError`` if one is malformed."""
    found: list[str] = []
    for match in FIELD.finditer(text):
        raw = match.group(1)
        if raw is None:
            continue
        name = raw.strip().lower()
        if not VALID_NAME.match(name):
            raise TemplateError(
                f"“{{{raw}}}” is not a merge field: a field is a name in braces such as "
                "{first_name} (letters, digits and underscores). Write {{ or }} for a brace itself."
            )
        if name not in found:
            found.append(name)
    leftover = FIELD.sub("", text)
    if "{" in leftover or "}" in leftover:
        raise TemplateError(
            "The text has a brace that opens no merge field or closes none. "
            "Write {{ or }} for a brace itself."
        )
    return found


def unknown_fields(text: str, known: Iterable[str]) -> list[str]:
    """Fields of ``text`` that are not among ``known`` (field names)."""
    known_names = set(known)
    return [name for name in fields_in(text) if name not in known_names]


def merge(text: str, values: Mapping[str, object], fallback: str | None = None) -> MergeResult:
    """``text`` with every field replaced by its value.

    A missing field is replaced by ``fallback`` when one is given, and by nothing otherwise;
    either way it is listed in ``missing`` so the caller can apply the template's policy.
    """
    missing: list[str] = []

    def replace(match: re.Match) -> str:
        whole = match.group(0)
        if whole == "{{":
            return "{"
        if whole == "}}":
            return "}"
        name = match.group(1).strip().lower()
        value = values.get(name)
        value = "" if value is None else str(value).strip()
        if value:
            return value
        if name not in missing:
            missing.append(name)
        return fallback or ""

    fields_in(text)  # refuse a malformed template before merging anything
    return MergeResult(FIELD.sub(replace, text), tuple(missing))


def contact_values(contact, number: str = "") -> dict[str, str]:
    """The merge values of one contact (and the number the message goes to)."""
    name = (contact.name or "").strip() if contact is not None else ""
    first, _, last = name.partition(" ")
    values = {
        "first_name": first,
        "last_name": last.strip(),
        "name": name,
        "company": getattr(contact, "company", "") or "",
        "email": getattr(contact, "email", "") or "",
        "phone": number,
    }
    for label, value in (getattr(contact, "custom_fields", None) or {}).items():
        key = field_name(str(label))
        if key and key not in values:
            values[key] = "" if value is None else str(value)
    return values
