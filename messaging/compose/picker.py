"""Message templates meet the compose page: picking one, and storing a template's files.

Picking a template fills the text — merged with the one recipient when that recipient is a
contact, else left with its fields, which are merged for each recipient when the message is
queued (`submission.prepare`) — and makes the template's files drafts of the compose page or
reply box it was picked on. A template's files are stored as compose stores files (checked and
normalised by `compose.media`, bytes in the private storage); a draft of one names the same
stored file, as "send again" does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from messaging.compose import media
from messaging.compose.drafts import (
    delete_stored,
    draft_of_attachment,
    release_after_commit,
    store_bytes,
    stored_file_fields,
)
from messaging.compose.uploads import ingest_upload
from messaging.message_templates import library
from messaging.message_templates.merge import TemplateError, contact_values, fields_in, merge
from messaging.message_templates.segments import measure
from messaging.models import DraftAttachment, MessageTemplate, TemplateAttachment
from messaging.ringcentral import limits


@dataclass
class Picked:
    text: str
    note: str
    drafts: list[DraftAttachment] = field(default_factory=list)
    length: str = ""


def pick(membership, template: MessageTemplate, form_key, numbers) -> Picked:
    """What picking `template` puts on the page for recipients `numbers`."""
    text, note = template.text, ""
    try:
        has_fields = bool(fields_in(text))
    except TemplateError:
        has_fields = False
    if has_fields:
        contacts = library.contacts_by_number(membership.team, numbers)
        if len(numbers) == 1 and numbers[0] in contacts:
            merged = merge(
                text,
                contact_values(contacts[numbers[0]], numbers[0]),
                template.fallback if template.missing_policy == "fallback" else None,
            )
            text = merged.text
            note = f"Merged with {contacts[numbers[0]].display_name}."
            if merged.missing:
                note += " No value for: " + ", ".join(f"{{{m}}}" for m in merged.missing) + "."
        else:
            note = (
                "The fields stay in the text: each recipient gets their own message with them "
                "filled in when it is queued."
            )
    now = timezone.now()
    drafts = [
        draft_of_attachment(membership.user, membership.team, form_key, row, now)
        for row in template.attachments.all()
    ]
    return Picked(text=text, note=note, drafts=drafts, length=describe_length(text))


def describe_length(text: str) -> str:
    length = measure(text)
    if not text:
        return ""
    return (
        f"{length.units} UTF-16 units · {length.encoding} · {length.segments} SMS "
        f"segment{'s' if length.segments != 1 else ''}"
    )


def add_files(template: MessageTemplate, uploads) -> list[str]:
    """Check, normalise and store uploaded files for `template`; returns the problems (files
    that were refused), storing the others."""
    problems: list[str] = []
    stored: list[str] = []
    position = template.attachments.count()
    try:
        with transaction.atomic():
            for uploaded in uploads:
                if position >= limits.MAX_ATTACHMENTS:
                    problems.append(
                        f"“{uploaded.name}” not added: a message takes at most "
                        f"{limits.MAX_ATTACHMENTS} files."
                    )
                    continue
                try:
                    file = ingest_upload(uploaded)
                except media.MediaError as error:
                    problems.append(error.message)
                    continue
                name = store_bytes(template.team_id, file.data, file.content_type)
                stored.append(name)
                thumb = ""
                if file.thumbnail:
                    thumb = store_bytes(template.team_id, file.thumbnail, "image/jpeg", "-thumb")
                    stored.append(thumb)
                row = TemplateAttachment(
                    **stored_file_fields(file), template=template, position=position
                )
                row.file.name, row.thumbnail.name = name, thumb
                row.save()
                position += 1
    except BaseException:
        for name in stored:
            delete_stored(name)
        raise
    return problems


def release_template_file(sender, instance: TemplateAttachment, **kwargs) -> None:
    """A template's file row is gone (removed, or its template deleted): its bytes are deleted
    after the commit unless a message or a draft still names them (connected in apps.py)."""
    release_after_commit([instance.file.name, instance.thumbnail.name])
