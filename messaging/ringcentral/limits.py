"""RingCentral's SMS/MMS limits and supported attachment types — the one place they are written.

The compose form, the browser's live meter (through ``as_json()`` and Django's ``json_script``),
the send-time re-check in ``messaging/ringcentral/multipart.py``, the rate limiter and every error
message read their numbers from here. Nothing else in the project may repeat one of these numbers.

Sizes are decimal: 1 MB is 1,000,000 bytes and 1 kB is 1,000 bytes, because RingCentral states the
attachment budget as exactly 1,500,000 bytes. Human-readable sizes always use the decimal units.

The checks are pure functions without Django or I/O. Each returns a list of ``Violation`` — empty
when everything is within the limits — whose ``message`` tells the user what is wrong and what to
do about it, and whose ``code`` is stable for programs (tests, JSON, the meter).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# --- Message limits ---------------------------------------------------------------------------

MAX_ATTACHMENTS = 10
# Combined size of all files in one message. RingCentral gives the number in bytes (not 1.5 MiB).
MAX_ATTACHMENTS_BYTES = 1_500_000
# RingCentral counts text in UTF-16 code units: characters outside the Basic Multilingual Plane
# (most emoji) count as 2, so 500 emoji already fill a message.
MAX_TEXT_UNITS = 1000
# Recipients of one group message (several numbers in one request's "to").
MAX_GROUP_RECIPIENTS = 10
# Cap on a whole request body. RingCentral declares "10m"; reading it as the smaller decimal
# 10,000,000 keeps us under either interpretation.
MAX_REQUEST_BYTES = 10_000_000

# --- High Volume SMS (POST …/a2p-sms/batches) --------------------------------------------------

# Texts in one batch request (developer guide: "10,000 texts per API request"; another page says
# only that a batch is at most about 50 MB, so both caps are kept).
A2P_MAX_MESSAGES_PER_BATCH = 10_000
# Cap on a batch request's body. The spec declares "50m"; reading it as the smaller decimal
# 50,000,000 keeps us under either interpretation.
A2P_MAX_BATCH_BYTES = 50_000_000
# Records per page of the High Volume message list (the spec's maximum, also its default).
A2P_MESSAGES_PER_PAGE = 1000

# --- Rate limits (RingCentral's defaults for a user of one app) --------------------------------

# Requests per user per usage-plan group in a sliding window. Sends (POST /sms) are Medium, status
# reads (GET message-store) are Light, token calls are Auth.
RATE_LIMIT_GROUPS = {"Light": 50, "Medium": 40, "Heavy": 10, "Auth": 5}
SEND_GROUP = "Medium"
READ_GROUP = "Light"
AUTH_GROUP = "Auth"
# Every High Volume endpoint, creating a batch included, is in the Light group (the spec's
# x-throttling-group).
A2P_GROUP = "Light"
# RingCentral's content policy: at most this many messages per sending number per minute.
MESSAGES_PER_NUMBER = 50
# Name under which the per-number limit appears beside the usage-plan groups.
NUMBER_GROUP = "SenderNumber"
RATE_LIMIT_WINDOW_SECONDS = 60.0
# What RingCentral imposes after a limit is exceeded; every request during it restarts it.
RATE_LIMIT_PENALTY_SECONDS = 60.0
# How long to wait after a 429 that carries no Retry-After header.
DEFAULT_RETRY_AFTER_SECONDS = 30.0


def rate_limit_defaults() -> dict[str, dict[str, float]]:
    """The default of ``settings.RINGCENTRAL_RATE_LIMITS``: group -> {"limit", "window"}."""
    defaults = {
        group: {"limit": limit, "window": RATE_LIMIT_WINDOW_SECONDS}
        for group, limit in RATE_LIMIT_GROUPS.items()
    }
    defaults[NUMBER_GROUP] = {"limit": MESSAGES_PER_NUMBER, "window": RATE_LIMIT_WINDOW_SECONDS}
    return defaults


# --- Supported attachment types ---------------------------------------------------------------


@dataclass(frozen=True)
class MediaType:
    """One attachment type RingCentral accepts: its MIME type, a label and usual extensions."""

    mime: str
    label: str
    extensions: tuple[str, ...]
    category: str


CATEGORIES = {
    "image": "Images",
    "video": "Video",
    "audio": "Audio",
    "vcard": "Contact cards",
    "archive": "Archives",
    "document": "Documents",
}

SUPPORTED_TYPES: tuple[MediaType, ...] = (
    MediaType("image/jpeg", "JPEG image", (".jpg", ".jpeg"), "image"),
    MediaType("image/png", "PNG image", (".png",), "image"),
    MediaType("image/bmp", "BMP image", (".bmp",), "image"),
    MediaType("image/gif", "GIF image", (".gif",), "image"),
    MediaType("image/tiff", "TIFF image", (".tif", ".tiff"), "image"),
    MediaType("image/svg+xml", "SVG image", (".svg",), "image"),
    MediaType("image/webp", "WebP image", (".webp",), "image"),
    MediaType("video/3gpp", "3GP video", (".3gp",), "video"),
    MediaType("video/mp4", "MP4 video", (".mp4", ".m4v"), "video"),
    MediaType("video/mpeg", "MPEG video", (".mpeg", ".mpg"), "video"),
    MediaType("video/avi", "AVI video", (".avi",), "video"),
    MediaType("video/x-flv", "Flash video", (".flv",), "video"),
    MediaType("video/x-ms-wmv", "Windows Media video", (".wmv",), "video"),
    MediaType("video/quicktime", "QuickTime video", (".mov", ".qt"), "video"),
    MediaType("video/webm", "WebM video", (".webm",), "video"),
    MediaType("video/ogg", "Ogg video", (".ogv",), "video"),
    MediaType("audio/mpeg", "MP3 audio", (".mp3",), "audio"),
    MediaType("audio/mp4", "M4A audio", (".m4a",), "audio"),
    MediaType("audio/ogg", "Ogg audio", (".oga", ".ogg"), "audio"),
    MediaType("audio/wav", "WAV audio", (".wav",), "audio"),
    MediaType("audio/amr", "AMR audio", (".amr",), "audio"),
    MediaType("audio/3gpp", "3GP audio", (".3gp",), "audio"),
    MediaType("text/vcard", "vCard contact", (".vcf", ".vcard"), "vcard"),
    MediaType("application/zip", "ZIP archive", (".zip",), "archive"),
    MediaType("application/gzip", "GZIP archive", (".gz", ".gzip"), "archive"),
    MediaType("application/rtf", "RTF document", (".rtf",), "document"),
    MediaType("application/pdf", "PDF document", (".pdf",), "document"),
    MediaType("text/html", "HTML page", (".html", ".htm"), "document"),
    MediaType("text/plain", "Plain text", (".txt",), "document"),
    MediaType("text/csv", "CSV spreadsheet", (".csv",), "document"),
    MediaType("text/calendar", "Calendar event", (".ics",), "document"),
)
_BY_MIME = {media.mime: media for media in SUPPORTED_TYPES}
SUPPORTED_MIME_TYPES = frozenset(_BY_MIME)
# For <input type="file" accept="…">: both the types and the extensions, so every browser filters.
ACCEPT = ",".join(
    [media.mime for media in SUPPORTED_TYPES]
    + sorted({ext for media in SUPPORTED_TYPES for ext in media.extensions})
)


def media_type(content_type: str | None) -> str:
    """The bare MIME type of a Content-Type value: lower case, without parameters or spaces."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def describe_type(content_type: str | None) -> MediaType | None:
    """The supported type matching ``content_type`` (parameters ignored), or None."""
    return _BY_MIME.get(media_type(content_type))


