"""Composing messages: the rules the compose page and ``manage.py send_message`` share.

Plain functions, usable without a request. A submission goes through these steps:

1. ``sender_numbers(user, team)``: the numbers a user may send from — active numbers of the
   team's usable connections that are theirs or shared with the team. ``find_sender`` picks one
   by id or phone number; ``sender_refusal`` explains why a number cannot send this message
   (fax, no SMS, toll-free or no MMS with files).
2. ``parse_recipients(raw)``: numbers separated by commas, semicolons or new lines, normalised
   to E.164 (default region ``settings.PHONE_DEFAULT_REGION``), duplicates merged; short codes,
   extensions and invalid numbers are reported one by one, quoting what was typed.
3. ``clean_text(text)`` / ``text_problems(text)``: line endings as the browser counts them,
   limits from messaging/limits.py.
4. Files: ``ingest_upload`` (a Django upload), ``ingest_path`` (a file on disk) and
   ``load_drafts`` (files uploaded earlier from the compose page) all give ``media.MediaFile``.
5. ``prepare(membership, …)``: every check at once. Returns an ``Outgoing`` or raises
   ``ComposeInvalid`` with messages by field (``sender``, ``to``, ``text``, ``attachments``,
   ``mode``). With ``fit_images`` on, photos are reduced here to fit the size budget.
6. ``submit(outgoing)``: stores new bytes, then creates the message(s), recipients and
   attachments in one transaction, consumes the drafts and enqueues after commit.

Sending separately to each recipient creates one message per recipient that all point at the
same stored files (one key, several Attachment rows) instead of copies: the bytes are identical
and immutable, and N copies would multiply storage for nothing. Hence the rule in
``release_files``: a stored file is deleted only once no Attachment or DraftAttachment names it.
"""

from __future__ import annotations

import functools
import os
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import phonenumbers
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import limits, media, outbox
from .models import (
    Attachment,
    DraftAttachment,
    OutboundMessage,
    Recipient,
    RingCentralConnection,
    Role,
    SenderNumber,
)

# Recipients of one submission sent separately. Not a RingCentral limit: at its pace of about
# 40 sends a minute, this many messages already take minutes; bulk campaigns belong elsewhere.
MAX_SEPARATE_RECIPIENTS = 100
# Entries in the "to" field read at all; anything longer is refused unread.
MAX_ENTRIES = 10 * MAX_SEPARATE_RECIPIENTS
# How long an uploaded file waits on the compose page before it is deleted.
DRAFT_LIFETIME = timedelta(hours=24)
# Files a user may have waiting at once in one team (a guard against filling the disk).
MAX_LIVE_DRAFTS = 3 * limits.MAX_ATTACHMENTS
# Countries RingCentral's US/Canada SMS service treats as domestic.
DOMESTIC_REGIONS = frozenset({"US", "CA"})

FIELDS = ("sender", "to", "mode", "text", "attachments")


class Mode:
    """How several recipients are sent to."""

    SEPARATE = "separate"
    GROUP = "group"
    CHOICES = (
        (SEPARATE, "A separate message to each recipient"),
        (GROUP, "One group message to everyone"),
    )


