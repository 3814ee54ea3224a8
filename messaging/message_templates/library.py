"""Which templates a member sees and may change, the fields a team's templates may use, and
what a template becomes for one recipient.

Visibility: a team template (no owner) is read by every member and changed by team admins; a
personal template is read and changed only by its owner (a sender or above). Anyone else is
told the template does not exist (404), as for every object of another team.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q
from django.http import Http404

from messaging.message_templates.merge import (
    CONTACT_FIELDS,
    contact_values,
    field_name,
    merge,
    unknown_fields,
)
from messaging.message_templates.segments import measure
from messaging.models import Contact, ContactNumber, MessageTemplate, MissingPolicy, Role


def visible_to(membership):
    """The templates `membership` may read: the team's, and their own personal ones."""
    return MessageTemplate.objects.filter(team=membership.team).filter(
        Q(owner__isnull=True) | Q(owner=membership.user)
    )


def may_edit(membership, template: MessageTemplate) -> bool:
    if template.owner_id is None:
        return membership.can(Role.ADMIN)
    return template.owner_id == membership.user_id and membership.can(Role.SENDER)


def may_create(membership, *, personal: bool) -> bool:
    return membership.can(Role.SENDER) if personal else membership.can(Role.ADMIN)


def readable(membership, pk) -> MessageTemplate:
    """The template `pk` if `membership` may read it; 404 otherwise (whatever the reason)."""
    if not str(pk).isascii() or not str(pk).isdigit():
        raise Http404
    found = visible_to(membership).filter(pk=int(pk)).first()
    if found is None:
        raise Http404
    return found


# Fields ---------------------------------------------------------------------------------------


def custom_field_names(team) -> list[str]:
    """The field names of the custom fields the team's contacts have, sorted."""
    names: set[str] = set()
    rows = (
        Contact.objects.filter(team=team)
        .exclude(custom_fields={})
        .values_list("custom_fields", flat=True)
    )
    for fields in rows.iterator(chunk_size=500):
        for label in fields or {}:
            name = field_name(str(label))
            if name:
                names.add(name)
    return sorted(names - set(CONTACT_FIELDS))


def known_fields(team) -> list[str]:
    return [*CONTACT_FIELDS, *custom_field_names(team)]


def unknown_field_message(team, text: str) -> str:
    """ "" when every field of `text` is known to the team; else a sentence naming the others
    (a malformed field raises merge.TemplateError)."""
    unknown = unknown_fields(text, known_fields(team))
    if not unknown:
        return ""
    names = ", ".join(f"{{{name}}}" for name in unknown)
    return (
        f"Unknown merge field{'s' if len(unknown) > 1 else ''}: {names}. Use a field every "
        "contact has ({first_name}, {company}, …) or a custom field of the team's contacts."
    )


# Merging for recipients ----------------------------------------------------------------------


@dataclass(frozen=True)
class Merged:
    number: str
    text: str
    skipped_because: str = ""  # the recipient gets no message, and this is why


def contacts_by_number(team, numbers: Iterable[str]) -> dict[str, Contact]:
    rows = ContactNumber.objects.filter(team=team, number__in=list(numbers)).select_related(
        "contact"
    )
    return {row.number: row.contact for row in rows}


def merge_for(
    team, text: str, numbers: Iterable[str], *, policy: str, fallback: str = ""
) -> list[Merged]:
    """`text` merged for each of `numbers` (one query for the contacts), applying the missing
    field `policy`."""
    numbers = list(numbers)
    contacts = contacts_by_number(team, numbers)
    result = []
    for number in numbers:
        contact = contacts.get(number)
        merged = merge(
            text,
            contact_values(contact, number),
            fallback if policy == MissingPolicy.FALLBACK else None,
        )
        reason = ""
        if merged.missing and policy == MissingPolicy.SKIP:
            names = ", ".join(f"{{{name}}}" for name in merged.missing)
            whom = "the contact has" if contact is not None else "the number is not a contact, so"
            reason = f"{whom} no value for {names}"
        result.append(Merged(number, merged.text, reason))
    return result


def preview(team, text: str, contact: Contact | None, *, fallback: str = "") -> dict:
    """What `text` becomes for `contact` (or with no contact), and how long that is."""
    number = ""
    if contact is not None:
        first = contact.numbers.first()
        number = first.number if first else ""
    merged = merge(text, contact_values(contact, number) if contact else {}, fallback or None)
    length = measure(merged.text)
    return {
        "text": merged.text,
        "missing": list(merged.missing),
        "units": length.units,
        "encoding": length.encoding,
        "segments": length.segments,
        "per_segment": length.per_segment,
    }
