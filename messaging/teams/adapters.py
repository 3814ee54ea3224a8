from allauth.account.adapter import DefaultAccountAdapter

from messaging.core.addresses import client_ip
from messaging.teams import actions, invitations


def user_display(user) -> str:
    """How allauth names a person (pages, emails): by the email they sign in with, never by the
    username allauth made up from it."""
    return user.email or user.get_username()


class AccountAdapter(DefaultAccountAdapter):
    """Our hooks into allauth: every new user starts with a personal team, signing up through
    an invitation link with the invited address needs no extra confirmation email, and a
    client's address is read past the trusted proxies."""

    def is_email_verified(self, request, email):
        # The visitor opened a signed link that was mailed to this address: that proves they
        # read its mail, as a confirmation link would. Only while the invitation is pending.
        key = request.session.get(invitations.SESSION_KEY) if request is not None else None
        if key and invitations.pending().filter(key=key, email__iexact=email).exists():
            return True
        return super().is_email_verified(request, email)

    def get_client_ip(self, request):
        # Sign-in limits count per client, not per proxy: behind a proxy every user would share
        # its address, and one person's failures would lock everybody out.
        return client_ip(request)

    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            actions.ensure_personal_team(user)
        return user