class ComposeInvalid(Exception):
    """The submission breaks a rule; ``errors`` maps field names to messages for the user."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = {name: list(messages) for name, messages in errors.items() if messages}
        super().__init__(" ".join(m for messages in self.errors.values() for m in messages))


# --- Senders ------------------------------------------------------------------------------------


def sender_numbers(user, team):
    """Active numbers of the team's usable connections that ``user`` may send from, fax and
    toll-free ones included so that the page can say why they cannot send."""
    return (
        SenderNumber.objects.filter(
            connection__team=team,
            connection__status__in=RingCentralConnection.USABLE_STATUSES,
        )
        # Fax numbers are never active senders (the schema says so) but are listed, disabled,
        # so that nobody wonders where their fax line went.
        .filter(Q(active=True) | Q(is_fax=True))
        .filter(Q(connection__linked_by=user) | Q(connection__shared_with_team=True))
        .select_related("connection")
        .order_by("phone_number", "pk")
    )


_NANP = re.compile(r"\+1([2-9]\d{2})([2-9]\d{2})(\d{4})")


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


def sender_refusal(number: SenderNumber, *, with_files: bool) -> str | None:
    """Why ``number`` cannot send this message, or None when it can."""
    shown = format_number(number.phone_number)
    if number.is_fax:
        return f"{shown} is a fax number: RingCentral sends no text messages from fax numbers."
    if with_files and not number.can_mms:
        if number.is_toll_free:
            return (
                f"{shown} is toll-free: RingCentral sends no MMS (messages with files) from "
                "toll-free numbers. Choose a number that can send MMS, or remove the files."
            )
        return (
            f"{shown} is not enabled for MMS (messages with files) in RingCentral. Choose a "
            "number that can send MMS, or remove the files."
        )
    if not number.can_sms:
        return f"{shown} is not enabled for text messages in RingCentral. Choose another number."
    return None


def sender_note(number: SenderNumber) -> str:
    """A short label suffix for the sender list: what the number cannot do."""
    if number.is_fax:
        return "fax: cannot send texts"
    if number.is_toll_free:
        return "toll-free: text only, no files"
    if not number.can_mms:
        return "text only, no files"
    return ""


def find_sender(user, team, value) -> SenderNumber | None:
    """The sender number ``value`` names (a SenderNumber, its id, or its phone number as typed)
    among those ``user`` may use in ``team``; None when it is none of them."""
    numbers = sender_numbers(user, team)
    if isinstance(value, SenderNumber):
        return numbers.filter(pk=value.pk).first()
    text = str(value or "").strip()
    if not text:
        return None
    # ASCII digits only ("²".isdigit() is true), and few enough for a database integer.
    if re.fullmatch(r"[0-9]{1,18}", text):
        found = numbers.filter(pk=int(text)).first()
        if found is not None:
            return found
    parsed = parse_recipients(text)
    if len(parsed.numbers) != 1:
        return None
    candidates = list(numbers.filter(phone_number=parsed.numbers[0]))
    # The same line may be reachable through two links; prefer the user's own.
    candidates.sort(key=lambda n: n.connection.linked_by_id != user.pk)
    return candidates[0] if candidates else None


# --- Recipients ---------------------------------------------------------------------------------

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


# --- Text ---------------------------------------------------------------------------------------


def clean_text(text: str | None) -> str:
    """The text as it will be sent: line endings as a browser's textarea counts them (LF)."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n")


def text_problems(text: str) -> list[str]:
    problems = [v.message for v in limits.check_text(text)]
    if "\0" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        problems.append("The text contains characters that cannot be sent. Remove them.")
    return problems


# --- Files --------------------------------------------------------------------------------------


def max_file_bytes() -> int:
    return settings.COMPOSE_MAX_FILE_BYTES


def sizes_apart(value: int, limit: int) -> tuple[str, str]:
    """Two sizes for one sentence, in bytes when rounding would make them look equal."""
    shown, shown_limit = limits.format_size(value), limits.format_size(limit)
    if shown == shown_limit:
        return f"{value:,} bytes", f"{limit:,} bytes ({shown_limit})"
    return shown, shown_limit


def file_too_large(name: str, size: int) -> str:
    shown, shown_limit = sizes_apart(size, max_file_bytes())
    return (
        f"“{media.clean_filename(name)}” is {shown}; this portal accepts files of up to "
        f"{shown_limit}. Send a smaller copy."
    )


def ingest_upload(uploaded, *, strip_metadata: bool = True) -> media.MediaFile:
    """Check one Django ``UploadedFile``. Raises ``media.MediaError``."""
    if uploaded.size is not None and uploaded.size > max_file_bytes():
        raise media.MediaError(file_too_large(uploaded.name, uploaded.size))
    uploaded.seek(0)
    data = uploaded.read(max_file_bytes() + 1)
    if len(data) > max_file_bytes():
        raise media.MediaError(file_too_large(uploaded.name, len(data)))
    return media.ingest(uploaded.name, data, strip_metadata=strip_metadata)


