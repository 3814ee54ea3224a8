"""Teams: creating, listing, switching, renaming, leaving and handing over a team, and what an
outsider or a stale form gets."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import URLPattern, reverse
from django.utils import timezone

from messaging import urls as messaging_urls
from messaging.models import Invitation, Membership, Role, Team
from messaging.teams import invitations
from messaging.teams import views as team_views
from messaging.teams.actions import SESSION_KEY


def current_team_of(client) -> Team:
    return Membership.objects.get(
        user_id=client.session["_auth_user_id"], team_id=client.session[SESSION_KEY]
    ).team


def personal_team(user) -> Team:
    return Team.objects.get(is_personal=True, memberships__user=user)


# --- Creating and listing -----------------------------------------------------------------


def test_new_team_makes_the_creator_its_owner_and_the_current_team(alice_client, alice):
    response = alice_client.post("/teams/new/", {"name": "  Widgets   Inc  "})

    team = Team.objects.get(name="Widgets Inc")
    assert response.status_code == 302
    assert response["Location"] == f"/teams/{team.slug}/"
    assert team.slug == "widgets-inc"
    assert not team.is_personal
    assert team.memberships.get().user == alice
    assert team.memberships.get().role == Role.OWNER
    assert current_team_of(alice_client) == team


def test_new_team_without_a_name_is_a_field_error_and_creates_nothing(alice_client):
    before = Team.objects.count()
    response = alice_client.post("/teams/new/", {"name": "   "})

    assert response.status_code == 200
    assert "name" in response.context["form"].errors
    assert b'aria-invalid="true"' in response.content
    assert Team.objects.count() == before


@pytest.mark.parametrize("name", ["New", "Switch"])
def test_team_named_like_a_fixed_url_gets_a_slug_that_still_reaches_its_page(alice_client, name):
    alice_client.post("/teams/new/", {"name": name})

    team = Team.objects.get(name=name)
    assert team.slug == f"{name.lower()}-2"
    page = alice_client.get(f"/teams/{team.slug}/")
    assert page.status_code == 200
    assert page.context["team"] == team


def test_team_list_shows_my_teams_with_my_role_and_not_other_peoples(alice_client, charlie):
    response = alice_client.get("/teams/")

    assert response.status_code == 200
    names = [m.team.name for m in response.context["memberships"]]
    assert names == ["alice's team", "Acme"]
    assert b"charlie&#x27;s team" not in response.content
    assert b"Owner" in response.content


def test_anonymous_visitor_is_sent_to_sign_in_from_team_pages(client, team):
    for url in ["/teams/", "/teams/new/", "/team/", f"/teams/{team.slug}/"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


# --- Switching ------------------------------------------------------------------------------


def test_switching_to_a_team_i_belong_to_makes_it_current_and_remembers_it(alice_client, alice):
    mine = personal_team(alice)
    response = alice_client.post("/teams/switch/", {"team": mine.slug})

    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    assert current_team_of(alice_client) == mine
    assert Membership.objects.get(user=alice, team=mine).last_selected_at is not None
    assert alice_client.get("/team/").context["team"] == mine


def test_switching_follows_a_local_next_but_never_an_external_one(alice_client, alice):
    mine = personal_team(alice)
    local = alice_client.post("/teams/switch/", {"team": mine.slug, "next": "/teams/"})
    external = alice_client.post(
        "/teams/switch/", {"team": mine.slug, "next": "https://evil.example/"}
    )

    assert local["Location"] == "/teams/"
    assert external["Location"] == "/dashboard/"


def test_switching_to_a_team_i_am_not_in_is_404_and_changes_nothing(charlie_client, team):
    before = charlie_client.session.get(SESSION_KEY)
    response = charlie_client.post("/teams/switch/", {"team": team.slug})

    assert response.status_code == 404
    assert charlie_client.session.get(SESSION_KEY) == before


def test_switching_without_a_team_is_404_and_by_get_is_405(alice_client):
    assert alice_client.post("/teams/switch/", {}).status_code == 404
    assert alice_client.post("/teams/switch/", {"team": "no-such-team"}).status_code == 404
    assert alice_client.get("/teams/switch/").status_code == 405


def test_navigation_switches_team_in_one_action(alice_client, alice, team):
    response = alice_client.get("/team/")

    # One button per other team: choosing it is the switch (no select, then "Switch").
    assert b'action="/teams/switch/"' in response.content
    button = f'<button type="submit" name="team" value="{personal_team(alice).slug}"'
    assert button.encode() in response.content
    assert b'aria-current="true">Acme<' in response.content
    switched = alice_client.post("/teams/switch/", {"team": personal_team(alice).slug})
    assert switched.status_code == 302
    assert alice_client.get("/team/").context["current_membership"].team == personal_team(alice)


# --- The team page --------------------------------------------------------------------------


def test_team_page_lists_members_with_roles_and_pending_invitations(alice_client, team, alice):
    invitations.create(team.memberships.get(user=alice), "newbie@example.com", Role.VIEWER)
    response = alice_client.get("/team/")

    assert response.status_code == 200
    assert response.context["team"] == team
    members = [(r["membership"].user.email, r["membership"].role) for r in response.context["rows"]]
    assert members == [("alice@example.com", Role.OWNER), ("bob@example.com", Role.SENDER)]
    assert b"newbie@example.com" in response.content
    assert b"Invite someone" in response.content
    assert b"Transfer ownership" in response.content


def test_team_page_hides_management_controls_from_a_viewer(victor_client, team):
    response = victor_client.get(f"/teams/{team.slug}/")

    assert response.status_code == 200
    assert b"Invite someone" not in response.content
    assert b"Rename team" not in response.content
    assert b"/remove/" not in response.content
    assert b"Leave team" in response.content


def test_team_page_by_slug_shows_a_team_that_is_not_current(alice_client, alice, team):
    mine = personal_team(alice)
    response = alice_client.get(f"/teams/{mine.slug}/")

    assert response.context["team"] == mine
    assert response.context["is_current"] is False
    assert b"Make alice&#x27;s team my current team" in response.content


# --- Renaming -------------------------------------------------------------------------------


def test_admin_renames_the_team_and_its_address_stays(dana_client, team):
    response = dana_client.post(f"/teams/{team.slug}/rename/", {"name": "Acme Dental"})

    team.refresh_from_db()
    assert response.status_code == 302
    assert team.name == "Acme Dental"
    assert team.slug == "acme"
    assert response["Location"] == "/teams/acme/"


def test_rename_to_blank_is_a_field_error_and_keeps_the_name(alice_client, team):
    response = alice_client.post(f"/teams/{team.slug}/rename/", {"name": ""})

    team.refresh_from_db()
    assert response.status_code == 200
    assert response.context["form"].errors["name"]
    assert team.name == "Acme"


def test_sender_may_not_rename_and_gets_the_explanatory_403(bob_client, team):
    response = bob_client.post(f"/teams/{team.slug}/rename/", {"name": "Bobco"})

    team.refresh_from_db()
    assert response.status_code == 403
    assert b"This needs the admin role in Acme." in response.content
    assert team.name == "Acme"


# --- Leaving and transferring ---------------------------------------------------------------


def test_member_leaves_and_falls_back_to_another_team(bob_client, bob, team):
    response = bob_client.post(f"/teams/{team.slug}/leave/")

    assert response.status_code == 302
    assert response["Location"] == "/teams/"
    assert not Membership.objects.filter(team=team, user=bob).exists()
    assert SESSION_KEY not in bob_client.session
    assert bob_client.get("/team/").context["team"] == personal_team(bob)


def test_owner_cannot_leave_before_transferring_ownership(alice_client, alice, team):
    page = alice_client.get(f"/teams/{team.slug}/leave/")
    response = alice_client.post(f"/teams/{team.slug}/leave/")

    assert b"Transfer ownership to another member first" in page.content
    assert b"<button" not in page.content.split(b'id="main"')[1]
    assert response.status_code == 403
    assert b"Transfer ownership to another member first" in response.content
    assert Membership.objects.get(team=team, user=alice).role == Role.OWNER


def test_nobody_leaves_a_personal_team_not_even_a_member_in_it(alice, bob):
    mine = personal_team(alice)
    # Personal teams take no invitations; this membership stands for one made some other way.
    Membership.objects.create(team=mine, user=bob, role=Role.SENDER)

    for user in [bob, alice]:
        client = Client()
        client.force_login(user)
        response = client.post(f"/teams/{mine.slug}/leave/")
        assert response.status_code == 403
        assert b"A personal team can&#x27;t be left" in response.content
        assert Membership.objects.filter(team=mine, user=user).exists()


def test_owner_transfers_ownership_and_becomes_admin(alice_client, alice, bob, team):
    bob_membership = team.memberships.get(user=bob)
    response = alice_client.post(f"/teams/{team.slug}/transfer/", {"member": bob_membership.pk})

    assert response.status_code == 302
    roles = dict(team.memberships.values_list("user__email", "role"))
    assert roles == {"alice@example.com": Role.ADMIN, "bob@example.com": Role.OWNER}
    assert team.memberships.filter(role=Role.OWNER).count() == 1
    # Now an admin, alice may leave.
    assert alice_client.post(f"/teams/{team.slug}/leave/").status_code == 302
    assert not team.memberships.filter(user=alice).exists()


def test_transfer_to_someone_outside_the_team_is_a_field_error(alice_client, charlie, team):
    outsider = Membership.objects.get(user=charlie)
    response = alice_client.post(f"/teams/{team.slug}/transfer/", {"member": outsider.pk})

    assert response.status_code == 200
    assert "member" in response.context["form"].errors
    assert team.owner_membership.user.email == "alice@example.com"


def test_personal_team_cannot_be_handed_over_or_take_invitations(alice, bob):
    mine = personal_team(alice)
    Membership.objects.create(team=mine, user=bob, role=Role.SENDER)
    client = Client()
    client.force_login(alice)

    transfer = client.post(
        f"/teams/{mine.slug}/transfer/", {"member": mine.memberships.get(user=bob).pk}
    )
    invite = client.post(
        f"/teams/{mine.slug}/invite/", {"email": "x@example.com", "role": "viewer"}
    )

    assert transfer.status_code == 403
    assert b"personal team can&#x27;t be handed over" in transfer.content
    assert invite.status_code == 403
    assert b"Create a team to work with others" in invite.content
    assert mine.owner_membership.user == alice
    assert not Invitation.objects.exists()


# --- Outsiders and stale forms --------------------------------------------------------------


def team_scoped_patterns() -> list[URLPattern]:
    return [
        p
        for p in messaging_urls.urlpatterns
        if isinstance(p, URLPattern)
        and p.callback.__module__ == team_views.__name__
        and "slug" in p.pattern.converters
    ]


def test_outsider_gets_404_on_every_team_url(charlie_client, alice, bob, team):
    invitation = invitations.create(team.memberships.get(user=alice), "x@example.com", Role.SENDER)
    values = {
        "slug": team.slug,
        "member_id": team.memberships.get(user=bob).pk,
        "invitation_id": invitation.pk,
    }
    patterns = team_scoped_patterns()
    # The walk picks up any team URL added later; these must at least be among them.
    assert {p.name for p in patterns} >= {
        "team_page",
        "team_rename",
        "team_leave",
        "team_transfer",
        "member_role",
        "member_remove",
        "invitation_create",
        "invitation_resend",
        "invitation_revoke",
    }

    for pattern in patterns:
        url = reverse(pattern.name, kwargs={k: values[k] for k in pattern.pattern.converters})
        assert charlie_client.get(url).status_code == 404, url
        assert charlie_client.post(url, {"name": "X", "role": "admin"}).status_code == 404, url
    assert charlie_client.post("/teams/switch/", {"team": team.slug}).status_code == 404

    team.refresh_from_db()
    invitation.refresh_from_db()
    assert team.name == "Acme"
    assert invitation.revoked_at is None
    assert team.memberships.count() == 2


def test_another_teams_member_or_invitation_is_404_even_under_my_own_team(
    charlie_client, charlie, alice, bob, team
):
    invitation = invitations.create(team.memberships.get(user=alice), "x@example.com", Role.SENDER)
    mine = personal_team(charlie).slug
    bob_id = team.memberships.get(user=bob).pk

    for url in [
        f"/teams/{mine}/members/{bob_id}/role/",
        f"/teams/{mine}/members/{bob_id}/remove/",
        f"/teams/{mine}/invitations/{invitation.pk}/resend/",
        f"/teams/{mine}/invitations/{invitation.pk}/revoke/",
    ]:
        assert charlie_client.post(url, {"role": "viewer"}).status_code == 404, url

    invitation.refresh_from_db()
    assert invitation.revoked_at is None
    assert team.memberships.get(user=bob).role == Role.SENDER


def test_team_post_without_csrf_token_gets_403_with_our_explanation(alice, team):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = client.post(f"/teams/{team.slug}/rename/", {"name": "Hijacked"})

    team.refresh_from_db()
    assert response.status_code == 403
    assert b"This form has expired" in response.content
    assert team.name == "Acme"


def test_team_post_with_csrf_token_from_the_page_succeeds(alice, team):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    form_page = client.get(f"/teams/{team.slug}/rename/")
    token = form_page.context["csrf_token"]

    response = client.post(
        f"/teams/{team.slug}/rename/", {"name": "Acme West", "csrfmiddlewaretoken": str(token)}
    )

    team.refresh_from_db()
    assert response.status_code == 302
    assert team.name == "Acme West"


def test_invitation_expiry_shown_on_the_team_page_is_the_rows_own(alice_client, alice, team):
    invitation = invitations.create(team.memberships.get(user=alice), "x@example.com", Role.SENDER)
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    response = alice_client.get("/team/")

    assert b"Expired" in response.content
    assert b"x@example.com" in response.content


def test_an_empty_submission_shows_required_errors_instead_of_a_blank_form(alice_client, team):
    response = alice_client.post(f"/teams/{team.slug}/rename/", {})

    assert response.status_code == 200
    assert response.context["form"].errors["name"] == ["This field is required."]
