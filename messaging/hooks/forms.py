"""The form a team admin registers a webhook endpoint with."""

from django import forms

from messaging.hooks import addresses
from messaging.models import HookEvent


class EndpointForm(forms.Form):
    url = forms.URLField(
        label="URL",
        max_length=2000,
        assume_scheme="https",
        help_text="Where events are posted (https://…). Private and local addresses are refused.",
    )
    description = forms.CharField(max_length=200, required=False)
    events = forms.MultipleChoiceField(
        choices=HookEvent.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Pick at least one event."},
    )

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            addresses.check(url)
        except addresses.UnsafeAddress as refused:
            raise forms.ValidationError(str(refused)) from None
        return url
