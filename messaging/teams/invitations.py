"""Team invitations: signed links, their life cycle, and accepting them.

Life cycle of an Invitation row::

    pending ──accept (same transaction as the Membership)──> accepted
       │  └──resend (new key: older links stop working, expiry starts again)──> pending
       ├──revoke──> revoked
       └──time──> expired ──resend──> pending

The link is /invitations/<token>/, where the token is `key` signed with a salt of its own and
a timestamp, so a token cannot be forged, reused for another purpose, or used after
INVITATION_MAX_AGE_DAYS, even if the row's own `expires_at` were moved. Anything wrong with a
link is an InvitationProblem, each with a status code and a page that says what to do.
"""

import logging
import uuid
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.models import BaseUserManager
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from messaging import audit
from messaging.core.addresses import absolute_url, origin_of
from messaging.models import AuditAction, Invitation, Membership, Role, Team
from messaging.teams import actions

log = logging.getLogger(__name__)

SALT = "mmsportal.invitations"
# Set when a visitor opens a valid link, read by the account adapter at sign-up: whoever holds
# the link proved they can read mail sent to the invited address.
SESSION_KEY = "invitation_key"


def max_age() -> timedelta:
    return timedelta(days=settings.INVITATION_MAX_AGE_DAYS)


def normalize_email(email: str) -> str:
    return BaseUserManager.normalize_email(email.strip())


def pending(queryset=None):
    """Invitations that can still be accepted."""
    queryset = Invitation.objects.all() if queryset is None else queryset
    return queryset.filter(accepted_at=None, revoked_at=None, expires_at__gt=timezone.now())


# --- Links ------------------------------------------------------------------------------------


def make_token(invitation: Invitation) -> str:
    return signing.dumps({"key": invitation.key.hex}, salt=SALT)


def invitation_path(invitation: Invitation) -> str:
    return reverse("invitation_accept", args=[make_token(invitation)])


def invitation_url(request, invitation: Invitation) -> str:
    # Behind a proxy the request may not know the public address; PUBLIC_BASE_URL does.
    return absolute_url(invitation_path(invitation), origin_of(request))


class InvitationProblem(Exception):
    """Why a link can't be used. `title` and `explanation` are shown to the visitor."""

    status = 400
    title = "This invitation link is broken"
    explanation = (
        "The link is incomplete or was changed after it was sent. Open the link straight from "
        "the invitation email, or copy all of it. If it still fails, ask the person who invited "
        "you for a new invitation."
    )

    def __init__(self, invitation: Invitation | None = None):
        super().__init__(self.title)
        self.invitation = invitation


class UnknownInvitation(InvitationProblem):
    status = 404
    title = "This invitation is no longer valid"
    explanation = (
        "It was replaced by a newer invitation email, or the team was deleted. Use the link in "
        "the most recent invitation email, or ask the team's owner or an admin for a new one."
    )


class ExpiredInvitation(InvitationProblem):
    status = 410
    title = "This invitation has expired"
    explanation = (
        "Invitations are valid for a limited time. Ask the person who invited you to send it "
        "again; you will get a new link."
    )


class RevokedInvitation(InvitationProblem):
    status = 410
    title = "This invitation was withdrawn"
    explanation = (
        "A team owner or admin cancelled it, so it can't be used. If you still need access, "
        "ask them for a new invitation."
    )


class UsedInvitation(InvitationProblem):
    status = 410
    title = "This invitation has already been used"
    explanation = (
        "Each invitation link works once, and someone has already joined with this one. If you "
        "need access, ask the team's owner or an admin for a new invitation."
    )


class WrongAccount(InvitationProblem):
    """The signed-in user can't show they own the invited address. Nothing is changed."""

    status = 403
    title = "This invitation is for someone else"

    @property
    def explanation(self):
        return (
            f"This invitation was sent to {self.invitation.email}, which is not a verified "
            "address of the account you are signed in with. Sign out, then sign in (or create "
            "an account) as that address and open the link again."
        )


def load(token: str) -> Invitation:
    """The invitation a link points at, whatever its state; InvitationProblem if the link
    itself is bad or too old."""
    try:
        data = signing.loads(token, salt=SALT, max_age=max_age())
    except signing.SignatureExpired:
        # Signed by us but old: name the team on the page if the row still exists.
        invitation = _find(signing.loads(token, salt=SALT))
        raise ExpiredInvitation(invitation) from None
    except (signing.BadSignature, ValueError):
        raise InvitationProblem from None
    invitation = _find(data)
    if invitation is None:
        raise UnknownInvitation
    return invitation


def _find(data) -> Invitation | None:
    try:
        key = uuid.UUID(hex=data["key"])
    except (TypeError, KeyError, ValueError, AttributeError):
        raise InvitationProblem from None
    return Invitation.objects.select_related("team", "invited_by").filter(key=key).first()


def check_usable(invitation: Invitation) -> None:
    if invitation.revoked_at is not None:
        raise RevokedInvitation(invitation)
    if invitation.accepted_at is not None:
        raise UsedInvitation(invitation)
    if invitation.expires_at <= timezone.now():
        raise ExpiredInvitation(invitation)


