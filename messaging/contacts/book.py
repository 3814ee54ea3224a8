"""Every change to the address book, and the questions other rooms ask it.

Views, the import and the commands call these; each change runs in one transaction. A number
belongs to one contact of a team (the database says so too), so saving a contact with a number
another contact has is refused with that contact's name, never a server error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.db.models.functions import Lower
from django.utils import timezone

from messaging.core.phones import format_number
from messaging.models import Contact, ContactNumber, Tag

PAGE_SIZE = 50
MAX_SEARCH_LENGTH = 100
TAG_SEPARATORS = re.compile(r"[,;\n]+")


class ContactRefused(ValueError):
    """The change breaks a rule; `errors` maps form fields to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__(" ".join(m for ms in errors.values() for m in ms))


# --- Reading --------------------------------------------------------------------------------------


def contacts_for(team_id: int, numbers: Iterable[str]) -> dict[str, tuple[int, str]]:
    """The contact (id, name or company) of each of `numbers` the team knows, in one query."""
    wanted = sorted({n for n in numbers if n})
    if not wanted:
        return {}
    rows = ContactNumber.objects.filter(team_id=team_id, number__in=wanted).values_list(
        "number", "contact_id", "contact__name", "contact__company"
    )
    return {number: (pk, name or company) for number, pk, name, company in rows}


def names_for(team_id: int, numbers: Iterable[str]) -> dict[str, str]:
    """The contact name of each of `numbers` the team knows, in one query (pages that list
    numbers show the names beside them)."""
    return {n: name for n, (_, name) in contacts_for(team_id, numbers).items() if name}


def numbers_matching(team_id: int, term: str) -> list[str]:
    """Numbers of the team's contacts whose name or company contains `term` (the inbox's
    search by name)."""
    term = " ".join((term or "").split())[:MAX_SEARCH_LENGTH]
    if not term:
        return []
    return list(
        ContactNumber.objects.filter(team_id=team_id)
        .filter(Q(contact__name__icontains=term) | Q(contact__company__icontains=term))
        .values_list("number", flat=True)[:500]
    )


NUMBER_LIKE = re.compile(r"[\d\s().+\-/]+")


def _search_q(team_id: int, term: str) -> Q:
    """A term that looks like a number (digits and the signs numbers are written with) finds
    the numbers containing its digits; any other term finds a name, company or email
    containing it. Each is served by a trigram index on PostgreSQL (migration 0013)."""
    if NUMBER_LIKE.fullmatch(term):
        digits = "".join(ch for ch in term if ch.isdigit())
        numbers = ContactNumber.objects.filter(team_id=team_id, number__contains=digits)
        return Q(pk__in=numbers.values("contact_id"))
    return Q(name__icontains=term) | Q(company__icontains=term) | Q(email__icontains=term)


def contacts(team, *, search: str = "", tag: str = ""):
    """The team's contacts by name, with their numbers and tags, for a page."""
    queryset = Contact.objects.filter(team=team)
    search = " ".join((search or "").split())[:MAX_SEARCH_LENGTH]
    if search:
        queryset = queryset.filter(_search_q(team.pk, search))
    if tag:
        found = find_tag(team.pk, tag)
        if found is None:
            return Contact.objects.none()
        tagged = Contact.tags.through.objects.filter(contact_id=OuterRef("pk"), tag_id=found.pk)
        queryset = queryset.filter(Exists(tagged))
    return queryset.order_by("name", "pk").prefetch_related(
        Prefetch("numbers", queryset=ContactNumber.objects.order_by("pk")),
        Prefetch("tags", queryset=Tag.objects.order_by("name")),
    )


def page(queryset, after: tuple[str, int] | None) -> tuple[list[Contact], bool]:
    """One page of `contacts(...)`: the contacts after (name, id) `after`, and whether more
    follow. A keyset, not an offset: the thousandth page costs what the first does."""
    if after is not None:
        name, pk = after
        # The first condition bounds the index range; the second settles ties on the name.
        queryset = queryset.filter(Q(name__gte=name) & (Q(name__gt=name) | Q(pk__gt=pk)))
    rows = list(queryset[: PAGE_SIZE + 1])
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def team_tags(team) -> list[Tag]:
    return list(Tag.objects.filter(team=team).order_by(Lower("name")))


def find_tag(team_id: int, name: str) -> Tag | None:
    return Tag.objects.filter(team_id=team_id, name__iexact=(name or "").strip()).first()


def tagged_numbers(team_id: int, tag_name: str) -> list[tuple[str, str]]:
    """(number, contact name) of every number of every contact tagged `tag_name`, in the
    order of the contacts' names."""
    return list(
        ContactNumber.objects.filter(
            team_id=team_id,
            contact__tags__team_id=team_id,
            contact__tags__name__iexact=tag_name.strip(),
        )
        .order_by("contact__name", "contact_id", "pk")
        .values_list("number", "contact__name")
    )


@dataclass
class Match:
    """One suggestion for the compose page: a contact's number, or a tag."""

    kind: str  # "contact" or "tag"
    value: str  # what goes into the recipients field
    label: str

    def as_json(self) -> dict:
        return {"kind": self.kind, "value": self.value, "label": self.label}


