"""The Consent pages' forms: a contact opted out or back in by hand, and the team's sending
manners (quiet hours, the opt-out line)."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from django import forms
from django.conf import settings

from messaging.models import TeamMessagingSettings
from messaging.ringcentral import limits

OPT_OUT, OPT_IN = "opt_out", "opt_in"


def as_contact_number(raw: str) -> str:
    """A typed number in E.164; ValidationError with what is wrong."""
    text = (raw or "").strip()
    if not text:
        raise forms.ValidationError("Enter the contact's phone number.")
    if "\x00" in text or len(text) > 40:
        raise forms.ValidationError("That is not a phone number.")
    try:
        parsed = phonenumbers.parse(text, settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise forms.ValidationError(f"“{text[:40]}” is not a phone number.") from None
    if not phonenumbers.is_valid_number(parsed):
        raise forms.ValidationError(
            f"“{text[:40]}” is not a valid phone number. Include the country code (+44 …) for "
            f"numbers outside {settings.PHONE_DEFAULT_REGION}."
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class ManualConsentForm(forms.Form):
    number = forms.CharField(
        label="Contact's number",
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "tel"}),
    )
    action = forms.ChoiceField(
        label="Change",
        choices=[
            (OPT_OUT, "Opt out: no texts from any of the team's numbers"),
            (OPT_IN, "Opt back in: they agreed to get texts again"),
        ],
        widget=forms.RadioSelect,
        initial=OPT_OUT,
    )
    note = forms.CharField(
        label="Note",
        max_length=200,
        required=False,
        help_text="Why, for the history (for example: “Asked us by phone on Monday”).",
    )

    def clean_number(self):
        return as_contact_number(self.cleaned_data["number"])

    def clean_note(self):
        note = " ".join(self.cleaned_data["note"].split())
        if "\x00" in note:
            raise forms.ValidationError("The note contains characters that cannot be kept.")
        return note


class MessagingSettingsForm(forms.ModelForm):
    class Meta:
        model = TeamMessagingSettings
        fields = (
            "quiet_hours_enabled",
            "quiet_start",
            "quiet_end",
            "time_zone",
            "opt_out_line_enabled",
            "opt_out_line",
        )
        labels = {
            "quiet_hours_enabled": "Quiet hours",
            "quiet_start": "From",
            "quiet_end": "Until",
            "time_zone": "Time zone",
            "opt_out_line_enabled": "Opt-out line",
            "opt_out_line": "Line",
        }
        help_texts = {
            "quiet_hours_enabled": "Scheduled messages and campaigns wait while it is quiet "
            "hours; a message someone writes goes at once, with a warning.",
            "time_zone": "For example America/Chicago. Left empty: the portal's time zone.",
            "opt_out_line_enabled": "Add the line to the first message from a team number to a "
            "contact. It counts towards the message's length.",
        }
        widgets = {
            "quiet_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "quiet_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }

    def clean_time_zone(self):
        name = self.cleaned_data["time_zone"].strip()
        if not name:
            return ""
        if name not in available_timezones():
            raise forms.ValidationError(
                f"“{name[:64]}” is not a time zone. Use a name like America/New_York."
            )
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise forms.ValidationError(f"“{name[:64]}” is not a time zone.") from None
        return name

    def clean_opt_out_line(self):
        line = " ".join(self.cleaned_data["opt_out_line"].split())
        if "\x00" in line:
            raise forms.ValidationError("The line contains characters that cannot be sent.")
        if self.cleaned_data.get("opt_out_line_enabled") and not line:
            raise forms.ValidationError("Write the line, or turn it off.")
        if "STOP" not in line.upper():
            raise forms.ValidationError("Say how to opt out, with the word STOP.")
        problems = [v.message for v in limits.check_text(line)]
        if problems:
            raise forms.ValidationError(problems)
        return line

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("quiet_start"), cleaned.get("quiet_end")
        if cleaned.get("quiet_hours_enabled") and start and end and start == end:
            self.add_error("quiet_end", "Quiet hours must end at another time than they start.")
        return cleaned