def is_supported(content_type: str | None) -> bool:
    return describe_type(content_type) is not None


# --- Counting and formatting ------------------------------------------------------------------


def utf16_units(text: str) -> int:
    """Length of ``text`` as RingCentral counts it: UTF-16 code units (astral characters are 2)."""
    # Counting astral code points avoids encoding the whole text; surrogates never occur in a str
    # that came from valid UTF-8, and a lone one would count 1 in UTF-16 as well.
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def format_size(num_bytes: int, *, round_up: bool = False) -> str:
    """A short decimal size: "999 bytes", "640 kB", "1.5 MB" (1 MB = 1,000,000 bytes).

    Three significant digits; ``round_up`` for amounts a user must reach ("save at least …"),
    so that following the advice is always enough.
    """
    if num_bytes < 1000:
        return "1 byte" if num_bytes == 1 else f"{num_bytes:,} bytes"
    unit, value = ("kB", num_bytes / 1000)
    if num_bytes >= 999_500:
        unit, value = ("MB", num_bytes / 1_000_000)
    decimals = 2 if value < 10 else 1 if value < 100 else 0
    if round_up:
        value = math.ceil(value * 10**decimals) / 10**decimals
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {unit}"


def _sizes(value: int, limit: int) -> tuple[str, str]:
    """``value`` and ``limit`` formatted so that they never look equal when they differ."""
    shown, shown_limit = format_size(value), format_size(limit)
    if shown == shown_limit:
        return f"{value:,} bytes", f"{limit:,} bytes ({shown_limit})"
    return shown, shown_limit


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    word = singular if count == 1 else plural or singular + "s"
    return f"{count:,} {word}"


