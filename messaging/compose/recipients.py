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

from messaging.core.phones import format_number
from messaging.models import SenderNumber

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
