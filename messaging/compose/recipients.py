"""Recipients as typed: split, normalised to E.164 and checked one by one.

Numbers are separated by commas, semicolons or new lines and read in
``settings.PHONE_DEFAULT_REGION`` unless they start with + and a country code; duplicates are
merged; short codes, extensions and invalid numbers are reported one by one, quoting what was
typed. ``destination_problems`` says which recipients a sender number cannot reach.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import phonenumbers
from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from messaging.contacts.book import tagged_numbers
from messaging.core.phones import format_number
from messaging.models import Recipient, RecipientStatus, SenderNumber
from messaging.outbox import delivery_errors

# Recipients of one submission sent separately. Not a RingCentral limit: at its pace of about
# 40 sends a minute, this many messages already take minutes; bulk campaigns belong elsewhere.
MAX_SEPARATE_RECIPIENTS = 100
# Entries in the "to" field read at all; anything longer is refused unread.
MAX_ENTRIES = 10 * MAX_SEPARATE_RECIPIENTS
# Countries RingCentral's US/Canada SMS service treats as domestic.
DOMESTIC_REGIONS = frozenset({"US", "CA"})

_SEPARATORS = re.compile(r"[,;\n\r]+")


@dataclass
class Recipients:
    """Parsed recipients: E.164 numbers in the order typed, and one problem per bad entry."""

    numbers: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    duplicates: int = 0
    # E.164 -> what the user typed, for messages about a number.
    typed: dict[str, str] = field(default_factory=dict)


def _quote(typed: str) -> str:
    shown = " ".join(typed.split())
    return f"“{shown[:40]}…”" if len(shown) > 40 else f"“{shown}”"


def parse_recipients(raw: str | Iterable[str], region: str | None = None) -> Recipients:
    """Split, normalise and check recipients (see the module docstring)."""
    region = region or settings.PHONE_DEFAULT_REGION
    entries = _SEPARATORS.split(raw) if isinstance(raw, str) else [str(r) for r in raw]
    result = Recipients()
    if len(entries) > MAX_ENTRIES:
        result.problems.append(
            f"More than {MAX_ENTRIES:,} entries; one submission takes at most "
            f"{MAX_SEPARATE_RECIPIENTS} recipients. Split the list."
        )
        return result
    for entry in entries:
        typed = entry.strip()
        if not typed:
            continue
        shown = _quote(typed)
        digits = re.sub(r"\D", "", typed)
        try:
            parsed = phonenumbers.parse(typed, region)
        except phonenumbers.NumberParseException:
            if len(digits) > 15:
                result.problems.append(
                    f"{shown} is not one phone number. Separate numbers with commas or new lines."
                )
            else:
                result.problems.append(f"{shown} is not a phone number.")
            continue
        if not typed.startswith("+") and len(digits) <= 6:
            if phonenumbers.is_possible_short_number(parsed):
                result.problems.append(
                    f"{shown} is a short code or service number; messages from here go to full "
                    "phone numbers only."
                )
            else:
                result.problems.append(f"{shown} is too short to be a phone number.")
            continue
        if parsed.extension:
            result.problems.append(
                f"{shown} includes an extension ({parsed.extension}); text messages reach the "
                "phone number only. Remove the extension."
            )
            continue
        if not phonenumbers.is_valid_number(parsed):
            hint = (
                ""
                if typed.startswith("+")
                else f" For a number outside {region}, start with + and the country code."
            )
            result.problems.append(f"{shown} is not a valid phone number.{hint}")
            continue
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        if e164 in result.typed:
            result.duplicates += 1
            continue
        result.typed[e164] = typed
        result.numbers.append(e164)
    return result


_TAG = re.compile(r"^\s*tag:\s*(?P<name>.+?)\s*$", re.IGNORECASE)


@dataclass
class TagExpansion:
    """A `tag:NAME` entry of the recipients field and the contacts' numbers it stands for."""

    tag: str
    numbers: list[tuple[str, str]]  # (E.164, contact name)

    def sentence(self) -> str:
        shown = ", ".join(
            f"{name} ({format_number(number)})" if name else format_number(number)
            for number, name in self.numbers
        )
        return f"Everyone tagged “{self.tag}”: {shown}."


