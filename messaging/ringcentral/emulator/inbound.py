"""Messages that do not come through the calling app's ``/sms``: texts a contact sends to one of
an extension's numbers (``receive``), and texts the user sent from another RingCentral app or a
desk phone (``send_elsewhere``). Both land in the extension's message store and notify its
subscriptions like any other new message.

Arguments are checked strictly and refused with ``ValueError`` (the control API answers 400).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .messages import (
    SUPPORTED_MIME_TYPES,
    NewAttachment,
    StoredMessage,
    outbound_tracks,
    utf16_units,
)
from .optout import keyword
from .state import E164, Extension

if TYPE_CHECKING:
    from .emulator import Emulator

# (file name, content type, bytes): an attachment as the Python API takes it.
FileTuple = tuple[str, str, bytes]


def _number(value: object, name: str) -> str:
    if not isinstance(value, str) or not E164.match(value):
        raise ValueError(f"{name} must be an E.164 phone number, got {value!r}")
    return value


def _distinct(numbers: list[str], name: str) -> None:
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"{name} lists a number twice")


def _files(emu: Emulator, attachments: Iterable[FileTuple]) -> list[NewAttachment]:
    files = []
    for item in attachments:
        try:
            filename, content_type, data = item
        except (TypeError, ValueError):
            raise ValueError("an attachment is (filename, content_type, bytes)") from None
        if not isinstance(filename, str) or not filename:
            raise ValueError("an attachment needs a file name")
        if content_type not in SUPPORTED_MIME_TYPES:
            raise ValueError(f"{content_type!r} is not an MMS content type RingCentral accepts")
        if not isinstance(data, bytes) or not data:
            raise ValueError(f"attachment {filename} is empty")
        files.append(NewAttachment(filename, content_type, data))
    config = emu.config
    if len(files) > config.max_attachments:
        raise ValueError(f"at most {config.max_attachments} attachments")
    if sum(len(f.data) for f in files) > config.max_attachment_bytes:
        raise ValueError(f"attachments exceed {config.max_attachment_bytes} bytes in total")
    return files


def _texting_number(emu: Emulator, phone_number: str, with_files: bool) -> Extension:
    """The extension owning ``phone_number``, which must be enabled for SMS (and MMS)."""
    extension = emu.world.owner_of(phone_number)
    if extension is None:
        raise ValueError(f"{phone_number} belongs to no extension")
    number = extension.number(phone_number)
    assert number is not None
    if not number.has("SmsSender"):
        raise ValueError(f"{phone_number} is not enabled for texting (no SmsSender feature)")
    if with_files and not number.has("MmsSender"):
        raise ValueError(f"{phone_number} is not enabled for pictures (no MmsSender feature)")
    return extension


def _moments(emu: Emulator, at: float | None) -> tuple[float, float]:
    """(creation time, now): ``at`` dates a record in the past, never in the future."""
    now = emu.now()
    if at is None:
        return now, now
    if isinstance(at, bool) or not isinstance(at, int | float) or at > now:
        raise ValueError("at must be a time on the emulator clock, not after now")
    return float(at), now


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("text must be a string")
    return value


def receive(
    emu: Emulator,
    from_number: str,
    to_number: str,
    text: str = "",
    attachments: Iterable[FileTuple] = (),
    also_to: Iterable[str] = (),
    at: float | None = None,
    read: bool = False,
) -> StoredMessage:
    """Contact ``from_number`` texts ``to_number``, a number of an extension; ``also_to`` are
    the other members of a group MMS. Stored Inbound, Received, Unread (unless ``read``).

    A whole-message opt-out keyword (STOP...) opts the pair out, an opt-in keyword (START...)
    back in (``optout.py``).
    """
    sender = _number(from_number, "from")
    target = _number(to_number, "to")
    group = [_number(n, "also_to") for n in also_to]
    _distinct([sender, target, *group], "from, to and also_to")
    if 1 + len(group) > emu.config.max_recipients:
        raise ValueError(f"a group MMS has at most {emu.config.max_recipients} recipients")
    body = _text(text)
    files = _files(emu, attachments)
    if not body and not files:
        raise ValueError("an inbound message needs text or attachments")
    extension = _texting_number(emu, target, bool(files))
    created, now = _moments(emu, at)
    message = emu.messages.create(
        account_id=extension.account_id,
        extension_id=extension.id,
        owner_name=extension.name,
        direction="Inbound",
        from_number=sender,
        inbound_to=[target, *group],
        text=body,
        files=files,
        created_at=created,
        stored_at=now,
        endpoint="inbound",
        read_status="Read" if read else "Unread",
    )
    word = keyword(body)
    if word is not None:
        emu.set_consent(target, sender, word, "Recipient", created, extension.account_id)
    emu.message_stored(message)
    return message


def send_elsewhere(
    emu: Emulator,
    from_number: str,
    to_numbers: Iterable[str],
    text: str = "",
    attachments: Iterable[FileTuple] = (),
    at: float | None = None,
) -> StoredMessage:
    """The owner of ``from_number`` texts ``to_numbers`` from outside the calling app. Stored
    Outbound with the same lifecycle, recipient behaviours and opt-outs as a send."""
    sender = _number(from_number, "from")
    if isinstance(to_numbers, str):
        raise ValueError("to must be a list of phone numbers")
    to = [_number(n, "to") for n in to_numbers]
    if not to or len(to) > emu.config.max_recipients:
        raise ValueError(f"to needs 1 to {emu.config.max_recipients} numbers")
    _distinct([sender, *to], "from and to")
    body = _text(text)
    if utf16_units(body) > emu.config.max_text_units:
        raise ValueError(f"text is longer than {emu.config.max_text_units} UTF-16 code units")
    files = _files(emu, attachments)
    if not body and not files:
        raise ValueError("a message needs text or attachments")
    extension = _texting_number(emu, sender, bool(files))
    created, now = _moments(emu, at)
    message = emu.messages.create(
        account_id=extension.account_id,
        extension_id=extension.id,
        owner_name=extension.name,
        direction="Outbound",
        from_number=sender,
        recipients=outbound_tracks(emu, sender, to, created),
        text=body,
        files=files,
        created_at=created,
        stored_at=now,
        endpoint="elsewhere",
        read_status="Read",
    )
    emu.message_stored(message)
    return message
