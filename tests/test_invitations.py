"""Invitations: the invite form and its email, the signed link, and every way a link can be
used, misused or go stale."""

import re
import socket
import time
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail, signing
from django.test import Client
from django.utils import timezone

from messaging.models import Invitation, Membership, Role
from messaging.teams import invitations
from messaging.teams.actions import SESSION_KEY

from .conftest import PASSWORD, make_user

LINK = re.compile(r"http://testserver(/invitations/[^/\s]+/)")


@pytest.fixture(autouse=True)
def _quick_passwords(settings):
    # Accounts are made in most tests; the production hasher's slowness would dominate the run.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def owner(team, alice):
    return team.memberships.get(user=alice)


@pytest.fixture
def invitation(owner):
    """charlie, who has an account but is not in Acme, invited as a sender."""
    return invitations.create(owner, "charlie@example.com", Role.SENDER)


def link(invitation) -> str:
    return invitations.invitation_path(invitation)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def token_signed_days_ago(invitation, days: int) -> str:
    class Backdated(signing.TimestampSigner):
        def timestamp(self):
            return signing.b62_encode(int(time.time()) - days * 86400)

    return Backdated(salt=invitations.SALT).sign_object({"key": invitation.key.hex})


def assert_nothing_joined(invitation, *users):
    invitation.refresh_from_db()
    assert invitation.accepted_at is None
    assert invitation.accepted_by is None
    for user in users:
        assert not Membership.objects.filter(team=invitation.team, user=user).exists()


# --- Inviting -------------------------------------------------------------------------------


def test_admin_invites_by_email_and_the_email_carries_a_signed_single_use_link(
    dana_client, dana, team
):
    response = dana_client.post(
        f"/teams/{team.slug}/invite/", {"email": "Newbie@Example.COM", "role": "viewer"}
    )

    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert invitation.email == "Newbie@example.com"
    assert invitation.role == Role.VIEWER
    assert invitation.invited_by == dana
    assert invitation.is_pending
    expected_expiry = timezone.now() + timedelta(days=7)
    assert abs(invitation.expires_at - expected_expiry) < timedelta(minutes=1)

    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["Newbie@example.com"]
    assert email.reply_to == ["dana@example.com"]
    assert "Acme" in email.subject and "dana@example.com" in email.subject
    path = LINK.search(email.body).group(1)
    assert path in email.alternatives[0][0]
    token = path.split("/")[2]
    assert signing.loads(token, salt=invitations.SALT) == {"key": invitation.key.hex}
    with pytest.raises(signing.BadSignature):
        signing.loads(token)  # another salt: the token is good for invitations only
    assert "viewer" in email.body
    assert b"Invitation sent to Newbie@example.com" in dana_client.get(response["Location"]).content


def test_validity_period_comes_from_the_setting(owner, settings):
    settings.INVITATION_MAX_AGE_DAYS = 2
    invitation = invitations.create(owner, "x@example.com", Role.SENDER)

    assert abs(invitation.expires_at - (timezone.now() + timedelta(days=2))) < timedelta(minutes=1)
    assert invitations.load(token_signed_days_ago(invitation, 1)) == invitation
    with pytest.raises(invitations.ExpiredInvitation):
        invitations.load(token_signed_days_ago(invitation, 3))


@pytest.mark.parametrize(
    "email",
    [
        "",
        "not-an-email",
        "bob@",
        "@example.com",
        "two words@example.com",
        "x@example.com\nBcc: y@example.com",
        "x@exa mple.com",
        "a" * 250 + "@example.com",
    ],
)
def test_bad_email_is_a_field_error_and_invites_nobody(alice_client, team, email):
    response = alice_client.post(f"/teams/{team.slug}/invite/", {"email": email, "role": "sender"})

    assert response.status_code == 200
    assert response.context["form"].errors["email"]
    assert b'id="id_email_error"' in response.content
    assert b'aria-invalid="true"' in response.content
    assert not Invitation.objects.exists()
    assert mail.outbox == []


@pytest.mark.parametrize("email", ["bob@example.com", "BOB@example.com", " bob@Example.com "])
def test_inviting_a_member_is_a_field_error(alice_client, team, email):
    response = alice_client.post(f"/teams/{team.slug}/invite/", {"email": email, "role": "sender"})

    assert response.status_code == 200
    assert "bob@example.com is already a member of Acme." in response.context["form"].errors[
        "email"
    ][0].replace("BOB", "bob").replace("Example", "example")
    assert not Invitation.objects.exists()
    assert mail.outbox == []


def test_inviting_a_member_by_a_secondary_address_is_a_field_error(alice_client, bob, team):
    EmailAddress.objects.create(user=bob, email="robert@example.org", verified=True)
    response = alice_client.post(
        f"/teams/{team.slug}/invite/", {"email": "robert@example.org", "role": "sender"}
    )

    assert response.status_code == 200
    assert "already a member" in response.context["form"].errors["email"][0]
    assert not Invitation.objects.exists()