def ingest_path(path: str | os.PathLike, *, strip_metadata: bool = True) -> media.MediaFile:
    """Check a file on disk (for the command line). Raises ``media.MediaError``."""
    path = Path(path)
    name = media.clean_filename(path.name)
    try:
        with path.open("rb") as handle:
            data = handle.read(max_file_bytes() + 1)
    except IsADirectoryError:
        raise media.MediaError(f"“{path}” is a folder, not a file.") from None
    except FileNotFoundError:
        raise media.MediaError(f"“{path}” does not exist.") from None
    except OSError as error:
        raise media.MediaError(f"“{path}” cannot be read: {error.strerror or error}.") from None
    if len(data) > max_file_bytes():
        raise media.MediaError(file_too_large(name, path.stat().st_size))
    return media.ingest(path.name, data, strip_metadata=strip_metadata)


def _storage():
    return default_storage


def store_bytes(team_id: int, data: bytes, content_type: str, suffix: str = "") -> str:
    """Save bytes under a fresh random key in the private storage; returns the stored name."""
    content = ContentFile(data)
    content.content_type = content_type  # S3 stores it as the object's Content-Type
    return _storage().save(f"attachments/{team_id}/{uuid.uuid4().hex}{suffix}", content)


def release_files(names: Iterable[str]) -> None:
    """Delete stored files that no Attachment or DraftAttachment names any more.

    Call it after the transaction that dropped the references has committed.
    """
    storage = _storage()
    for name in {n for n in names if n}:
        referenced = (
            Attachment.objects.filter(Q(file=name) | Q(thumbnail=name)).exists()
            or DraftAttachment.objects.filter(Q(file=name) | Q(thumbnail=name)).exists()
        )
        if not referenced:
            storage.delete(name)


def _release_after_commit(names: Iterable[str]) -> None:
    names = list(names)
    transaction.on_commit(lambda: release_files(names), robust=True)


def live_drafts(user, team):
    return DraftAttachment.objects.filter(user=user, team=team, expires_at__gt=timezone.now())


def create_draft(user, team, file: media.MediaFile) -> DraftAttachment:
    """Store a checked file as a draft of ``user`` in ``team``."""
    stored = store_bytes(team.pk, file.data, file.content_type)
    thumb = ""
    try:
        if file.thumbnail:
            thumb = store_bytes(team.pk, file.thumbnail, "image/jpeg", "-thumb")
        now = timezone.now()
        return DraftAttachment.objects.create(
            team=team,
            user=user,
            file=stored,
            thumbnail=thumb,
            original_name=file.name,
            content_type=file.content_type,
            size=file.size,
            sha256=file.sha256,
            original_size=file.original_size,
            original_content_type=file.original_content_type,
            was_converted=file.was_converted,
            metadata_removed=file.metadata_removed,
            fittable=file.fittable,
            width=file.width,
            height=file.height,
            notes=file.notes,
            created_at=now,
            expires_at=now + DRAFT_LIFETIME,
        )
    except BaseException:
        _storage().delete(stored)
        if thumb:
            _storage().delete(thumb)
        raise


def prefill_from(message, user) -> dict:
    """What "send again" puts back on the compose page for ``message``: its sender, recipients,
    text and mode as form initial values, and its files as fresh drafts of ``user``.

    The drafts name the message's stored files instead of copying them: stored bytes never
    change, and `release_files` deletes a file only once nothing names it any more.
    """
    recipients = [r.phone_number for r in message.recipients.all()]
    now = timezone.now()
    for attachment in message.attachments.all():
        DraftAttachment.objects.create(
            team=message.team,
            user=user,
            file=attachment.file.name,
            thumbnail=attachment.thumbnail.name if attachment.thumbnail else "",
            original_name=attachment.original_name,
            content_type=attachment.content_type,
            size=attachment.size,
            sha256=attachment.sha256,
            original_size=attachment.original_size or attachment.size,
            original_content_type=attachment.original_content_type,
            was_converted=attachment.was_converted,
            metadata_removed=attachment.metadata_removed,
            # Already fitted once; shrinking it again would only lose quality.
            fittable=False,
            width=attachment.width,
            height=attachment.height,
            notes=[],
            created_at=now,
            expires_at=now + DRAFT_LIFETIME,
        )
    return {
        "sender": str(message.sender_number_id),
        "to": "\n".join(format_number(n) for n in recipients),
        "text": message.text,
        "mode": Mode.GROUP if message.is_group else Mode.SEPARATE,
    }


