"""Composing messages: the rules the compose page and ``manage.py send_message`` share.

Plain functions, usable without a request. A submission goes through these steps:

1. ``senders.sender_numbers(user, team)``: the numbers a user may send from — active numbers of
   the team's usable connections that are theirs or shared with the team. ``find_sender`` picks
   one by id or phone number; ``sender_refusal`` explains why a number cannot send this message
   (fax, no SMS, toll-free or no MMS with files).
2. ``recipients.expand_tags(team_id, raw)``: ``tag:patients`` entries become the numbers of the
   contacts tagged so; ``recipients.parse_recipients(raw)``: numbers normalised to E.164,
   problems one by one.
3. ``clean_text(text)`` / ``text_problems(text)``: line endings as the browser counts them,
   limits from messaging/ringcentral/limits.py.
4. Files: ``uploads.ingest_upload`` (a Django upload), ``uploads.ingest_path`` (a file on disk)
   and ``drafts.load_drafts`` (files uploaded earlier from the compose page) all give
   ``media.MediaFile``.
5. ``prepare(membership, …)``: every check at once. Returns an ``Outgoing`` or raises
   ``ComposeInvalid`` with messages by field (``sender``, ``to``, ``text``, ``attachments``,
   ``mode``). With ``fit_images`` on, photos are reduced here to fit the size budget, each in
   a child process under the media limits (``uploads.fit_photos``).
   With a ``template``, its merge fields are filled for each recipient (``message_templates``)
   and a recipient it cannot be filled for is skipped when the template says so; with a
   ``send_at`` (an aware moment in the future) the messages are created scheduled.
6. ``submit(outgoing)``: stores new bytes, then creates the message(s), recipients and
   attachments in one transaction, consumes the drafts and enqueues after commit.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from messaging import audit
from messaging.compose import media
from messaging.compose.drafts import (
    delete_stored,
    draft_media,
    draft_of_attachment,
    release_after_commit,
    store_bytes,
    stored_file_fields,
)
from messaging.compose.recipients import (
    MAX_SEPARATE_RECIPIENTS,
    TagExpansion,
    destination_problems,
    expand_tags,
    parse_recipients,
)
from messaging.compose.senders import find_sender, sender_refusal
from messaging.compose.uploads import fit_photos, ingest_path
from messaging.consent import checks as consent_checks
from messaging.consent import quiet_hours, team_settings
from messaging.contacts.book import names_for
from messaging.core.phones import format_number
from messaging.message_templates import library as template_library
from messaging.message_templates.merge import TemplateError, fields_in
from messaging.models import (
    Attachment,
    AuditAction,
    DraftAttachment,
    OutboundMessage,
    Recipient,
    Role,
    SenderNumber,
)
from messaging.outbox import scheduling, signals, states
from messaging.ringcentral import limits

FIELDS = ("sender", "to", "mode", "text", "attachments", "send_at")


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


# --- Text ---------------------------------------------------------------------------------------


def clean_text(text: str | None) -> str:
    """The text as it will be sent: line endings as a browser's textarea counts them (LF)."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n")


def text_problems(text: str) -> list[str]:
    problems = [v.message for v in limits.check_text(text)]
    if "\0" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        problems.append("The text contains characters that cannot be sent. Remove them.")
    return problems