def test_inviting_someone_with_a_pending_invitation_is_a_field_error(alice_client, invitation):
    response = alice_client.post(
        f"/teams/{invitation.team.slug}/invite/", {"email": "Charlie@example.com", "role": "viewer"}
    )

    assert response.status_code == 200
    assert "already has a pending invitation" in response.context["form"].errors["email"][0]
    assert Invitation.objects.count() == 1
    assert mail.outbox == []


def test_an_expired_or_revoked_invitation_does_not_block_a_new_one(alice_client, invitation):
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    first = alice_client.post(
        f"/teams/{invitation.team.slug}/invite/", {"email": invitation.email, "role": "viewer"}
    )
    invitations.revoke(Invitation.objects.latest("created_at"))
    second = alice_client.post(
        f"/teams/{invitation.team.slug}/invite/", {"email": invitation.email, "role": "viewer"}
    )

    assert (first.status_code, second.status_code) == (302, 302)
    assert Invitation.objects.filter(email=invitation.email).count() == 3
    assert len(mail.outbox) == 2


def test_the_same_address_cannot_get_two_pending_invitations_even_past_the_form(owner):
    invitations.create(owner, "twice@example.com", Role.SENDER)

    with pytest.raises(invitations.DuplicateInvitation):
        invitations.create(owner, "TWICE@example.com", Role.VIEWER)
    assert Invitation.objects.count() == 1


def test_invitation_is_kept_and_the_admin_warned_when_the_mail_server_is_down(
    alice_client, team, settings
):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port

    response = alice_client.post(
        f"/teams/{team.slug}/invite/", {"email": "x@example.com", "role": "sender"}, follow=True
    )

    assert response.status_code == 200
    assert Invitation.objects.get().email == "x@example.com"
    assert b"the email could not be sent" in response.content


# --- Accepting ------------------------------------------------------------------------------


def test_anonymous_visitor_sees_team_inviter_and_both_ways_in(client, invitation):
    # One link for the whole test: a link made a second later carries another timestamp.
    url = link(invitation)
    response = client.get(url)

    assert response.status_code == 200
    body = response.content.decode()
    assert "Join Acme" in body
    assert "alice@example.com" in body
    assert "charlie@example.com" in body
    assert "sender" in body
    path = url.replace(":", "%3A").replace("/", "%2F")
    assert f'href="/accounts/signup/?email=charlie%40example.com&amp;next={path}"' in body
    assert f'href="/accounts/login/?next={path}"' in body
    assert client.session[invitations.SESSION_KEY] == invitation.key.hex


def test_existing_user_signs_in_through_the_link_and_joins(client, invitation, charlie):
    url = link(invitation)  # one link: a link made a second later carries another timestamp
    login_page = client.get(f"/accounts/login/?next={url}")
    assert login_page.status_code == 200

    signed = client.post(
        "/accounts/login/",
        {"login": "charlie@example.com", "password": PASSWORD, "next": url},
    )
    assert signed.status_code == 302
    assert signed["Location"] == url
    page = client.get(link(invitation))
    assert b"Join Acme" in page.content
    assert b'<form method="post">' in page.content

    joined = client.post(link(invitation))

    assert joined.status_code == 302
    assert joined["Location"] == "/team/"
    membership = Membership.objects.get(team=invitation.team, user=charlie)
    assert membership.role == Role.SENDER
    invitation.refresh_from_db()
    assert invitation.accepted_by == charlie
    assert invitation.accepted_at is not None
    assert client.session[SESSION_KEY] == invitation.team_id
    team_page = client.get("/team/")
    assert team_page.context["team"] == invitation.team
    assert b"Welcome to Acme" in team_page.content


def test_opening_the_link_does_not_join_only_the_button_does(invitation, charlie):
    client = signed_in(charlie)

    client.get(link(invitation))

    assert_nothing_joined(invitation, charlie)


def test_new_user_signs_up_through_the_link_verified_and_joins(client, invitation):
    # The invited address is one nobody has an account for yet.
    Invitation.objects.filter(pk=invitation.pk).update(email="newcomer@example.com")
    invitation.refresh_from_db()
    # One link for the whole visit: a token made in another second is spelled differently.
    url = link(invitation)
    client.get(url)

    signup_page = client.get(f"/accounts/signup/?email=newcomer@example.com&next={url}")
    assert b'value="newcomer@example.com"' in signup_page.content
    signed_up = client.post(
        "/accounts/signup/",
        {
            "email": "newcomer@example.com",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "next": url,
        },
    )

    assert signed_up.status_code == 302
    assert signed_up["Location"] == url
    user = get_user_model().objects.get(email="newcomer@example.com")
    assert EmailAddress.objects.get(user=user).verified
    assert mail.outbox == []  # no confirmation email: the invitation link proved the address
    assert client.post(url)["Location"] == "/team/"
    assert Membership.objects.get(team=invitation.team, user=user).role == Role.SENDER
    assert Membership.objects.filter(user=user, team__is_personal=True).exists()
    invitation.refresh_from_db()
    assert invitation.accepted_by == user