def delete_draft(draft: DraftAttachment) -> None:
    names = [draft.file.name, draft.thumbnail.name]
    with transaction.atomic():
        draft.delete()
        _release_after_commit(names)


def purge_expired_drafts(limit: int = 200) -> int:
    """Delete up to ``limit`` expired drafts and their files; returns how many."""
    expired = list(
        DraftAttachment.objects.filter(expires_at__lte=timezone.now()).order_by("expires_at")[
            :limit
        ]
    )
    for draft in expired:
        delete_draft(draft)
    return len(expired)


def draft_media(draft: DraftAttachment) -> media.MediaFile:
    """A MediaFile for a stored draft; its bytes are read from storage only when needed."""

    def load() -> bytes:
        with _storage().open(draft.file.name, "rb") as handle:
            return handle.read()

    return media.MediaFile(
        name=draft.original_name,
        content_type=draft.content_type,
        size=draft.size,
        sha256=draft.sha256,
        original_size=draft.original_size,
        original_content_type=draft.original_content_type,
        width=draft.width,
        height=draft.height,
        fittable=draft.fittable,
        was_converted=draft.was_converted,
        metadata_removed=draft.metadata_removed,
        notes=list(draft.notes or []),
        stored_name=draft.file.name,
        thumbnail_name=draft.thumbnail.name or "",
        loader=load,
    )


GONE = "An attached file is no longer available (it expired or was removed). Attach it again."


def load_drafts(user, team, keys: Iterable[str]) -> tuple[list[DraftAttachment], list[str]]:
    """The user's live drafts named by ``keys``, in that order, and a problem if any is gone."""
    wanted = []
    problems = []
    for key in keys:
        try:
            value = uuid.UUID(str(key))
        except (ValueError, TypeError, AttributeError):
            problems = [GONE]
            continue
        if value not in wanted:
            wanted.append(value)
    found = {d.key: d for d in live_drafts(user, team).filter(key__in=wanted)}
    if len(found) < len(wanted):
        problems = [GONE]
    return [found[k] for k in wanted if k in found], problems


# --- Prepare and submit ---------------------------------------------------------------------------


@dataclass
class Outgoing:
    """A checked submission, ready for ``submit``."""

    membership: object
    sender: SenderNumber
    recipients: list[str]
    text: str
    files: list[media.MediaFile]
    group: bool
    drafts: list[DraftAttachment] = field(default_factory=list)
    duplicates: int = 0

    @property
    def message_count(self) -> int:
        return 1 if self.group else len(self.recipients)


def budget_problems(files: Sequence[media.MediaFile], *, fit_images: bool) -> list[str]:
    """Count and size of the files as the user will meet them, before any fitting is run.

    With fitting on, only a budget the files that cannot shrink already use up is a problem
    (the shrinking itself may still fail later, rarely, for one image that cannot get small
    enough).
    """
    violations = limits.check_attachments(files)
    problems = [v.message for v in violations if v.code != "attachments_too_large"]
    if not any(v.code == "attachments_too_large" for v in violations):
        return problems
    fittable = [i for i, f in enumerate(files) if f.fittable]
    if fit_images and fittable:
        fixed = sum(f.size for i, f in enumerate(files) if i not in fittable)
        if limits.MAX_ATTACHMENTS_BYTES - fixed < media.MIN_IMAGE_BYTES * len(fittable):
            problems.append(
                media._fit_refusal(files, fittable, fixed, limits.MAX_ATTACHMENTS_BYTES)
            )
        return problems
    message = next(v.message for v in violations if v.code == "attachments_too_large")
    if fittable and not fit_images:
        message += " Or turn on “Reduce photos to fit” and the photos are made smaller for you."
    return problems + [message]


