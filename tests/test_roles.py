"""What each role may and may not do in a team, as one table.

In Acme, alice is the owner, dana an admin, bob a sender and victor a viewer. Each action runs
against fresh targets (sam, a sender, and ada, a second admin) so that an actor never acts on
itself by accident. An allowed action must show its effect in the database; a refused one must
answer 403 with the reason on our page and leave the database as it was.
"""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.core import mail

from messaging.models import Invitation, Membership, Team
from messaging.teams import actions as teams
from messaging.teams import invitations

from .conftest import make_user

OWNER, ADMIN, SENDER, VIEWER = "owner", "admin", "sender", "viewer"
EVERYONE = (OWNER, ADMIN, SENDER, VIEWER)


@dataclass
class World:
    team: Team
    sam: Membership  # a sender, target of member actions
    ada: Membership  # a second admin
    owner: Membership
    invitation: Invitation

    def role_of(self, membership: Membership) -> str | None:
        row = Membership.objects.filter(pk=membership.pk).first()
        return row.role if row else None


@pytest.fixture(autouse=True)
def _quick_passwords(settings):
    # Six accounts per case: the production hasher's deliberate slowness would dominate the run.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(team, alice, dana, victor):
    sam = Membership.objects.create(team=team, user=make_user("sam@example.com"), role=SENDER)
    ada = Membership.objects.create(team=team, user=make_user("ada@example.com"), role=ADMIN)
    owner = team.memberships.get(user=alice)
    invitation = invitations.create(owner, "invitee@example.com", SENDER)
    return World(team=team, sam=sam, ada=ada, owner=owner, invitation=invitation)


@pytest.fixture
def clients(alice_client, dana_client, bob_client, victor_client):
    return {OWNER: alice_client, ADMIN: dana_client, SENDER: bob_client, VIEWER: victor_client}


@dataclass
class Action:
    name: str
    request: Callable  # (client, world) -> response
    done: Callable  # (world) -> bool: the effect is in the database
    allowed: tuple  # roles that may do it


def url(w: World, rest: str) -> str:
    return f"/teams/{w.team.slug}/{rest}"


ACTIONS = [
    Action(
        "rename the team",
        lambda c, w: c.post(url(w, "rename/"), {"name": "Renamed"}),
        lambda w: Team.objects.get(pk=w.team.pk).name == "Renamed",
        (OWNER, ADMIN),
    ),
    Action(
        "invite a sender",
        lambda c, w: c.post(url(w, "invite/"), {"email": "new@example.com", "role": SENDER}),
        lambda w: (
            Invitation.objects.filter(email="new@example.com").exists()
            and [m.to for m in mail.outbox] == [["new@example.com"]]
        ),
        (OWNER, ADMIN),
    ),
    Action(
        # The admin's form does not offer the role: a field error, not a 403.
        "invite an admin",
        lambda c, w: c.post(url(w, "invite/"), {"email": "new@example.com", "role": ADMIN}),
        lambda w: Invitation.objects.filter(email="new@example.com", role=ADMIN).exists(),
        (OWNER,),
    ),
    Action(
        "make a sender a viewer",
        lambda c, w: c.post(url(w, f"members/{w.sam.pk}/role/"), {"role": VIEWER}),
        lambda w: w.role_of(w.sam) == VIEWER,
        (OWNER, ADMIN),
    ),
    Action(
        "grant the admin role",
        lambda c, w: c.post(url(w, f"members/{w.sam.pk}/role/"), {"role": ADMIN}),
        lambda w: w.role_of(w.sam) == ADMIN,
        (OWNER,),
    ),
    Action(
        "take the admin role away",
        lambda c, w: c.post(url(w, f"members/{w.ada.pk}/role/"), {"role": SENDER}),
        lambda w: w.role_of(w.ada) == SENDER,
        (OWNER,),
    ),
    Action(
        "demote the owner",
        lambda c, w: c.post(url(w, f"members/{w.owner.pk}/role/"), {"role": ADMIN}),
        lambda w: w.role_of(w.owner) != OWNER,
        (),
    ),
    Action(
        "remove a sender",
        lambda c, w: c.post(url(w, f"members/{w.sam.pk}/remove/")),
        lambda w: w.role_of(w.sam) is None,
        (OWNER, ADMIN),
    ),
    Action(
        "remove an admin",
        lambda c, w: c.post(url(w, f"members/{w.ada.pk}/remove/")),
        lambda w: w.role_of(w.ada) is None,
        (OWNER,),
    ),
    Action(
        "remove the owner",
        lambda c, w: c.post(url(w, f"members/{w.owner.pk}/remove/")),
        lambda w: w.role_of(w.owner) is None,
        (),
    ),
    Action(
        "resend an invitation",
        lambda c, w: c.post(url(w, f"invitations/{w.invitation.pk}/resend/")),
        lambda w: (
            Invitation.objects.get(pk=w.invitation.pk).key != w.invitation.key
            and len(mail.outbox) == 1
        ),
        (OWNER, ADMIN),
    ),
    Action(
        "revoke an invitation",
        lambda c, w: c.post(url(w, f"invitations/{w.invitation.pk}/revoke/")),
        lambda w: Invitation.objects.get(pk=w.invitation.pk).revoked_at is not None,
        (OWNER, ADMIN),
    ),
    Action(
        "transfer ownership",
        lambda c, w: c.post(url(w, "transfer/"), {"member": w.sam.pk}),
        lambda w: w.role_of(w.sam) == OWNER,
        (OWNER,),
    ),
    Action(
        "leave the team",
        lambda c, w: c.post(url(w, "leave/")),
        lambda w: w.team.memberships.count() < 6,
        (ADMIN, SENDER, VIEWER),
    ),
]

