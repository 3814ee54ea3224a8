"""Why a message accepted by RingCentral did not reach a recipient, in words people act on.

RingCentral reports asynchronous failures as a `deliveryErrorCode` on the message record. Codes
start with where the failure happened: `SMS-RC-` (RingCentral itself), `SMS-UP-` (the upstream
gateway between RingCentral and the carriers) and `SMS-CAR-` (the recipient's carrier).

`ERRORS` below is the one table of known codes. A code it does not list is explained by its
prefix; a failure without any code by the status RingCentral reported. `explain` never fails:
every input gets a reason and a fix.
"""

from __future__ import annotations

from dataclasses import dataclass


class Kind:
    """What sort of problem it is: the outbox filters and the admin group failures by it."""

    OPTED_OUT = "opted_out"
    SPAM_FILTERED = "spam_filtered"
    SENDER_FLAGGED = "sender_flagged"
    NOT_REGISTERED = "not_registered"
    TOLL_FREE_UNVERIFIED = "toll_free_unverified"
    INVALID_NUMBER = "invalid_number"
    ACCOUNT_LIMIT = "account_limit"
    CARRIER_LIMIT = "carrier_limit"
    TOO_LONG = "too_long"
    MEDIA_TOO_LARGE = "media_too_large"
    SHORTENED_LINK = "shortened_link"
    NO_RECEIPT = "no_receipt"
    GENERAL = "general"


@dataclass(frozen=True)
class Explanation:
    code: str
    kind: str
    reason: str
    fix: str


_ASK_ADMIN = "Ask your RingCentral administrator"

# (codes, kind, reason, fix). The one place these codes are explained; keep reasons short and
# fixes doable by the person who sent the message or their administrator.
ERRORS: tuple[tuple[tuple[str, ...], str, str, str], ...] = (
    (
        ("SMS-RC-413", "SMS-UP-413", "SMS-CAR-413"),
        Kind.OPTED_OUT,
        "The recipient has opted out of texts from this number (they replied STOP).",
        "Do not text them again from this number. They can opt back in by replying START to it.",
    ),
    (
        ("SMS-RC-430", "SMS-UP-430", "SMS-CAR-430"),
        Kind.SPAM_FILTERED,
        "A spam filter blocked the message.",
        "Rewrite it: name your business, avoid link shorteners, all capitals and sales wording, "
        "then send it again.",
    ),
    (
        ("SMS-UP-431",),
        Kind.SENDER_FLAGGED,
        "Carriers have flagged the sending number for spam.",
        f"Send from another number for now. {_ASK_ADMIN} to contact RingCentral support about "
        "the flagged number.",
    ),
    (
        ("SMS-UP-414", "SMS-CAR-414"),
        Kind.NOT_REGISTERED,
        "The sending number is not registered for business texting (10DLC: no approved TCR "
        "campaign for it).",
        f"{_ASK_ADMIN} (a Super Admin) to register the brand and campaign and assign this number "
        "to it, or send from a registered number.",
    ),
    (
        ("SMS-CAR-461",),
        Kind.TOLL_FREE_UNVERIFIED,
        "The toll-free sending number is not verified for texting.",
        f"{_ASK_ADMIN} to complete toll-free verification, or send from a registered local number.",
    ),
    (
        ("SMS-RC-410", "SMS-UP-410", "SMS-CAR-411"),
        Kind.INVALID_NUMBER,
        "The number cannot receive texts: it is invalid or a landline.",
        "Check the number with the recipient, or call them instead.",
    ),
    (
        ("SMS-RC-403",),
        Kind.ACCOUNT_LIMIT,
        "Your RingCentral account has reached its daily or monthly texting limit.",
        f"Send it again after the limit resets, or {_ASK_ADMIN.lower()} to raise it.",
    ),
    (
        ("SMS-CAR-450", "SMS-CAR-451", "SMS-CAR-452"),
        Kind.CARRIER_LIMIT,
        "The carrier's daily limit for your business texting campaign is used up "
        "(450: T-Mobile, 451: AT&T, 452: another carrier).",
        f"Send it again tomorrow. If it happens often, {_ASK_ADMIN.lower()} about a higher "
        "campaign volume tier.",
    ),
    (
        ("SMS-UP-432",),
        Kind.TOO_LONG,
        "The message is longer than the messaging gateway accepts.",
        "Shorten the text (well under 1,000 characters) and send it again.",
    ),
    (
        ("SMS-CAR-432",),
        Kind.TOO_LONG,
        "The recipient's carrier refused the message as too long.",
        "Shorten the text, or split it into two messages, and send it again.",
    ),
    (
        ("SMS-CAR-434",),
        Kind.MEDIA_TOO_LARGE,
        "The recipient's carrier refused the attachments as too large.",
        "Send fewer or smaller files (one photo at a time), or a link to them instead.",
    ),
    (
        ("SMS-CAR-435",),
        Kind.SHORTENED_LINK,
        "The carrier blocked a shortened link (such as bit.ly) in the message.",
        "Use the full address on your own website instead of a link shortener.",
    ),
    (
        ("SMS-CAR-104",),
        Kind.NO_RECEIPT,
        "The carrier has not reported whether the message arrived.",
        "It may still have arrived; ask the recipient if it matters.",
    ),
    (
        ("SMS-CAR-199",),
        Kind.NO_RECEIPT,
        "The carrier's delivery report could not be understood.",
        "It may still have arrived; ask the recipient if it matters.",
    ),
    (
        ("SMS-RC-500",),
        Kind.GENERAL,
        "RingCentral could not send the message.",
        "Send it again later. If it keeps failing, contact RingCentral support with the code.",
    ),
    (
        ("SMS-UP-500",),
        Kind.GENERAL,
        "The messaging gateway between RingCentral and the carriers could not pass the message on.",
        "Send it again later. If it keeps failing, contact RingCentral support with the code.",
    ),
    (
        ("SMS-CAR-500",),
        Kind.GENERAL,
        "The recipient's carrier did not deliver the message.",
        "Send it again later, or reach the recipient another way.",
    ),
)