def prepare(
    membership,
    *,
    sender,
    to,
    text: str | None,
    files: Sequence[media.MediaFile] = (),
    drafts: Sequence[DraftAttachment] = (),
    mode: str = Mode.SEPARATE,
    fit_images: bool = True,
    file_errors: Sequence[str] = (),
    check_only: bool = False,
) -> Outgoing:
    """Check everything about a submission and return it ready to submit.

    ``files`` are new files (already ingested); ``drafts`` are stored uploads, placed before
    them. ``file_errors`` are problems found while ingesting (shown with the others).
    ``check_only`` skips the expensive part (fitting photos), for live checks while typing.
    Raises ``ComposeInvalid``; raises ``PermissionDenied`` if the member may not send.
    """
    if not membership.can(Role.SENDER):
        raise PermissionDenied("Sending needs the sender role.")
    user, team = membership.user, membership.team
    errors: dict[str, list[str]] = {name: [] for name in FIELDS}
    all_files = [draft_media(d) for d in drafts] + list(files)
    with_files = bool(all_files)

    number = find_sender(user, team, sender)
    if number is None:
        errors["sender"].append(
            "Choose one of your numbers to send from."
            if str(sender or "").strip()
            else "Choose the number to send from."
        )
    else:
        refusal = sender_refusal(number, with_files=with_files)
        if refusal:
            errors["sender"].append(refusal)

    if mode not in (Mode.SEPARATE, Mode.GROUP):
        errors["mode"].append("Choose how to send: separately or as one group message.")
    group = mode == Mode.GROUP
    recipients = parse_recipients(to or "")
    errors["to"] += recipients.problems
    if not recipients.problems:
        errors["to"] += [v.message for v in limits.check_recipients(len(recipients.numbers), group)]
    if not group and len(recipients.numbers) > MAX_SEPARATE_RECIPIENTS:
        errors["to"].append(
            f"{len(recipients.numbers):,} recipients; one submission sends to at most "
            f"{MAX_SEPARATE_RECIPIENTS} separately. Split the list."
        )
    if number is not None and not errors["sender"]:
        errors["to"] += destination_problems(recipients.numbers, number, with_files=with_files)

    text = clean_text(text)
    errors["text"] += text_problems(text)
    if not text.strip() and not all_files and not file_errors:
        errors["text"].append(
            next(v.message for v in limits.check_message("", [], 1) if v.code == "empty_message")
        )

    errors["attachments"] += list(file_errors)
    errors["attachments"] += budget_problems(all_files, fit_images=fit_images)

    if any(errors.values()):
        raise ComposeInvalid(errors)
    if fit_images and not check_only:
        try:
            all_files = media.fit_to_budget(all_files, limits.MAX_ATTACHMENTS_BYTES)
        except media.MediaError as error:
            raise ComposeInvalid({"attachments": [error.message]}) from None
    return Outgoing(
        membership=membership,
        sender=number,
        recipients=recipients.numbers,
        text=text,
        files=all_files,
        group=group and len(recipients.numbers) > 1,
        drafts=list(drafts),
        duplicates=recipients.duplicates,
    )