@dataclass
class Expanded:
    raw: str
    tags: list[TagExpansion] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def expand_tags(team_id: int, raw: str) -> Expanded:
    """`raw` with every `tag:NAME` entry replaced by the numbers of the team's contacts tagged
    NAME (any case); a tag nobody has is a problem. Plain entries are left as typed."""
    if "tag:" not in (raw or "").lower():
        return Expanded(raw or "")
    kept: list[str] = []
    result = Expanded("")
    for entry in _SEPARATORS.split(raw):
        tagged = _TAG.match(entry)
        if not tagged:
            kept.append(entry)
            continue
        name = tagged["name"][:50]
        if "\x00" in name:
            result.problems.append("A tag name cannot contain a NUL character.")
            continue
        found = tagged_numbers(team_id, name)
        if not found:
            result.problems.append(f"No contact is tagged “{name}”.")
            continue
        result.tags.append(TagExpansion(name, found))
        kept += [number for number, _ in found]
    result.raw = "\n".join(kept)
    return result


def region_of(e164: str) -> str | None:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None


def destination_problems(
    numbers: Sequence[str], sender: SenderNumber, *, with_files: bool
) -> list[str]:
    """Recipients this sender cannot reach with this message, named one by one."""
    problems = []
    for number in numbers:
        region = region_of(number)
        if region == "US" or (region in DOMESTIC_REGIONS and not sender.is_toll_free):
            continue
        shown = format_number(number)
        if region in DOMESTIC_REGIONS:
            problems.append(
                f"{shown} is outside the US, and toll-free numbers text only within the US. "
                "Choose a local number to send from."
            )
        elif with_files:
            problems.append(
                f"{shown} is outside the US and Canada: RingCentral sends no MMS (messages "
                "with files) abroad. Remove the files or this number."
            )
        elif "InternationalSmsSender" not in (sender.features or []):
            problems.append(
                f"{shown} is outside the US and Canada, and "
                f"{format_number(sender.phone_number)} is not enabled for international texts."
            )
    return problems


# Delivery reports that say a number should not be texted again as it is: the person opted out
# of the sending number, or the number cannot receive texts (a landline, an invalid number).
_WARNING_KINDS = (delivery_errors.Kind.OPTED_OUT, delivery_errors.Kind.INVALID_NUMBER)


def known_problems(team, numbers: Sequence[str]) -> list[str]:
    """What earlier delivery reports in ``team`` say against texting ``numbers`` again, one
    sentence per number, before anything is queued. A report is outdated once a later message
    to the same number was delivered."""
    if not numbers:
        return []
    earlier = Recipient.objects.filter(message__team=team, phone_number__in=numbers)
    delivered_last = dict(
        earlier.filter(status=RecipientStatus.DELIVERED)
        .values("phone_number")
        .annotate(at=Max("updated_at"))
        .values_list("phone_number", "at")
    )
    failures = (
        earlier.filter(
            status__in=[RecipientStatus.DELIVERY_FAILED, RecipientStatus.SENDING_FAILED],
            error_code__in=delivery_errors.codes_of(*_WARNING_KINDS),
        )
        .order_by("-updated_at")
        .values_list("phone_number", "error_code", "updated_at", "message__from_number")
    )
    problems: dict[str, str] = {}
    for number, code, at, sender in failures:
        if number in problems or (number in delivered_last and delivered_last[number] > at):
            continue
        shown = format_number(number)
        at = timezone.localtime(at)
        when = f"{at:%b} {at.day}"
        if delivery_errors.explain(code).kind == delivery_errors.Kind.OPTED_OUT:
            problems[number] = (
                f"{shown} opted out of texts from {format_number(sender)} (reported {when}, "
                f"{code}). A message to it from that number will not be delivered."
            )
        else:
            problems[number] = (
                f"{shown} cannot receive texts: it is a landline or not a valid mobile number "
                f"(reported {when}, {code})."
            )
    return [problems[n] for n in numbers if n in problems]
