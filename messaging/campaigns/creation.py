"""Creating a campaign: checks everything, then writes the campaign and its recipients at once.

Recipients come from contacts (a tag, or a selection) or from an uploaded CSV or Excel file,
read a row at a time by messaging/contacts/reading.py. A file's columns become merge fields
(``merge.field_name``); its number column is found by its heading. Each recipient's text is
merged here, once, and stored with its SMS segments, so the pre-flight page and the feeder only
read rows. Recipients are written in chunks (``CHUNK``) inside one transaction: a file refused
halfway (more rows than allowed, a broken encoding further down) leaves nothing behind.

Numbers that are invalid, repeated, opted out or known landlines, and recipients without a
value for a merge field (when the policy is to skip them), are kept as skipped rows with the
reason, for the pre-flight page and the report.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Min

from messaging.campaigns import high_volume, preflight
from messaging.compose import media
from messaging.compose.drafts import delete_stored, store_bytes, stored_file_fields, stored_media
from messaging.compose.senders import find_sender, sender_refusal
from messaging.compose.submission import budget_problems, clean_text, text_problems
from messaging.compose.uploads import fit_photos, ingest_upload
from messaging.contacts import book, columns, reading
from messaging.contacts.exporting import custom_keys
from messaging.contacts.numbers import BadNumber, to_e164
from messaging.core.phones import format_number
from messaging.message_templates import merge, segments
from messaging.models import (
    Campaign,
    CampaignFile,
    CampaignRecipient,
    Contact,
    MissingFieldPolicy,
    RecipientSource,
    RecipientState,
    Role,
    SkipKind,
    TemplateAttachment,
)

# Recipients written per statement.
CHUNK = 2000
FIELDS = ("name", "senders", "text", "missing_policy", "recipients", "attachments", "start_at")


class CampaignInvalid(Exception):
    """The campaign cannot be created as asked; ``errors`` maps form fields to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = {name: list(found) for name, found in errors.items() if found}
        super().__init__(" ".join(m for found in self.errors.values() for m in found))


@dataclass
class Request:
    """What a person asked for, from the form (or any other caller)."""

    name: str
    sender_ids: Sequence[str]
    text: str
    missing_policy: str = MissingFieldPolicy.SKIP
    fallback_text: str = ""
    source: str = RecipientSource.TAG
    tag: str = ""
    contact_ids: Sequence[int] = ()
    upload: object | None = None  # a Django UploadedFile
    attachments: Sequence[object] = ()  # Django UploadedFiles
    # The files of the template the campaign starts from (TemplateAttachments): copied, so
    # later changes to the template leave the campaign as it was created.
    template_files: Sequence[TemplateAttachment] = ()
    start_at: datetime | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)


def max_recipients() -> int:
    return settings.CAMPAIGN_MAX_RECIPIENTS


# --- Recipients as rows -----------------------------------------------------------------------


@dataclass
class Row:
    position: int
    typed_number: str
    name: str
    values: dict[str, str]


def contact_rows(team, request: Request) -> Iterator[Row]:
    """Every number of the chosen contacts, in the order of their names."""
    contacts = Contact.objects.filter(team=team).order_by("name", "pk")
    if request.source == RecipientSource.TAG:
        contacts = contacts.filter(tags__team=team, tags__name__iexact=request.tag.strip())
    else:
        contacts = contacts.filter(pk__in=list(request.contact_ids))
    position = 0
    for contact in contacts.prefetch_related("numbers").iterator(chunk_size=CHUNK):
        for number in contact.numbers.all():
            position += 1
            values = merge.contact_values(contact, number.number)
            yield Row(position, number.number, contact.name, values)