def test_signing_up_with_another_address_through_the_link_still_needs_confirmation(
    client, invitation
):
    client.get(link(invitation))

    response = client.post(
        "/accounts/signup/",
        {
            "email": "someone-else@example.com",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "next": link(invitation),
        },
    )

    user = get_user_model().objects.get(email="someone-else@example.com")
    assert not EmailAddress.objects.get(user=user).verified
    assert response["Location"] != link(invitation)
    assert [m.to for m in mail.outbox] == [["someone-else@example.com"]]
    assert "_auth_user_id" not in client.session


def test_signing_up_after_the_invitation_was_revoked_is_not_verified_by_it(client, invitation):
    Invitation.objects.filter(pk=invitation.pk).update(email="newcomer@example.com")
    client.get(link(invitation))
    invitations.revoke(invitation)

    client.post(
        "/accounts/signup/",
        {"email": "newcomer@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )

    user = get_user_model().objects.get(email="newcomer@example.com")
    assert not EmailAddress.objects.get(user=user).verified


def test_anonymous_post_to_the_link_is_sent_to_sign_in_and_changes_nothing(client, invitation):
    response = client.post(link(invitation))

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=%2Finvitations%2F")
    assert_nothing_joined(invitation)


def test_the_link_matches_any_verified_address_of_the_account(invitation, bob):
    Invitation.objects.filter(pk=invitation.pk).update(email="bob.work@example.org")
    Membership.objects.filter(user=bob, team=invitation.team).delete()
    EmailAddress.objects.create(user=bob, email="Bob.Work@example.org", verified=True)

    response = signed_in(bob).post(link(invitation))

    assert response.status_code == 302
    assert Membership.objects.filter(team=invitation.team, user=bob).exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_wrong_account_is_told_whom_the_invitation_is_for_and_nothing_changes(invitation, method):
    mallory = make_user("mallory@example.com")
    response = getattr(signed_in(mallory), method)(link(invitation))

    assert response.status_code == 403
    assert b"This invitation is for someone else" in response.content
    assert b"sent to charlie@example.com" in response.content
    assert b"Sign out" in response.content
    assert_nothing_joined(invitation, mallory)


def test_an_unverified_matching_address_is_not_enough(invitation):
    mallory = make_user("mallory@example.com")
    EmailAddress.objects.create(user=mallory, email="charlie@example.org", verified=False)
    Invitation.objects.filter(pk=invitation.pk).update(email="charlie@example.org")

    response = signed_in(mallory).post(link(invitation))

    assert response.status_code == 403
    assert_nothing_joined(invitation, mallory)


def test_a_member_accepting_again_is_a_friendly_no_op(invitation, bob):
    # An admin invitation sent to someone who is already a sender must not promote them.
    Invitation.objects.filter(pk=invitation.pk).update(email="bob@example.com", role=Role.ADMIN)
    client = signed_in(bob)

    page = client.get(link(invitation))
    response = client.post(link(invitation))

    assert page.status_code == 200
    assert b"You are already in Acme" in page.content
    assert response.status_code == 302
    assert response["Location"] == "/team/"
    assert Membership.objects.get(team=invitation.team, user=bob).role == Role.SENDER
    assert Membership.objects.filter(team=invitation.team).count() == 2
    assert b"You are already a member of Acme" in client.get("/team/").content
    invitation.refresh_from_db()
    assert not invitation.is_pending  # closed, so it leaves the pending list


def test_the_person_who_used_the_link_may_open_it_again(invitation, charlie):
    client = signed_in(charlie)
    client.post(link(invitation))

    again = client.post(link(invitation))

    assert again.status_code == 302
    assert Membership.objects.filter(team=invitation.team, user=charlie).count() == 1


# --- Links that can't be used ----------------------------------------------------------------


def test_a_used_link_is_refused_to_anyone_else(invitation, charlie, client):
    signed_in(charlie).post(link(invitation))
    other = make_user("other@example.com")
    Invitation.objects.filter(pk=invitation.pk).update(email="other@example.com")

    for response in [client.get(link(invitation)), signed_in(other).post(link(invitation))]:
        assert response.status_code == 410
        assert b"already been used" in response.content
        assert b"ask the team" in response.content
    assert not Membership.objects.filter(team=invitation.team, user=other).exists()


@pytest.mark.parametrize("anonymous", [True, False])
def test_an_expired_invitation_is_refused_with_what_to_do(invitation, charlie, anonymous):
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    client = Client() if anonymous else signed_in(charlie)

    for response in [client.get(link(invitation)), client.post(link(invitation))]:
        assert response.status_code == 410
        assert b"This invitation has expired" in response.content
        assert b"send it again" in response.content
    assert_nothing_joined(invitation, charlie)


def test_a_link_signed_too_long_ago_is_expired_even_if_the_row_says_otherwise(invitation, charlie):
    token = token_signed_days_ago(invitation, 8)

    response = signed_in(charlie).post(f"/invitations/{token}/")

    assert response.status_code == 410
    assert b"This invitation has expired" in response.content
    assert b"Invitation to Acme from alice@example.com" in response.content
    assert_nothing_joined(invitation, charlie)


def test_a_revoked_invitation_is_refused(alice_client, invitation, charlie):
    revoked = alice_client.post(
        f"/teams/{invitation.team.slug}/invitations/{invitation.pk}/revoke/"
    )
    response = signed_in(charlie).post(link(invitation))

    assert revoked.status_code == 302
    assert response.status_code == 410
    assert b"This invitation was withdrawn" in response.content
    assert b"ask them for a new invitation" in response.content
    assert_nothing_joined(invitation, charlie)


def test_revoking_twice_says_so_and_keeps_the_first_time(alice_client, invitation):
    url = f"/teams/{invitation.team.slug}/invitations/{invitation.pk}/revoke/"
    alice_client.post(url)
    first = Invitation.objects.get(pk=invitation.pk).revoked_at

    again = alice_client.post(url, follow=True)

    assert b"was already closed" in again.content
    assert Invitation.objects.get(pk=invitation.pk).revoked_at == first


def test_resend_sends_a_new_link_and_the_old_one_stops_working(alice_client, invitation, charlie):
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(days=1)
    )
    old_link = link(invitation)

    response = alice_client.post(
        f"/teams/{invitation.team.slug}/invitations/{invitation.pk}/resend/"
    )

    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.is_pending
    new_link = LINK.search(mail.outbox[0].body).group(1)
    assert new_link != old_link
    client = signed_in(charlie)
    stale = client.post(old_link)
    assert stale.status_code == 404
    assert b"no longer valid" in stale.content
    assert b"most recent invitation email" in stale.content
    assert client.post(new_link).status_code == 302
    assert Membership.objects.filter(team=invitation.team, user=charlie).exists()


def test_an_accepted_invitation_cannot_be_resent(alice_client, invitation, charlie):
    signed_in(charlie).post(link(invitation))

    response = alice_client.post(
        f"/teams/{invitation.team.slug}/invitations/{invitation.pk}/resend/"
    )

    assert response.status_code == 403
    assert b"already accepted" in response.content
    assert mail.outbox == []


def good_token(invitation) -> str:
    return link(invitation).split("/")[2]


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda inv: "not-a-token", id="garbage"),
        pytest.param(lambda inv: good_token(inv)[:-3], id="truncated"),
        pytest.param(
            lambda inv: good_token(inv)[:-1] + ("A" if good_token(inv)[-1] != "A" else "B"),
            id="tampered signature",
        ),
        pytest.param(
            lambda inv: signing.dumps({"key": inv.key.hex}, salt="another.purpose"),
            id="signed for another purpose",
        ),
        pytest.param(
            lambda inv: signing.dumps({"key": "not-a-uuid"}, salt=invitations.SALT),
            id="signed nonsense",
        ),
        pytest.param(lambda inv: signing.dumps([1, 2], salt=invitations.SALT), id="wrong shape"),
    ],
)
def test_a_malformed_or_tampered_link_gets_a_clear_400(invitation, charlie, make_token):
    url = f"/invitations/{make_token(invitation)}/"

    for client in [Client(), signed_in(charlie)]:
        for response in [client.get(url), client.post(url)]:
            assert response.status_code == 400
            assert b"This invitation link is broken" in response.content
            assert b"ask the person who invited you for a new invitation" in response.content
    assert_nothing_joined(invitation, charlie)


def test_a_link_whose_invitation_is_gone_is_no_longer_valid(invitation, charlie):
    url = link(invitation)
    invitation.delete()  # as when its team is deleted

    response = signed_in(charlie).get(url)

    assert response.status_code == 404
    assert b"This invitation is no longer valid" in response.content


def test_two_simultaneous_accepts_make_one_membership_and_no_error(
    transactional_db, invitation, charlie
):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from django.db import connection

    start = Barrier(2)

    def accept():
        try:
            start.wait()
            return invitations.accept(charlie, invitation)[1]
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        created = sorted(pool.map(lambda _: accept(), range(2)))

    assert created == [False, True]
    assert Membership.objects.filter(team=invitation.team, user=charlie).count() == 1
    invitation.refresh_from_db()
    assert invitation.accepted_by == charlie
