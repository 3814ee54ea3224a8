"""The campaign forms: a new campaign, and the changes allowed before it starts.

A start time is typed in the team's time zone and stored in UTC; a time in the past or one
that does not exist on the clock that day (skipped by a daylight-saving change) is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django import forms
from django.utils import timezone

from messaging.campaigns import high_volume
from messaging.compose.senders import sender_note, sender_numbers
from messaging.consent import team_settings
from messaging.core.phones import format_number
from messaging.models import Contact, MissingFieldPolicy, RecipientSource, Tag

# Contacts offered as checkboxes; a larger list is better chosen by a tag or a file.
SELECTABLE_CONTACTS = 500


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


def parse_start(value, zone) -> tuple[datetime | None, str | None]:
    """A naive local time in ``zone`` as an aware one, or the reason it cannot be used."""
    if value is None:
        return None, None
    local = value.replace(tzinfo=zone)
    back = local.astimezone(UTC).astimezone(zone)
    if back.replace(tzinfo=None) != value:
        return None, (
            f"{value:%Y-%m-%d %H:%M} does not exist in {zone}: the clocks skip it for daylight "
            "saving time. Choose another time."
        )
    if local <= timezone.now():
        return None, "The start time is in the past. Choose a later time, or leave it empty."
    return local, None


class CampaignFields(forms.Form):
    name = forms.CharField(max_length=120)
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        required=False,
        help_text="Merge fields in braces: {first_name}, {company}, or a column of your file.",
    )
    missing_policy = forms.ChoiceField(
        choices=MissingFieldPolicy.choices,
        widget=forms.RadioSelect,
        initial=MissingFieldPolicy.SKIP,
        label="When a recipient has no value for a field",
    )
    fallback_text = forms.CharField(
        max_length=100,
        required=False,
        label="Fallback text",
        help_text="Put in place of a field that has no value, e.g. “there”.",
    )
    start_at = forms.DateTimeField(
        required=False,
        label="Start at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.team = team
        self.zone = team_settings.zone_of(team_settings.settings_for(team))
        self.fields[
            "start_at"
        ].help_text = (
            f"In the team's time zone, {self.zone}. Leave empty to start when you press Start."
        )

    def clean_start_at(self):
        value = self.cleaned_data.get("start_at")
        if value is not None and timezone.is_aware(value):
            value = timezone.make_naive(value, self.zone)
        start, problem = parse_start(value, self.zone)
        if problem:
            raise forms.ValidationError(problem)
        return start


class CampaignForm(CampaignFields):
    senders = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        label="Send from",
        help_text="Several numbers share the work, each at most 50 messages a minute.",
    )
    source = forms.ChoiceField(
        choices=RecipientSource.choices,
        widget=forms.RadioSelect,
        initial=RecipientSource.FILE,
        label="Recipients",
    )
    tag = forms.ChoiceField(required=False, label="Tag")
    contacts = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Contacts"
    )
    list_file = forms.FileField(
        required=False,
        label="List (CSV or Excel)",
        help_text="One row per recipient; a column headed “Phone” (or “Mobile”, “Number”) holds "
        "the numbers, and every column can be used as a merge field.",
    )
    attachments = forms.FileField(
        required=False,
        widget=MultipleFileInput,
        label="Files (MMS)",
        help_text="Sent to everyone; photos are reduced once to fit.",
    )

    field_order = [
        "name",
        "senders",
        "source",
        "list_file",
        "tag",
        "contacts",
        "text",
        "missing_policy",
        "fallback_text",
        "attachments",
        "start_at",
    ]

    def __init__(self, *args, membership, **kwargs):
        super().__init__(*args, team=membership.team, **kwargs)
        team = membership.team
        self.fields["senders"].choices = [
            (
                str(n.pk),
                format_number(n.phone_number)
                + (f" — {n.label}" if getattr(n, "label", "") else "")
                + (f" ({sender_note(n)})" if sender_note(n) else ""),
            )
            for n in sender_numbers(membership.user, team)
            if n.can_sms and not n.is_fax and not high_volume.is_high_volume_number(n)
        ]
        # High Volume numbers are kept inactive (no single texts), so compose does not list them.
        self.fields["senders"].choices += [
            (
                str(n.pk),
                format_number(n.phone_number)
                + (f" — {n.label}" if n.label else "")
                + " (High Volume SMS: text only, sends the campaign alone)",
            )
            for n in high_volume.numbers_for(membership.user, team)
        ]
        self.fields["tag"].choices = [("", "Choose a tag")] + [
            (t.name, t.name) for t in Tag.objects.filter(team=team).order_by("name")
        ]
        self.fields["contacts"].choices = [
            (str(c.pk), c.name or f"Contact {c.pk}")
            for c in Contact.objects.filter(team=team).order_by("name", "pk")[:SELECTABLE_CONTACTS]
        ]