class FileRows:
    """An uploaded list kept in storage while the campaign is created; its heading row read."""

    def __init__(self, team, upload):
        limit = settings.CONTACTS_IMPORT_MAX_BYTES
        if upload.size > limit:
            raise reading.FileRefused(
                f"The file is {upload.size / 1e6:.1f} MB; a list may be up to "
                f"{limit / 1e6:.0f} MB. Split it into several campaigns."
            )
        head = upload.read(reading.SAMPLE_BYTES)
        upload.seek(0)
        self.kind = reading.kind_of(head)
        self.encoding = reading.encoding_of(head) if self.kind == reading.CSV else ""
        self.file_name = (upload.name or "list")[-200:]
        self.stored = default_storage.save(
            f"campaigns/{team.pk}/lists/{uuid.uuid4().hex}.{self.kind}", upload
        )
        try:
            headers, _ = reading.header_and_preview(self.stored, self.kind, self.encoding, 1)
        except reading.FileRefused:
            self.discard()
            raise
        self.headers = [h or f"Column {i + 1}" for i, h in enumerate(headers)]
        self.fields = [merge.field_name(h) for h in self.headers]
        mapping = columns.guess_mapping(self.headers)
        self.number_column = mapping.index("number") if "number" in mapping else None
        name_like = [i for i, target in enumerate(mapping) if target == "name"]
        self.name_column = name_like[0] if name_like else None

    def problems(self) -> list[str]:
        if self.number_column is None:
            return [
                f"“{self.file_name}” has no column of phone numbers. Name the column with the "
                "numbers “Phone”, “Mobile” or “Number” (its columns are: "
                + ", ".join(f"“{h}”" for h in self.headers[:12])
                + ")."
            ]
        return []

    def rows(self) -> Iterator[Row]:
        with reading.rows(self.stored, self.kind, self.encoding) as found:
            next(found, None)  # the heading
            for line, cells in found:
                values = {}
                for name, cell in zip(self.fields, cells, strict=False):
                    if name and name not in values:
                        values[name] = cell
                number = cells[self.number_column] if self.number_column < len(cells) else ""
                name = ""
                if self.name_column is not None and self.name_column < len(cells):
                    name = cells[self.name_column]
                values.setdefault("name", name)
                values.setdefault("first_name", name.partition(" ")[0])
                yield Row(line, number, name[:200], values)

    def discard(self) -> None:
        default_storage.delete(self.stored)


# --- Checks -----------------------------------------------------------------------------------


def known_fields(team, file_rows: FileRows | None) -> set[str]:
    if file_rows is not None:
        return set(file_rows.fields) | {"phone", "name", "first_name"}
    return set(merge.CONTACT_FIELDS) | {merge.field_name(k) for k in custom_keys(team)}


def field_problems(text: str, known: set[str], *, from_file: bool) -> list[str]:
    try:
        unknown = merge.unknown_fields(text, known)
    except merge.TemplateError as error:
        return [str(error)]
    if not unknown:
        return []
    listed = ", ".join("{" + name + "}" for name in unknown)
    where = "the file has no column for it" if from_file else "contacts have no such field"
    several = len(unknown) > 1
    return [
        f"The text uses {listed}, but {where.replace('it', 'them') if several else where}. "
        "Remove the field or choose a list that has it: "
        + ", ".join("{" + k + "}" for k in sorted(known))
        + "."
    ]


def find_high_volume_sender(membership, value) -> object | None:
    """The High Volume number ``value`` (its id) names among the member's, or None."""
    text = str(value or "").strip()
    for number in high_volume.numbers_for(membership.user, membership.team):
        if text == str(number.pk):
            return number
    return None


def check_senders(membership, sender_ids, *, with_files: bool) -> tuple[list, list[str]]:
    numbers, problems = [], []
    chosen = list(dict.fromkeys(str(v).strip() for v in sender_ids if str(v).strip()))
    for value in chosen:
        number = find_sender(membership.user, membership.team, value)
        number = number or find_high_volume_sender(membership, value)
        if number is None:
            problems.append("Choose numbers you may send from.")
            continue
        if high_volume.is_high_volume_number(number):
            problems += high_volume_problems(number, len(chosen), with_files=with_files)
            numbers.append(number)
            continue
        refusal = sender_refusal(number, with_files=with_files)
        if refusal:
            problems.append(refusal)
        else:
            numbers.append(number)
    if not numbers and not problems:
        problems.append("Choose at least one number to send from.")
    return numbers, problems


def high_volume_problems(number, chosen: int, *, with_files: bool) -> list[str]:
    """A High Volume number sends a text-only campaign, alone."""
    shown = format_number(number.phone_number)
    problems = []
    if with_files:
        problems.append(
            f"{shown} is a High Volume SMS number: it sends text only. Remove the files, or "
            "choose standard numbers for an MMS campaign."
        )
    if chosen > 1:
        problems.append(
            f"{shown} is a High Volume SMS number: it sends the whole campaign by itself. "
            "Choose only it, or only standard numbers."
        )
    return problems


# --- Creation ---------------------------------------------------------------------------------