def submit(outgoing: Outgoing) -> list[OutboundMessage]:
    """Create the message(s) of a prepared submission and hand them to the outbox.

    Group: one message with every recipient. Separate: one message per recipient, all sharing
    the stored files. New bytes are stored first (storage is not transactional); if the
    database part fails they are deleted again. Drafts are consumed in the same transaction,
    and stored files nobody references any more are deleted after it commits.
    """
    user, team = outgoing.membership.user, outgoing.membership.team
    new_names: list[str] = []
    try:
        for file in outgoing.files:
            if file.stored_name is None:
                file.stored_name = store_bytes(team.pk, file.data, file.content_type)
                new_names.append(file.stored_name)
            if not file.thumbnail_name and file.thumbnail:
                file.thumbnail_name = store_bytes(team.pk, file.thumbnail, "image/jpeg", "-thumb")
                new_names.append(file.thumbnail_name)
        with transaction.atomic():
            batches = (
                [outgoing.recipients] if outgoing.group else [[r] for r in outgoing.recipients]
            )
            created = []
            for batch in batches:
                message = OutboundMessage.objects.create(
                    team=team,
                    connection=outgoing.sender.connection,
                    sender_number=outgoing.sender,
                    from_number=outgoing.sender.phone_number,
                    created_by=user,
                    text=outgoing.text,
                    is_group=len(batch) > 1,
                )
                Recipient.objects.bulk_create(
                    Recipient(message=message, phone_number=number) for number in batch
                )
                Attachment.objects.bulk_create(
                    _attachment_row(message, position, file)
                    for position, file in enumerate(outgoing.files)
                )
                created.append(message)
            released = [n for d in outgoing.drafts for n in (d.file.name, d.thumbnail.name)]
            DraftAttachment.objects.filter(pk__in=[d.pk for d in outgoing.drafts]).delete()
            _release_after_commit(released)
            outbox.enqueue([message.pk for message in created])
    except BaseException:
        for name in new_names:
            _storage().delete(name)
        raise
    return created


def _attachment_row(message, position: int, file: media.MediaFile) -> Attachment:
    attachment = Attachment(
        message=message,
        original_name=file.name,
        content_type=file.content_type,
        size=file.size,
        sha256=file.sha256,
        position=position,
        original_size=file.original_size,
        original_content_type=file.original_content_type,
        was_converted=file.was_converted,
        was_resized=file.was_resized,
        metadata_removed=file.metadata_removed,
        width=file.width,
        height=file.height,
    )
    # The bytes are stored already; naming them here never uploads again.
    attachment.file.name = file.stored_name
    attachment.thumbnail.name = file.thumbnail_name or ""
    return attachment


def send(
    membership,
    *,
    sender,
    to,
    text: str | None,
    paths: Sequence[str | os.PathLike] = (),
    mode: str = Mode.SEPARATE,
    fit_images: bool = True,
) -> list[OutboundMessage]:
    """Everything for a caller without a form (the command line): ingest files from paths,
    check, create and enqueue. Raises ComposeInvalid with messages by field."""
    files, problems = [], []
    for path in paths:
        try:
            files.append(ingest_path(path))
        except media.MediaError as error:
            problems.append(error.message)
    outgoing = prepare(
        membership,
        sender=sender,
        to=to,
        text=text,
        files=files,
        mode=mode,
        fit_images=fit_images,
        file_errors=problems,
    )
    return submit(outgoing)


def summary(outgoing: Outgoing, created: Sequence[OutboundMessage]) -> str:
    """The flash message after a submission: what was queued, and that it is not sent yet."""
    recipients = len(outgoing.recipients)
    people = f"{recipients} recipient{'s' if recipients != 1 else ''}"
    if outgoing.group:
        what = f"1 group message to {people}"
    elif len(created) == 1:
        what = f"1 message to {format_number(outgoing.recipients[0])}"
    else:
        what = f"{len(created)} messages, one to each of {people}"
    files = len(outgoing.files)
    with_files = f" with {files} file{'s' if files != 1 else ''}" if files else ""
    merged = (
        f" ({outgoing.duplicates} repeated number{'s' if outgoing.duplicates != 1 else ''} merged)"
        if outgoing.duplicates
        else ""
    )
    return (
        f"Queued: {what}{with_files}{merged} — not sent yet. The outbox shows when "
        f"{'it is' if len(created) == 1 else 'they are'} sent and delivered."
    )


def fit_report(outgoing: Outgoing) -> list[str]:
    """One line per file that was reduced to fit, with its size before and after."""
    return [
        f"“{f.name}”: {limits.format_size(f.original_size)} → {limits.format_size(f.size)}"
        for f in outgoing.files
        if f.was_resized
    ]