# --- Checks -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """One broken limit: a stable ``code``, the form ``field`` it belongs to and a message.

    Codes: ``text_too_long``, ``too_many_attachments``, ``attachments_too_large``,
    ``unsupported_type``, ``empty_attachment``, ``no_recipients``, ``too_many_recipients``,
    ``empty_message``, ``request_too_large``. Fields: ``text``, ``attachments``, ``to``.
    """

    code: str
    field: str
    message: str

    def __str__(self) -> str:
        return self.message


class LimitsExceeded(ValueError):
    """A message breaks one or more limits; ``violations`` says which (never empty)."""

    def __init__(self, violations: list[Violation]):
        self.violations = list(violations)
        super().__init__(" ".join(violation.message for violation in self.violations))


def check_text(text: str) -> list[Violation]:
    """At most ``MAX_TEXT_UNITS`` UTF-16 code units. Empty text is fine here (see check_message)."""
    units = utf16_units(text or "")
    if units <= MAX_TEXT_UNITS:
        return []
    over = units - MAX_TEXT_UNITS
    return [
        Violation(
            "text_too_long",
            "text",
            f"The text is {units:,} characters long; RingCentral accepts at most "
            f"{MAX_TEXT_UNITS:,} (emoji and some symbols count as 2). "
            f"Shorten it by {_plural(over, 'character')}.",
        )
    ]


def _get(item: Any, name: str) -> Any:
    if isinstance(item, Mapping):
        return item[name]
    return getattr(item, name)


def check_attachments(items: Iterable[Any]) -> list[Violation]:
    """Check files before they are sent: count, combined size, type, emptiness.

    Each item has ``name``, ``size`` (bytes) and ``content_type`` — as attributes (Django's
    ``UploadedFile`` fits) or as mapping keys. The type is matched without its parameters.
    Per-file problems come first, in the order of ``items``, then the totals.
    """
    items = list(items)
    violations = []
    for item in items:
        name = _get(item, "name") or "A file"
        content_type = _get(item, "content_type")
        size = _get(item, "size")
        if not is_supported(content_type):
            shown = media_type(content_type) or "unknown type"
            violations.append(
                Violation(
                    "unsupported_type",
                    "attachments",
                    f"“{name}” ({shown}) cannot be sent: RingCentral does not accept this type. "
                    f"Remove it or convert it to one of: {supported_summary()}.",
                )
            )
        if size == 0:
            violations.append(
                Violation(
                    "empty_attachment",
                    "attachments",
                    f"“{name}” is empty (0 bytes). Remove it or attach the file again.",
                )
            )
    if len(items) > MAX_ATTACHMENTS:
        extra = len(items) - MAX_ATTACHMENTS
        violations.append(
            Violation(
                "too_many_attachments",
                "attachments",
                f"{_plural(len(items), 'file')} attached; RingCentral accepts at most "
                f"{MAX_ATTACHMENTS}. Remove {_plural(extra, 'file')}.",
            )
        )
    total = sum(_get(item, "size") or 0 for item in items)
    if total > MAX_ATTACHMENTS_BYTES:
        shown, shown_limit = _sizes(total, MAX_ATTACHMENTS_BYTES)
        violations.append(
            Violation(
                "attachments_too_large",
                "attachments",
                f"The files add up to {shown}; RingCentral accepts at most {shown_limit} per "
                f"message. Remove or shrink files to save at least "
                f"{format_size(total - MAX_ATTACHMENTS_BYTES, round_up=True)}.",
            )
        )
    return violations


def check_recipients(count: int, group: bool = True) -> list[Violation]:
    """At least one recipient; at most ``MAX_GROUP_RECIPIENTS`` when they share one message.

    ``group`` is False when every recipient gets a message of their own: RingCentral then
    limits only the pace (see the rate limits), not the number.
    """
    if count < 1:
        return [Violation("no_recipients", "to", "Add at least one recipient.")]
    if group and count > MAX_GROUP_RECIPIENTS:
        extra = count - MAX_GROUP_RECIPIENTS
        return [
            Violation(
                "too_many_recipients",
                "to",
                f"{_plural(count, 'recipient')} in one group message; RingCentral accepts at "
                f"most {MAX_GROUP_RECIPIENTS}. Remove {_plural(extra, 'recipient')} or send "
                f"to them separately.",
            )
        ]
    return []


def check_message(
    text: str, attachments: Iterable[Any], recipient_count: int, group: bool = True
) -> list[Violation]:
    """Every check for one message, including that it has text or at least one file."""
    attachments = list(attachments)
    violations = check_recipients(recipient_count, group)
    violations += check_text(text)
    violations += check_attachments(attachments)
    if not (text or "").strip() and not attachments:
        violations.append(
            Violation("empty_message", "text", "Write a text or attach at least one file.")
        )
    return violations


def check_request_size(content_length: int) -> list[Violation]:
    """The whole request body must stay under RingCentral's cap (it does when the rest holds)."""
    if content_length <= MAX_REQUEST_BYTES:
        return []
    shown, shown_limit = _sizes(content_length, MAX_REQUEST_BYTES)
    return [
        Violation(
            "request_too_large",
            "attachments",
            f"The message would be {shown} on the wire; RingCentral accepts at most "
            f"{shown_limit}. Remove or shrink files.",
        )
    ]


