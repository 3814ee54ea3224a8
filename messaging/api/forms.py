"""The form on the API keys page."""

from django import forms

from messaging.api.keys import ROLES
from messaging.models import Role


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What will use it, e.g. “Booking system”.", label="Name"
    )
    role = forms.ChoiceField(
        choices=(),
        label="Role",
        help_text="Viewer reads; sender also sends; admin also manages contacts' imports.",
    )

    def __init__(self, *args, membership, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [
            (role.value, role.label) for role in ROLES if membership.can(role)
        ]
        self.fields["role"].initial = Role.SENDER