def suggestions(team_id: int, term: str, limit: int = 10) -> list[Match]:
    """Tags and contacts' numbers matching `term`, for the compose page's recipient field."""
    term = " ".join((term or "").split())[:MAX_SEARCH_LENGTH]
    if not term:
        return []
    matches = []
    for tag in Tag.objects.filter(team_id=team_id, name__icontains=term).order_by("name")[:3]:
        count = ContactNumber.objects.filter(team_id=team_id, contact__tags=tag).count()
        plural = "" if count == 1 else "s"
        matches.append(
            Match(
                "tag", f"tag:{tag.name}", f"Everyone tagged “{tag.name}” ({count} number{plural})"
            )
        )
    found = (
        Contact.objects.filter(team_id=team_id)
        .filter(_search_q(team_id, term))
        .order_by("name", "pk")
        .prefetch_related("numbers")[:limit]
    )
    for contact in found:
        for number in contact.numbers.all():
            label = f"{contact.display_name} · {format_number(number.number)}"
            if number.label:
                label += f" ({number.label})"
            matches.append(Match("contact", number.number, label))
    return matches[:limit]


# --- Changing -------------------------------------------------------------------------------------


def split_tags(text: str) -> list[str]:
    """Tag names typed in one field, separated by commas or semicolons, each once."""
    seen, names = set(), []
    for part in TAG_SEPARATORS.split(text or ""):
        name = " ".join(part.split())[:50]
        if name and name.lower() not in seen:
            seen.add(name.lower())
            names.append(name)
    return names


def tags_named(team, names: Sequence[str]) -> list[Tag]:
    """The team's tags of these names (any case), created when missing."""
    tags = []
    for name in names:
        tag = find_tag(team.pk, name)
        if tag is None:
            try:
                with transaction.atomic():
                    tag = Tag.objects.create(team=team, name=name)
            except IntegrityError:
                tag = find_tag(team.pk, name)
        tags.append(tag)
    return tags


def _owners(team, numbers: Sequence[str], exclude_pk) -> dict[str, Contact]:
    taken = ContactNumber.objects.filter(team=team, number__in=numbers).select_related("contact")
    if exclude_pk:
        taken = taken.exclude(contact_id=exclude_pk)
    return {n.number: n.contact for n in taken}


def save(
    team,
    contact: Contact | None,
    *,
    fields: dict,
    numbers: Sequence[tuple[str, str]],
    tag_names: Sequence[str],
) -> Contact:
    """Create (`contact` None) or change a contact with its numbers [(E.164, label)] and tags.

    Raises ContactRefused when a number belongs to another contact of the team."""
    wanted = [n for n, _ in numbers]
    with transaction.atomic():
        owners = _owners(team, wanted, contact.pk if contact else None)
        if owners:
            raise ContactRefused(
                {
                    "numbers": [
                        f"{format_number(n)} already belongs to {c.display_name}. Merge the two "
                        "contacts instead, or remove the number there first."
                        for n, c in owners.items()
                    ]
                }
            )
        if contact is None:
            contact = Contact(team=team)
        for name, value in fields.items():
            setattr(contact, name, value)
        contact.updated_at = timezone.now()
        contact.save()
        contact.numbers.exclude(number__in=wanted).delete()
        kept = {n.number: n for n in contact.numbers.all()}
        for number, label in numbers:
            if number in kept:
                if kept[number].label != label:
                    kept[number].label = label
                    kept[number].save(update_fields=["label"])
            else:
                try:
                    with transaction.atomic():
                        ContactNumber.objects.create(
                            contact=contact, team=team, number=number, label=label
                        )
                except IntegrityError:
                    # Taken by another contact since the check above (a concurrent save).
                    raise ContactRefused(
                        {"numbers": [f"{format_number(number)} was just given to another contact."]}
                    ) from None
        contact.tags.set(tags_named(team, tag_names))
    return contact


def delete(contact: Contact) -> None:
    contact.delete()


def merge(target: Contact, other: Contact) -> list[str]:
    """Move `other`'s numbers, tags and custom fields into `target` and delete `other`.

    Where both have a value, `target` keeps its own; every value left behind is returned as a
    sentence (shown after the merge) and `other`'s notes are appended to `target`'s."""
    if target.team_id != other.team_id or target.pk == other.pk:
        raise ContactRefused({"other": ["Choose another contact of this team."]})
    kept: list[str] = []
    with transaction.atomic():
        target = Contact.objects.select_for_update().get(pk=target.pk)
        other = Contact.objects.select_for_update().get(pk=other.pk)
        for name, label in (
            ("name", "name"),
            ("company", "company"),
            ("email", "email"),
            ("time_zone", "time zone"),
        ):
            mine, theirs = getattr(target, name), getattr(other, name)
            if not mine and theirs:
                setattr(target, name, theirs)
            elif theirs and theirs != mine:
                kept.append(f"Kept the {label} “{mine}”; “{theirs}” was dropped.")
        for key, value in (other.custom_fields or {}).items():
            if key not in target.custom_fields or target.custom_fields[key] in ("", None):
                target.custom_fields[key] = value
            elif target.custom_fields[key] != value:
                kept.append(f"Kept {key} “{target.custom_fields[key]}”; “{value}” was dropped.")
        if other.notes:
            target.notes = (
                f"{target.notes}\n\n{other.notes}".strip() if target.notes else other.notes
            )
        target.updated_at = timezone.now()
        target.save()
        ContactNumber.objects.filter(contact=other).update(contact=target)
        target.tags.add(*other.tags.all())
        other.delete()
    return kept