def supported_summary() -> str:
    """A short list of what can be attached, by category, for messages and help text."""
    parts = []
    for category, title in CATEGORIES.items():
        extensions = [
            media.extensions[0].lstrip(".").upper()
            for media in SUPPORTED_TYPES
            if media.category == category
        ]
        parts.append(f"{title} ({', '.join(dict.fromkeys(extensions))})")
    return "; ".join(parts)


def as_json() -> dict[str, Any]:
    """Everything the browser needs, for ``{{ limits|json_script:"mms-limits" }}``.

    Keys are stable: the compose meter reads them instead of repeating numbers.
    """
    return {
        "maxAttachments": MAX_ATTACHMENTS,
        "maxAttachmentsBytes": MAX_ATTACHMENTS_BYTES,
        "maxAttachmentsBytesLabel": format_size(MAX_ATTACHMENTS_BYTES),
        "maxTextUnits": MAX_TEXT_UNITS,
        "maxGroupRecipients": MAX_GROUP_RECIPIENTS,
        "maxRequestBytes": MAX_REQUEST_BYTES,
        "bytesPerMB": 1_000_000,
        "accept": ACCEPT,
        "categories": [
            {
                "id": category,
                "label": title,
                "types": [
                    {"mime": media.mime, "label": media.label, "extensions": list(media.extensions)}
                    for media in SUPPORTED_TYPES
                    if media.category == category
                ],
            }
            for category, title in CATEGORIES.items()
        ],
    }
