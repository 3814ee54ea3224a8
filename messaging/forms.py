from django import forms

from . import compose, invitations, media, teams
from .models import Membership, Role

# Teams


class TeamForm(forms.Form):
    name = forms.CharField(
        label="Team name",
        max_length=100,
        help_text="Shown to everyone in the team, for example your office or department.",
        widget=forms.TextInput(attrs={"autocomplete": "organization"}),
    )

    def clean_name(self):
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError("Enter a name for the team.")
        return name


def _role_choices(roles):
    return [(role, Role(role).label) for role in roles]


ROLE_HELP = (
    "Admins manage members, invitations and RingCentral links; senders compose and send; "
    "viewers read the outbox."
)


class InvitationForm(forms.Form):
    email = forms.EmailField(
        label="Email address",
        max_length=254,
        help_text="The invitation link is sent here and only works for this address.",
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    role = forms.ChoiceField(label="Role", help_text=ROLE_HELP)

    def __init__(self, *args, actor: Membership, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        role = self.fields["role"]
        role.choices = _role_choices(teams.grantable_roles(actor))
        role.initial = Role.SENDER
        role.error_messages["invalid_choice"] = (
            "Choose one of the roles listed."
            if actor.role == Role.OWNER
            else "Choose sender or viewer: only the team's owner can invite admins."
        )

    def clean_email(self):
        email = invitations.normalize_email(self.cleaned_data["email"])
        reason = invitations.duplicate_reason(self.actor.team, email)
        if reason:
            raise forms.ValidationError(reason)
        return email


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(
        label="Role",
        choices=_role_choices(teams.GRANTABLE_ROLES),
        help_text=ROLE_HELP,
        error_messages={
            "invalid_choice": (
                "Choose admin, sender or viewer. To hand the team over, use “Transfer ownership”."
            )
        },
    )


class TransferOwnershipForm(forms.Form):
    member = forms.ModelChoiceField(
        label="New owner",
        queryset=Membership.objects.none(),
        empty_label="Choose a member…",
        help_text="They become the owner; you stay in the team as an admin.",
        error_messages={"invalid_choice": "Choose someone who is a member of this team."},
    )

    def __init__(self, *args, actor: Membership, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["member"]
        field.queryset = (
            actor.team.memberships.exclude(pk=actor.pk)
            .select_related("user")
            .order_by("user__email")
        )
        field.label_from_instance = lambda m: f"{m.user.email} ({m.get_role_display().lower()})"


# Compose


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files from one input; empty files pass through (media.py explains them)."""

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
    """The compose page. Checking is done by messaging/compose.py (`prepare`), the same code
    the command line uses; this form only gathers the fields and shows the messages.

    After `is_valid()`, `outgoing` is the checked submission. Whatever the outcome, `ingested`
    lists the newly attached files that passed their own checks (so that the page can keep them
    as drafts), and `drafts` the earlier uploads that are still there.
    """

    # Plain fields: whether a value is acceptable is decided by compose.prepare, which reports
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
        initial=compose.Mode.SEPARATE,
        widget=forms.RadioSelect(choices=compose.Mode.CHOICES),
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

    def __init__(self, *args, membership, numbers, **kwargs):
        super().__init__(*args, **kwargs)
        self.membership = membership
        self.outgoing = None
        self.ingested = []
        self.drafts = []
        details, choices = {}, []
        for number in numbers:
            note = compose.sender_note(number)
            label = compose.format_number(number.phone_number)
            if number.label:
                label += f" · {number.label}"
            if note:
                label += f" ({note})"
            choices.append((str(number.pk), label))
            details[str(number.pk)] = {
                "data-mms": "1" if number.can_mms else "0",
                "data-mms-refusal": compose.sender_refusal(number, with_files=True) or "",
            }
            if number.is_fax or not number.can_sms:
                details[str(number.pk)]["disabled"] = True
        self.fields["sender"].widget = SenderSelect(
            choices=([("", "Choose a number…")] if len(choices) != 1 else []) + choices,
            details=details,
        )
        self.fields["attachments"].widget.attrs.update({"accept": media.ACCEPT})
        # compose.prepare names characters that cannot be sent in its own words.
        self.fields["text"].validators = []

    def upload_keys(self):
        return self.data.getlist("uploads") if hasattr(self.data, "getlist") else []

    def clean(self):
        cleaned = super().clean()
        file_errors = []
        for uploaded in cleaned.get("attachments") or []:
            try:
                self.ingested.append(compose.ingest_upload(uploaded))
            except media.MediaError as error:
                file_errors.append(error.message)
        user, team = self.membership.user, self.membership.team
        self.drafts, gone = compose.load_drafts(user, team, self.upload_keys())
        file_errors = gone + file_errors
        try:
            self.outgoing = compose.prepare(
                self.membership,
                sender=cleaned.get("sender"),
                to=cleaned.get("to"),
                text=cleaned.get("text"),
                files=self.ingested,
                drafts=self.drafts,
                mode=cleaned.get("mode") or compose.Mode.SEPARATE,
                fit_images=bool(cleaned.get("fit_images")),
                file_errors=file_errors,
            )
        except compose.ComposeInvalid as invalid:
            for name, messages in invalid.errors.items():
                for message in messages:
                    self.add_error(name, message)
        return cleaned
