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
