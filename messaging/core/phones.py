"""Phone numbers as people read them, the same on every page, email and export."""

import functools
import re

import phonenumbers

_NANP = re.compile(r"\+1([2-9]\d{2})([2-9]\d{2})(\d{4})")
_E164_IN_TEXT = re.compile(r"\+[1-9]\d{6,14}\b")


def format_number(e164: str) -> str:
    """A number as people read it: "+1 650-555-0100".

    Pages list many numbers, so North American ones (nearly all of them here) are laid out
    directly, exactly as phonenumbers would; others go through phonenumbers, remembered."""
    north_american = _NANP.fullmatch(e164 or "")
    if north_american:
        return "+1 {}-{}-{}".format(*north_american.groups())
    return _format_international(e164)


@functools.lru_cache(maxsize=4096)
def _format_international(e164: str) -> str:
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def format_numbers_in(text: str) -> str:
    """`text` with every E.164 number in it written as people read it."""
    return _E164_IN_TEXT.sub(lambda match: format_number(match.group(0)), text or "")


def as_e164(raw: str, region: str = "US") -> str:
    """A number as RingCentral may write it ("+16505550100", "16505550100", "(650) 555-0100")
    in E.164, or "" when it is not a phone number (a short code stays its digits)."""
    text = str(raw or "").strip()
    if not text:
        return ""
    digits = "".join(ch for ch in text if ch.isdigit())
    if text.startswith("+") and 7 <= len(digits) <= 15:
        return f"+{digits}"
    if len(digits) <= 6:
        return digits  # a short code: no country, kept as it is
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return ""
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
