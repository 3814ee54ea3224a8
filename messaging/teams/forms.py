from django import forms

from messaging.models import Membership, Role
from messaging.teams import actions, invitations


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
        role.choices = _role_choices(actions.grantable_roles(actor))
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
        choices=_role_choices(actions.GRANTABLE_ROLES),
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