def create(membership, request: Request, *, now: datetime | None = None) -> Campaign:
    """Check ``request`` and create the campaign (not started); raises ``CampaignInvalid``."""
    if not membership.can(Role.SENDER):
        raise CampaignInvalid({"name": ["Creating a campaign needs the sender role."]})
    team = membership.team
    errors: dict[str, list[str]] = {name: list(request.errors.get(name, [])) for name in FIELDS}
    name = " ".join((request.name or "").split())[:120]
    if not name:
        errors["name"].append("Give the campaign a name.")
    text = clean_text(request.text)
    errors["text"] += text_problems(text)
    if request.missing_policy not in MissingFieldPolicy.values:
        errors["missing_policy"].append("Choose what happens when a field has no value.")
    fallback = " ".join((request.fallback_text or "").split())[:100]
    if request.missing_policy == MissingFieldPolicy.FALLBACK and not fallback:
        errors["missing_policy"].append("Write the fallback text, or choose to skip recipients.")

    files, file_problems = template_copies(request.template_files)
    for upload in request.attachments:
        try:
            files.append(ingest_upload(upload))
        except media.MediaError as error:
            file_problems.append(error.message)
    errors["attachments"] += file_problems + budget_problems(files, fit_images=True)
    if not text.strip() and not files and not errors["text"]:
        errors["text"].append("Write the text of the campaign.")
    senders, problems = check_senders(membership, request.sender_ids, with_files=bool(files))
    errors["senders"] += problems

    file_rows = None
    if request.source == RecipientSource.FILE:
        if request.upload is None:
            errors["recipients"].append("Choose the CSV or Excel file with the recipients.")
        else:
            try:
                file_rows = FileRows(team, request.upload)
            except reading.FileRefused as refused:
                errors["recipients"].append(f"{(request.upload.name or '')[:80]}: {refused}")
            else:
                errors["recipients"] += file_rows.problems()
    elif request.source == RecipientSource.TAG:
        if book.find_tag(team.pk, request.tag) is None:
            errors["recipients"].append("Choose one of the team's tags.")
    elif request.source == RecipientSource.SELECTION:
        if not request.contact_ids:
            errors["recipients"].append("Choose the contacts to send to.")
    else:
        errors["recipients"].append("Choose who the campaign goes to.")
    if not errors["text"] and not errors["recipients"]:
        errors["text"] += field_problems(
            text, known_fields(team, file_rows), from_file=file_rows is not None
        )
    if any(errors.values()):
        if file_rows is not None:
            file_rows.discard()
        raise CampaignInvalid(errors)

    stored: list[str] = []
    try:
        if files:
            try:
                files = fit_photos(files)
            except media.MediaError as error:
                raise CampaignInvalid({"attachments": [error.message]}) from None
        for file in files:
            file.stored_name = store_bytes(team.pk, file.data, file.content_type)
            stored.append(file.stored_name)
            if file.thumbnail:
                file.thumbnail_name = store_bytes(team.pk, file.thumbnail, "image/jpeg", "-thumb")
                stored.append(file.thumbnail_name)
        with transaction.atomic():
            campaign = Campaign.objects.create(
                team=team,
                created_by=membership.user,
                name=name,
                text=text,
                missing_policy=request.missing_policy,
                fallback_text=fallback,
                source=request.source,
                source_label=(file_rows.file_name if file_rows else request.tag.strip())[:200],
                fields=file_rows.fields if file_rows else [],
                start_at=request.start_at,
                uses_high_volume=any(high_volume.is_high_volume_number(s) for s in senders),
            )
            campaign.senders.set(senders)
            for position, file in enumerate(files):
                row = CampaignFile(
                    **stored_file_fields(file),
                    campaign=campaign,
                    position=position,
                    was_resized=file.was_resized,
                )
                row.file.name = file.stored_name
                row.thumbnail.name = file.thumbnail_name or ""
                row.save()
            rows = file_rows.rows() if file_rows else contact_rows(team, request)
            count = write_recipients(campaign, rows)
            if count == 0:
                raise CampaignInvalid({"recipients": ["The list has no recipients."]})
            if count > max_recipients():
                raise CampaignInvalid(
                    {
                        "recipients": [
                            f"The list has {count:,} recipients; a campaign sends to at most "
                            f"{max_recipients():,}. Split it into several campaigns."
                        ]
                    }
                )
            mark_duplicates(campaign)
    except reading.FileRefused as refused:
        for name_ in stored:
            delete_stored(name_)
        raise CampaignInvalid({"recipients": [f"{file_rows.file_name[:80]}: {refused}"]}) from None
    except BaseException:
        for name_ in stored:
            delete_stored(name_)
        raise
    finally:
        if file_rows is not None:
            file_rows.discard()
    # Consent and landline facts are looked up again when the campaign starts.
    preflight.mark_unsendable(campaign)
    return campaign