def prefill_from(message, user, form_key) -> dict:
    """What "send again" puts back on compose page ``form_key`` for ``message``: its sender,
    recipients, text and mode as form initial values, and its files (each once) as fresh drafts
    of ``user`` on that page."""
    recipients = [r.phone_number for r in message.recipients.all()]
    now = timezone.now()
    for attachment in message.attachments.all():
        draft_of_attachment(user, message.team, form_key, attachment, now)
    # The opt-out line the team added to a first message is added again only where it is due.
    text, suffix = message.text, team_settings.opt_out_suffix(message.team_id)
    if suffix and text.endswith(suffix):
        text = text[: -len(suffix)]
    return {
        "sender": str(message.sender_number_id),
        "to": "\n".join(format_number(n) for n in recipients),
        "text": text,
        "mode": Mode.GROUP if message.is_group else Mode.SEPARATE,
    }


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
    # The team's opt-out line ("" when off) and the recipients it is added for: those no message
    # from this number went to yet.
    opt_out_suffix: str = ""
    first_contacts: set[str] = field(default_factory=set)
    # Tags typed as recipients (`tag:patients`), expanded into these numbers: the page shows
    # them before anything is queued.
    tags: list[TagExpansion] = field(default_factory=list)
    # A template's fields merged for each recipient (number -> text), and the recipients left
    # out because a field had no value, with why (number, reason).
    merged: dict[str, str] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # A scheduled send: when (aware) and the time zone it was chosen in.
    send_at: object = None
    schedule_zone: str = ""

    def text_for(self, batch: Sequence[str]) -> str:
        """The text of the message to `batch`: merged for its recipient, with the opt-out line
        when it is the first message to any of them."""
        text = self.merged.get(batch[0], self.text) if len(batch) == 1 else self.text
        line = self.opt_out_suffix.strip()
        if not line or text.rstrip().endswith(line):  # written by the sender already
            return text
        if any(number in self.first_contacts for number in batch):
            return text + self.opt_out_suffix
        return text


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
            problems.append(media.fit_refusal(files, fittable, fixed, limits.MAX_ATTACHMENTS_BYTES))
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
    template=None,
    send_at=None,
    schedule_zone: str = "",
) -> Outgoing:
    """Check everything about a submission and return it ready to submit.

    ``files`` are new files (already ingested); ``drafts`` are stored uploads, placed before
    them. ``file_errors`` are problems found while ingesting (shown with the others).
    ``check_only`` skips the expensive part (fitting photos), for live checks while typing.
    ``template`` (a MessageTemplate the member may read): the text's fields are merged per
    recipient with its missing-field policy. ``send_at`` (aware): create them scheduled.
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
    expanded = expand_tags(team.pk, to or "")
    errors["to"] += expanded.problems
    recipients = parse_recipients(expanded.raw)
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
        # Opted-out recipients are refused here, before RingCentral is asked.
        errors["to"] += [
            refusal.message
            for refusal in consent_checks.refusals(
                team.pk,
                recipients.numbers,
                from_number=number.phone_number,
                account_id=number.connection.account_id,
                names_for=names_for,
            )
        ]

    text = clean_text(text)
    errors["text"] += text_problems(text)
    suffix, first = "", set()
    if number is not None and recipients.numbers:
        suffix = team_settings.opt_out_suffix(team)
        if suffix:
            first = team_settings.first_contacts(team, number.phone_number, recipients.numbers)
    if suffix and first and not errors["text"]:
        errors["text"] += [
            f"{problem} (The opt-out line the team adds to a first message counts too.)"
            for problem in text_problems(text + suffix)
        ]
    if not text.strip() and not all_files and not file_errors:
        errors["text"].append(
            next(v.message for v in limits.check_message("", [], 1) if v.code == "empty_message")
        )

    merged: dict[str, str] = {}
    skipped: list[tuple[str, str]] = []
    numbers = recipients.numbers
    if template is not None and not errors["text"]:
        errors["text"] += _merge_problems(team, text, group=group and len(numbers) > 1)
        if not errors["text"] and not errors["to"] and fields_in(text):
            for item in template_library.merge_for(
                team, text, numbers, policy=template.missing_policy, fallback=template.fallback
            ):
                if item.skipped_because:
                    skipped.append((item.number, item.skipped_because))
                else:
                    merged[item.number] = item.text
                    errors["text"] += [
                        f"{format_number(item.number)}: {p}" for p in text_problems(item.text)
                    ]
            numbers = [n for n in numbers if n not in dict(skipped)]
            if not numbers:
                errors["to"].append(
                    "Every recipient would be skipped: "
                    + "; ".join(f"{format_number(n)} — {why}" for n, why in skipped)
                    + ". Fill in their contacts, or give the template a fallback."
                )

    if send_at is not None:
        try:
            scheduling.check_future(send_at, scheduling.zone_for(team, schedule_zone))
        except scheduling.ScheduleInvalid as invalid:
            errors["send_at"].append(str(invalid))

    errors["attachments"] += list(file_errors)
    errors["attachments"] += budget_problems(all_files, fit_images=fit_images)

    if any(errors.values()):
        raise ComposeInvalid(errors)
    if fit_images and not check_only:
        try:
            all_files = fit_photos(all_files)
        except media.MediaError as error:
            raise ComposeInvalid({"attachments": [error.message]}) from None
    return Outgoing(
        membership=membership,
        sender=number,
        recipients=numbers,
        text=text,
        files=all_files,
        group=group and len(numbers) > 1,
        drafts=list(drafts),
        duplicates=recipients.duplicates,
        opt_out_suffix=suffix,
        first_contacts=first,
        tags=expanded.tags,
        merged=merged,
        skipped=skipped,
        send_at=send_at,
        schedule_zone=scheduling.zone_for(team, schedule_zone).key if send_at else "",
    )


def _merge_problems(team, text: str, *, group: bool) -> list[str]:
    """Why a template's text cannot be merged: a malformed or unknown field, or fields in one
    group message (which has a single text for everyone)."""
    try:
        fields = fields_in(text)
        unknown = template_library.unknown_field_message(team, text)
    except TemplateError as error:
        return [str(error)]
    if unknown:
        return [unknown]
    if fields and group:
        return [
            "A group message has one text for everyone, so its merge fields cannot be filled "
            "in. Send a separate message to each recipient, or remove the fields."
        ]
    return []


def submit(outgoing: Outgoing, *, origin: str = "") -> list[OutboundMessage]:
    """Create the message(s) of a prepared submission and hand them to the outbox.

    ``origin`` is the address the portal was reached at by the request that wrote them
    (``scheme://host``), kept for the links in emails about them.

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
                    origin=origin[:200],
                    connection=outgoing.sender.connection,
                    sender_number=outgoing.sender,
                    from_number=outgoing.sender.phone_number,
                    created_by=user,
                    text=outgoing.text_for(batch),
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
            release_after_commit(released)
            signals.messages_created.send(sender=OutboundMessage, messages=created)
            if outgoing.send_at is not None:
                states.schedule(
                    [message.pk for message in created], outgoing.send_at, outgoing.schedule_zone
                )
                for message in created:  # callers show what they made as it is now
                    message.refresh_from_db(
                        fields=["status", "scheduled_for", "scheduled_zone", "next_attempt_at"]
                    )
            else:
                states.enqueue([message.pk for message in created])
            scheduled = {"send_at": outgoing.send_at.isoformat()} if outgoing.send_at else {}
            audit.record_each(
                AuditAction.MESSAGE_QUEUED,
                team=team,
                items=[
                    (
                        ("outboundmessage", message.pk, f"Message {message.pk}"),
                        {"from": message.from_number, "to": ", ".join(batch), **scheduled},
                    )
                    for message, batch in zip(created, batches, strict=True)
                ],
            )
    except BaseException:
        for name in new_names:
            delete_stored(name)
        raise
    return created


def _attachment_row(message, position: int, file: media.MediaFile) -> Attachment:
    attachment = Attachment(
        **stored_file_fields(file), message=message, position=position, was_resized=file.was_resized
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
    send_at=None,
    schedule_zone: str = "",
    template=None,
) -> list[OutboundMessage]:
    """Everything for a caller without a form (the command line, the REST API): ingest files
    from paths, check, create and enqueue — or schedule, with ``send_at`` (an aware moment in
    the future, refused under ``send_at`` otherwise). Raises ComposeInvalid with messages by
    field."""
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
        send_at=send_at,
        schedule_zone=schedule_zone,
        template=template,
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
    skipped = ""
    if outgoing.skipped:
        skipped = (
            f" Skipped {len(outgoing.skipped)}: "
            + "; ".join(f"{format_number(n)} ({why})" for n, why in outgoing.skipped)
            + "."
        )
    if outgoing.send_at is not None:
        when = scheduling.describe(outgoing.send_at, outgoing.schedule_zone)
        return (
            f"Scheduled for {when}: {what}{with_files}{merged}. Until then you can change or "
            f"cancel {'it' if len(created) == 1 else 'them'} in the Scheduled folder.{skipped}"
        )
    return (
        f"Queued: {what}{with_files}{merged} — not sent yet. The outbox shows when "
        f"{'it is' if len(created) == 1 else 'they are'} sent and delivered.{skipped}"
    )


def quiet_hours_warning(outgoing: Outgoing) -> str:
    """A warning for a person sending during the team's quiet hours ("" outside them)."""
    return quiet_hours.warning(outgoing.membership.team, outgoing.recipients)


def fit_report(outgoing: Outgoing) -> list[str]:
    """One line per file that was reduced to fit, with its size before and after."""
    return [
        f"“{f.name}”: {limits.format_size(f.original_size)} → {limits.format_size(f.size)}"
        for f in outgoing.files
        if f.was_resized
    ]