CASES = [
    pytest.param(
        action, role, id=f"{role} may {'' if role in action.allowed else 'not '}{action.name}"
    )
    for action in ACTIONS
    for role in EVERYONE
]


@pytest.mark.parametrize(("action", "role"), CASES)
def test_role_rules(action: Action, role: str, world: World, clients):
    response = action.request(clients[role], world)

    if role in action.allowed:
        assert response.status_code == 302, response.content[:500]
        assert action.done(world)
    else:
        refused_by_form = action.name == "invite an admin" and role == ADMIN
        assert response.status_code == (200 if refused_by_form else 403)
        if refused_by_form:
            assert "only the team's owner can invite admins" in " ".join(
                response.context["form"].errors["role"]
            )
        else:
            assert b"You can't do that here" in response.content
        assert not action.done(world)
        assert world.team.memberships.count() == 6
        assert world.team.memberships.filter(role=OWNER).get().pk == world.owner.pk


@pytest.mark.parametrize(
    ("role", "status"), [(OWNER, 200), (ADMIN, 200), (SENDER, 403), (VIEWER, 403)]
)
def test_only_admins_and_the_owner_open_the_invite_form(role, status, world, clients):
    response = clients[role].get(f"/teams/{world.team.slug}/invite/")

    assert response.status_code == status
    if status == 200:
        offered = [value for value, _ in response.context["form"].fields["role"].choices]
        assert offered == ([ADMIN, SENDER, VIEWER] if role == OWNER else [SENDER, VIEWER])
        assert OWNER not in offered


@pytest.mark.parametrize("role", EVERYONE)
def test_every_member_sees_the_team_page(role, world, clients):
    response = clients[role].get(f"/teams/{world.team.slug}/")

    assert response.status_code == 200
    assert response.context["membership"].role == role


def test_refusal_names_the_reason_on_the_403_page(dana_client, world):
    response = dana_client.post(f"/teams/{world.team.slug}/members/{world.ada.pk}/remove/")

    assert response.status_code == 403
    assert b"Only the team&#x27;s owner can remove an admin." in response.content


def test_owner_cannot_be_made_owner_again_through_a_role_change(alice_client, world):
    response = alice_client.post(
        f"/teams/{world.team.slug}/members/{world.sam.pk}/role/", {"role": OWNER}
    )

    assert response.status_code == 200
    assert "Transfer ownership" in " ".join(response.context["form"].errors["role"])
    assert world.role_of(world.sam) == SENDER
    assert world.role_of(world.owner) == OWNER


def test_role_page_offers_only_the_roles_the_actor_may_grant(dana_client, alice_client, world):
    as_admin = dana_client.get(f"/teams/{world.team.slug}/members/{world.sam.pk}/role/")
    as_owner = alice_client.get(f"/teams/{world.team.slug}/members/{world.sam.pk}/role/")

    assert [v for v, _ in as_admin.context["form"].fields["role"].choices] == [SENDER, VIEWER]
    assert [v for v, _ in as_owner.context["form"].fields["role"].choices] == [
        ADMIN,
        SENDER,
        VIEWER,
    ]


def test_a_demoted_admin_loses_admin_powers_at_once(alice_client, world, clients, dana):
    dana_membership = world.team.memberships.get(user=dana)
    alice_client.post(
        f"/teams/{world.team.slug}/members/{dana_membership.pk}/role/", {"role": VIEWER}
    )

    response = clients[ADMIN].post(f"/teams/{world.team.slug}/members/{world.sam.pk}/remove/")

    assert response.status_code == 403
    assert world.role_of(world.sam) == SENDER


def test_a_stale_page_cannot_push_a_change_the_rules_now_refuse(world, dana):
    # dana opened the page as admin; meanwhile the owner demoted her to viewer.
    stale = world.team.memberships.get(user=dana)
    Membership.objects.filter(pk=stale.pk).update(role=VIEWER)

    with pytest.raises(teams.TeamRuleError):
        teams.remove_member(stale, world.sam)
    assert world.role_of(world.sam) == SENDER


def test_only_the_owner_resends_an_admin_invitation(alice_client, dana_client, world):
    admin_invitation = invitations.create(world.owner, "boss@example.com", ADMIN)
    resend = f"/teams/{world.team.slug}/invitations/{admin_invitation.pk}/resend/"

    page = dana_client.get(f"/teams/{world.team.slug}/")
    refused = dana_client.post(resend)
    allowed = alice_client.post(resend)

    assert resend.encode() not in page.content
    assert f"/invitations/{world.invitation.pk}/resend/".encode() in page.content
    assert refused.status_code == 403
    assert b"Only the team&#x27;s owner can invite admins." in refused.content
    assert allowed.status_code == 302
    assert [m.to for m in mail.outbox] == [["boss@example.com"]]