def template_copies(rows: Sequence[TemplateAttachment]) -> tuple[list[media.MediaFile], list[str]]:
    """The template's files read for the campaign, and the problems (a file gone from storage)."""
    files, problems = [], []
    for row in rows:
        try:
            files.append(template_file(row))
        except OSError:
            problems.append(
                f"“{row.original_name}” of the template is no longer available. Pick the "
                "template again, or attach the file yourself."
            )
    return files, problems


def replace_files(campaign: Campaign, files: Sequence[media.MediaFile]) -> None:
    """``files`` as the files of ``campaign``, which has not started (so no message shares the
    old files' bytes yet); the old bytes are deleted once the change is committed and the new
    ones if it is not. Call inside the transaction that changes the campaign."""
    old = [name for row in campaign.files.all() for name in (row.file.name, row.thumbnail.name)]
    stored: list[str] = []

    def delete_old() -> None:
        for name in old:
            if name:
                delete_stored(name)

    transaction.on_commit(delete_old)
    try:
        campaign.files.all().delete()
        store_files(campaign, files, stored)
    except BaseException:
        for name in stored:
            delete_stored(name)
        raise


def store_files(campaign: Campaign, files: Sequence[media.MediaFile], stored: list[str]) -> None:
    """Store the bytes of ``files`` (their names added to ``stored``) and write their rows."""
    for position, file in enumerate(files):
        row = CampaignFile(
            **stored_file_fields(file),
            campaign=campaign,
            position=position,
            was_resized=file.was_resized,
        )
        row.file.name = store_bytes(campaign.team_id, file.data, file.content_type)
        stored.append(row.file.name)
        if file.thumbnail:
            row.thumbnail.name = store_bytes(
                campaign.team_id, file.thumbnail, "image/jpeg", "-thumb"
            )
            stored.append(row.thumbnail.name)
        row.save()


def template_file(row: TemplateAttachment) -> media.MediaFile:
    """A template's file as a new file of the campaign: its bytes (and preview) are read now,
    so a file gone from storage is a problem of the form, and stored again under new names
    when the campaign is written."""
    with default_storage.open(row.file.name, "rb") as handle:
        data = handle.read()
    thumbnail = None
    if row.thumbnail.name:
        with default_storage.open(row.thumbnail.name, "rb") as handle:
            thumbnail = handle.read()
    # Already fitted once when added to the template; shrinking it again would only lose quality.
    return replace(
        stored_media(row, fittable=False),
        _data=data,
        loader=None,
        path=None,
        stored_name=None,
        thumbnail=thumbnail,
        thumbnail_name="",
    )


def recipient_row(campaign: Campaign, row: Row) -> CampaignRecipient:
    """One row as a recipient: its number in E.164 and its merged text, or why it is skipped."""
    recipient = CampaignRecipient(
        campaign=campaign, position=row.position, name=row.name, values=row.values
    )
    typed = (row.typed_number or "").strip()
    # A cell may hold several numbers; a campaign texts the first.
    first = columns.NUMBER_SEPARATORS.split(typed)[0].strip() if typed else ""
    try:
        recipient.phone_number = to_e164(first)
    except BadNumber as bad:
        recipient.phone_number = typed[:40]
        recipient.state = RecipientState.SKIPPED
        recipient.skip_kind = SkipKind.INVALID
        recipient.skip_reason = str(bad) if typed else "No number in this row."
        return recipient
    values = dict(row.values)
    values["phone"] = recipient.phone_number
    recipient.values = values
    fallback = campaign.fallback_text if campaign.missing_policy == "fallback" else None
    merged = merge.merge(campaign.text, values, fallback=fallback)
    recipient.text = merged.text
    recipient.segments = min(segments.measure(merged.text).segments, 32767)
    if merged.missing and campaign.missing_policy == MissingFieldPolicy.SKIP:
        recipient.state = RecipientState.SKIPPED
        recipient.skip_kind = SkipKind.MISSING_FIELD
        listed = ", ".join("{" + name + "}" for name in merged.missing)
        recipient.skip_reason = f"No value for {listed}."
    return recipient


