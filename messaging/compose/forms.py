from django import forms

from messaging.compose import media
from messaging.compose.drafts import load_drafts
from messaging.compose.senders import sender_note, sender_refusal
from messaging.compose.submission import ComposeInvalid, Mode, prepare
from messaging.compose.uploads import ingest_upload
from messaging.core.phones import format_number
from messaging.message_templates import library as template_library
from messaging.outbox import scheduling


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files from one input; empty files pass through (messaging/compose/media/ explains
    them)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("allow_empty_file", True)
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        items = data if isinstance(data, (list, tuple)) else [data]
        return [super(MultipleFileField, self).clean(item, initial) for item in items if item]


class SenderSelect(forms.Select):
    """A select whose options carry what the browser needs to mirror the server's checks:
    whether the number can send files, and why not."""

    def __init__(self, *args, details=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.details = details or {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        option["attrs"].update(self.details.get(str(value), {}))
        return option


class ComposeForm(forms.Form):
    """The compose page. Checking is done by messaging/compose/submission.py (`prepare`), the
    same code the command line uses; this form only gathers the fields and shows the messages.

    After `is_valid()`, `outgoing` is the checked submission. Whatever the outcome, `ingested`
    lists the newly attached files that passed their own checks (so that the page can keep them
    as drafts), and `drafts` the earlier uploads that are still there.
    """

    # Plain fields: whether a value is acceptable is decided by prepare, which reports
    # every problem at once and in the same words the command line uses.
    sender = forms.CharField(label="From", required=False, widget=SenderSelect)
    to = forms.CharField(
        label="To",
        required=False,
        help_text="Phone numbers, separated by commas or new lines.",
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
    )
    mode = forms.CharField(
        label="How to send",
        required=False,
        initial=Mode.SEPARATE,
        widget=forms.RadioSelect(choices=Mode.CHOICES),
    )
    text = forms.CharField(
        label="Message",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 6}),
    )
    attachments = MultipleFileField(label="Attach files", required=False)
    fit_images = forms.BooleanField(
        label="Reduce photos to fit",
        required=False,
        initial=True,
        help_text=(
            "When the files are over the size limit, photos are scaled down just enough, each "
            "keeping a fair share. Other files are never changed."
        ),
    )

    # The template picked (its fields are merged per recipient), and "Send later".
    template = forms.CharField(required=False, widget=forms.HiddenInput)
    send_later = forms.BooleanField(label="Send later", required=False)
    send_at = forms.CharField(
        label="Send at",
        required=False,
        help_text="In your time zone.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    # The browser's time zone, set by the page's script; the team's is used without it.
    time_zone = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, membership, numbers, form_key, **kwargs):
        super().__init__(*args, **kwargs)
        self.membership = membership
        # The compose page this form belongs to: only its own drafts are kept and sent.
        self.form_key = form_key
        self.outgoing = None
        self.ingested = []
        self.drafts = []
        details, choices = {}, []
        for number in numbers:
            note = sender_note(number)
            label = format_number(number.phone_number)
            if number.label:
                label += f" · {number.label}"
            if note:
                label += f" ({note})"
            choices.append((str(number.pk), label))
            details[str(number.pk)] = {
                "data-mms": "1" if number.can_mms else "0",
                "data-mms-refusal": sender_refusal(number, with_files=True) or "",
            }
        self.fields["sender"].widget = SenderSelect(
            choices=([("", "Choose a number…")] if len(choices) != 1 else []) + choices,
            details=details,
        )
        self.fields["attachments"].widget.attrs.update({"accept": media.ACCEPT})
        # prepare names characters that cannot be sent in its own words.
        self.fields["text"].validators = []

    def upload_keys(self):
        return self.data.getlist("uploads") if hasattr(self.data, "getlist") else []

    def clean(self):
        cleaned = super().clean()
        file_errors = []
        for uploaded in cleaned.get("attachments") or []:
            try:
                self.ingested.append(ingest_upload(uploaded))
            except media.MediaError as error:
                file_errors.append(error.message)
        user, team = self.membership.user, self.membership.team
        self.drafts, gone = load_drafts(user, team, self.form_key, self.upload_keys())
        file_errors = gone + file_errors
        template = self._template(cleaned.get("template"))
        send_at, zone = None, ""
        if cleaned.get("send_later"):
            found = scheduling.zone_for(team, cleaned.get("time_zone"))
            zone = found.key
            try:
                send_at = scheduling.local_moment(cleaned.get("send_at"), found)
            except scheduling.ScheduleInvalid as invalid:
                self.add_error("send_at", str(invalid))
        try:
            self.outgoing = prepare(
                self.membership,
                sender=cleaned.get("sender"),
                to=cleaned.get("to"),
                text=cleaned.get("text"),
                files=self.ingested,
                drafts=self.drafts,
                mode=cleaned.get("mode") or Mode.SEPARATE,
                fit_images=bool(cleaned.get("fit_images")),
                file_errors=file_errors,
                template=template,
                send_at=send_at,
                schedule_zone=zone,
            )
        except ComposeInvalid as invalid:
            for name, messages in invalid.errors.items():
                for message in messages:
                    self.add_error(name, message)
        return cleaned

    def _template(self, value):
        """The picked template, if the member may still read it."""
        value = (value or "").strip()
        if not value:
            return None
        found = template_library.visible_to(self.membership).filter(
            pk=int(value) if value.isascii() and value.isdigit() else 0
        )
        template = found.first()
        if template is None:
            self.add_error("text", "The template you picked is no longer there. Pick another.")
        return template