_BY_CODE: dict[str, tuple[str, str, str]] = {
    code: (kind, reason, fix) for codes, kind, reason, fix in ERRORS for code in codes
}
if len(_BY_CODE) != sum(len(codes) for codes, *_ in ERRORS):
    raise RuntimeError("a delivery error code is listed twice in ERRORS")

# Codes the table does not know, by where the failure happened (longest prefix first).
_BY_PREFIX: tuple[tuple[str, str, str], ...] = (
    (
        "SMS-CAR-",
        "The recipient's carrier did not deliver the message.",
        "Check the number, then send it again later or reach the recipient another way.",
    ),
    (
        "SMS-UP-",
        "The messaging gateway between RingCentral and the carriers refused the message.",
        "Send it again later. If it keeps failing, contact RingCentral support with the code.",
    ),
    (
        "SMS-RC-",
        "RingCentral could not send the message.",
        "Send it again later. If it keeps failing, contact RingCentral support with the code.",
    ),
)

# Failures that came with no code at all, by RingCentral's status.
_BY_STATUS: dict[str, tuple[str, str]] = {
    "DeliveryFailed": (
        "The recipient's carrier reported that the message was not delivered.",
        "Check the number, then send it again later or reach the recipient another way.",
    ),
    "SendingFailed": (
        "RingCentral could not send the message.",
        "Send it again later. If it keeps failing, contact RingCentral support.",
    ),
}
_UNKNOWN = (
    "The message was not delivered, for a reason RingCentral did not explain.",
    "Send it again later. If it keeps failing, contact RingCentral support with the code.",
)

NO_RECEIPT_REASON = "The carrier never reported delivery."
NO_RECEIPT_FIX = (
    "The message may well have arrived, but nobody confirmed it within a day; ask the recipient "
    "if it matters."
)
LINK_LOST_REASON = "The RingCentral link stopped working before a delivery report arrived."
LINK_LOST_FIX = "Reconnect RingCentral; the message itself may well have arrived."


def codes_of(*kinds: str) -> frozenset[str]:
    """Every known code of these kinds."""
    return frozenset(code for code, (kind, _, _) in _BY_CODE.items() if kind in kinds)


def explain(code: str | None, status: str = "") -> Explanation:
    """The reason and fix for `code` (RingCentral's `deliveryErrorCode`, may be empty).

    `status` is RingCentral's `messageStatus` of the failed recipient and only matters when
    there is no code.
    """
    code = (code or "").strip().upper()
    if code in _BY_CODE:
        kind, reason, fix = _BY_CODE[code]
        return Explanation(code, kind, reason, fix)
    for prefix, reason, fix in _BY_PREFIX:
        if code.startswith(prefix):
            return Explanation(code, Kind.GENERAL, reason, fix)
    reason, fix = _BY_STATUS.get(status, _UNKNOWN)
    return Explanation(code, Kind.GENERAL, reason, fix)