def is_for(invitation: Invitation, user) -> bool:
    return EmailAddress.objects.filter(
        user=user, verified=True, email__iexact=invitation.email
    ).exists()


# --- Creating, resending, revoking ------------------------------------------------------------


class DuplicateInvitation(ValueError):
    """The address already belongs to a member or has a pending invitation."""


def duplicate_reason(team: Team, email: str) -> str | None:
    member = team.memberships.filter(
        Q(user__email__iexact=email) | Q(user__emailaddress__email__iexact=email)
    )
    if member.exists():
        return f"{email} is already a member of {team.name}."
    if pending(team.invitations.filter(email__iexact=email)).exists():
        return (
            f"{email} already has a pending invitation to {team.name}. "
            "Resend it from the team page if it got lost."
        )
    return None


def create(actor: Membership, email: str, role: str) -> Invitation:
    """A new pending invitation. The address is re-checked under the team's lock so that two
    admins inviting the same person at once create one invitation, not two."""
    email = normalize_email(email)
    with transaction.atomic():
        team = Team.objects.select_for_update().get(pk=actor.team_id)
        actor = actions.reload_locked(actor)
        actions.refuse_if(actions.invite_refusal(actor, role))
        reason = duplicate_reason(team, email)
        if reason:
            raise DuplicateInvitation(reason)
        invitation = Invitation.objects.create(
            team=team,
            email=email,
            role=role,
            invited_by=actor.user,
            expires_at=timezone.now() + max_age(),
        )
        audit.record(
            AuditAction.MEMBER_INVITED,
            team=team,
            target=("invitation", invitation.pk, email),
            details={"role": role},
        )
        return invitation


def resend_refusal(actor: Membership, invitation: Invitation) -> str | None:
    if invitation.accepted_at is not None:
        return f"{invitation.email} already accepted this invitation."
    if invitation.revoked_at is not None:
        return "This invitation was revoked. Invite the person again instead."
    return actions.invite_refusal(actor, invitation.role)


def renew(actor: Membership, invitation: Invitation) -> Invitation:
    """Gives the invitation a new key and a full validity period. Links sent before stop
    working, so only the newest email can be used."""
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        actor = actions.reload_locked(actor)
        actions.refuse_if(resend_refusal(actor, invitation))
        invitation.key = uuid.uuid4()
        invitation.expires_at = timezone.now() + max_age()
        invitation.save(update_fields=["key", "expires_at"])
    return invitation


def revoke(invitation: Invitation) -> bool:
    """Withdraws a pending invitation; False if it had already been accepted or revoked."""
    return bool(
        Invitation.objects.filter(pk=invitation.pk, accepted_at=None, revoked_at=None).update(
            revoked_at=timezone.now()
        )
    )


def send_email(request, invitation: Invitation) -> bool:
    """Sends the invitation email; False (and a log line) if the mail server refused it, so
    the admin can be told to resend rather than seeing an error page."""
    inviter = invitation.invited_by
    context = {
        "invitation": invitation,
        "team": invitation.team,
        "inviter": (inviter.email if inviter else "") or "A team admin",
        "role": Role(invitation.role).label.lower(),
        "url": invitation_url(request, invitation),
        "expires_at": invitation.expires_at,
    }
    subject = " ".join(render_to_string("teams/email/invitation_subject.txt", context).split())
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("teams/email/invitation_body.txt", context),
        to=[invitation.email],
        reply_to=[inviter.email] if inviter and inviter.email else None,
    )
    message.attach_alternative(
        render_to_string("teams/email/invitation_body.html", context), "text/html"
    )
    try:
        message.send()
    except (OSError, ValueError):
        # smtplib's errors are OSErrors; a refused header is a ValueError.
        log.exception("invitation %s: sending the email failed", invitation.pk)
        return False
    return True


# --- Accepting --------------------------------------------------------------------------------


def accept(user, invitation: Invitation) -> tuple[Membership, bool]:
    """Makes `user` a member with the invitation's role; returns (membership, created).

    The invitation row is locked and re-checked, and `accepted_at` is stamped in the same
    transaction that creates the membership, so two clicks (or two people) can't both use it.
    A user who is already in the team keeps their role (created=False); an invitation that
    was still pending for them is closed so it leaves the team's pending list.
    """
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        existing = Membership.objects.filter(team_id=invitation.team_id, user=user).first()
        if existing is not None:
            if (
                invitation.accepted_at is None
                and invitation.revoked_at is None
                and is_for(invitation, user)
            ):
                invitation.accepted_at = timezone.now()
                invitation.accepted_by = user
                invitation.save(update_fields=["accepted_at", "accepted_by"])
            return existing, False
        check_usable(invitation)
        if not is_for(invitation, user):
            raise WrongAccount(invitation)
        membership = Membership.objects.create(
            team_id=invitation.team_id, user=user, role=invitation.role
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership, True
