"""Numbers as people type them, in E.164, with the reason when they are not a phone number."""

from __future__ import annotations

import phonenumbers
from django.conf import settings


class BadNumber(ValueError):
    """`str(error)` says why, quoting what was typed."""


def to_e164(typed: str, region: str | None = None) -> str:
    """`typed` ("(650) 555-0100", "+44 20 7946 0958", "650.555.0100") in E.164; raises
    BadNumber with the reason otherwise. Without + and a country code, `region` (default
    PHONE_DEFAULT_REGION) is assumed."""
    region = region or settings.PHONE_DEFAULT_REGION
    text = " ".join(str(typed or "").split())
    shown = f"“{text[:40]}”"
    if not text:
        raise BadNumber("No number.")
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise BadNumber(f"{shown} is not a phone number.") from None
    if parsed.extension:
        raise BadNumber(f"{shown} has an extension; texts reach the number only.")
    if not phonenumbers.is_valid_number(parsed):
        hint = "" if text.startswith("+") else f" (read as a {region} number)"
        raise BadNumber(f"{shown} is not a valid phone number{hint}.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