def write_recipients(campaign: Campaign, rows) -> int:
    """Merge and store every row, CHUNK at a time; the number of rows written."""
    batch: list[CampaignRecipient] = []
    count = 0
    for row in rows:
        batch.append(recipient_row(campaign, row))
        count += 1
        if count > max_recipients():
            return count
        if len(batch) >= CHUNK:
            CampaignRecipient.objects.bulk_create(batch)
            batch = []
    if batch:
        CampaignRecipient.objects.bulk_create(batch)
    return count


def mark_duplicates(campaign: Campaign) -> int:
    """A number listed again gets one message: every later row of it is skipped (in SQL)."""
    numbered = CampaignRecipient.objects.filter(campaign=campaign).exclude(
        skip_kind=SkipKind.INVALID
    )
    firsts = numbered.values("phone_number").annotate(first=Min("id")).values("first")
    return numbered.exclude(pk__in=firsts).update(
        state=RecipientState.SKIPPED,
        skip_kind=SkipKind.DUPLICATE,
        skip_reason="The same number is earlier in the list; it gets one message.",
    )


def update(
    campaign: Campaign,
    *,
    name: str,
    text: str,
    missing_policy: str,
    fallback_text: str,
    start_at: datetime | None,
    template_files: Sequence[TemplateAttachment] | None = None,
) -> None:
    """Change a campaign that has not started: its texts are merged again, CHUNK at a time.
    ``template_files``, when given (a template was picked), replace the campaign's files.
    Raises ``CampaignInvalid``; a started campaign cannot be changed."""
    name = " ".join((name or "").split())[:120]
    text = clean_text(text)
    fallback = " ".join((fallback_text or "").split())[:100]
    errors: dict[str, list[str]] = {
        "name": [],
        "text": [],
        "missing_policy": [],
        "senders": [],
        "attachments": [],
    }
    files = None
    if template_files is not None:
        files, errors["attachments"] = template_copies(template_files)
        errors["attachments"] += budget_problems(files, fit_images=True)
        if files:
            for sender in campaign.senders.all():
                refusal = sender_refusal(sender, with_files=True)
                if refusal:
                    errors["senders"].append(refusal)
    if not name:
        errors["name"].append("Give the campaign a name.")
    errors["text"] += text_problems(text)
    if missing_policy == MissingFieldPolicy.FALLBACK and not fallback:
        errors["missing_policy"].append("Write the fallback text, or choose to skip recipients.")
    if not errors["text"]:
        if campaign.source == RecipientSource.FILE:
            known = set(campaign.fields) | {"phone", "name", "first_name"}
        else:
            known = known_fields(campaign.team, None)
        errors["text"] += field_problems(
            text, known, from_file=campaign.source == RecipientSource.FILE
        )
    has_files = bool(files) if files is not None else campaign.files.exists()
    if not text.strip() and not has_files:
        errors["text"].append("Write the text of the campaign.")
    if any(errors.values()):
        raise CampaignInvalid(errors)
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if not locked.is_editable:
            raise CampaignInvalid(
                {
                    "name": [
                        f"This campaign is {locked.get_status_display().lower()}: it can no "
                        "longer be changed."
                    ]
                }
            )
        locked.name, locked.text, locked.start_at = name, text, start_at
        locked.missing_policy, locked.fallback_text = missing_policy, fallback
        locked.save()
        # Recipients skipped for a reason the text does not decide keep it.
        again = CampaignRecipient.objects.filter(campaign=locked).filter(
            skip_kind__in=["", SkipKind.MISSING_FIELD]
        )
        last = 0
        while True:
            chunk = list(again.filter(pk__gt=last).order_by("pk")[:CHUNK])
            if not chunk:
                break
            last = chunk[-1].pk
            for recipient in chunk:
                fresh = recipient_row(
                    locked,
                    Row(
                        recipient.position, recipient.phone_number, recipient.name, recipient.values
                    ),
                )
                recipient.text, recipient.segments = fresh.text, fresh.segments
                recipient.state, recipient.skip_kind = fresh.state, fresh.skip_kind
                recipient.skip_reason = fresh.skip_reason
            CampaignRecipient.objects.bulk_update(
                chunk, ["text", "segments", "state", "skip_kind", "skip_reason"]
            )
        # Last in the transaction: nothing after it can fail and leave the new bytes behind.
        if files is not None:
            replace_files(locked, files)
    campaign.refresh_from_db()
