"""Team pages: list, create, switch, the team page, membership changes and invitations.

Every view that touches a team gets the requesting user's Membership from
messaging/teams/permissions.py (an outsider gets 404, a too-low role 403) and then looks objects up
inside `membership.team` only. Role rules between members live in actions.py; the invitation life
cycle in invitations.py.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST

from messaging.models import Invitation, Membership, Role
from messaging.teams import actions, invitations
from messaging.teams.forms import InvitationForm, MemberRoleForm, TeamForm, TransferOwnershipForm
from messaging.teams.permissions import get_rw_team_for_user, get_team_for_user


def _team_page(membership: Membership) -> HttpResponseRedirect:
    return redirect("team_page", slug=membership.team.slug)


def _posted(request):
    # Bound on every POST, even an empty one, so a blank submission shows "required" errors.
    return request.POST if request.method == "POST" else None


def _safe_next(request, default: str) -> str:
    target = request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


# --- Teams ------------------------------------------------------------------------------------


@login_required
def team_list(request):
    memberships = request.user.memberships.select_related("team").order_by(
        "-team__is_personal", "team__name"
    )
    return render(request, "teams/list.html", {"memberships": memberships})


@login_required
def team_create(request):
    form = TeamForm(_posted(request))
    refusal = actions.team_creation_refusal(request.user)
    if request.method == "POST" and refusal:
        form.add_error(None, refusal)
        return render(request, "teams/create.html", {"form": form}, status=400)
    if request.method == "POST" and form.is_valid():
        team = actions.create_team(request.user, form.cleaned_data["name"])
        actions.switch_team(request, team.memberships.get(user=request.user))
        messages.success(request, f"{team.name} is ready, and it is now your current team.")
        return redirect("team_page", slug=team.slug)
    return render(request, "teams/create.html", {"form": form})


@login_required
@require_POST
def team_switch(request):
    # A missing field must not fall back to the current team: "" matches no team (404).
    membership = get_team_for_user(request, request.POST.get("team") or "")
    actions.switch_team(request, membership)
    messages.info(request, f"You are now working in {membership.team.name}.")
    # A plain redirect: redirect() would take a bare word such as "x" for a URL name (a 500).
    return HttpResponseRedirect(_safe_next(request, reverse("dashboard")))


def _render_team(request, membership: Membership):
    team = membership.team
    members = sorted(
        team.memberships.select_related("user"),
        key=lambda m: (-Role.rank(m.role), m.user.email.lower()),
    )
    rows = [
        {
            "membership": m,
            "is_me": m.pk == membership.pk,
            "can_change_role": actions.role_change_refusal(membership, m) is None,
            "can_remove": actions.removal_refusal(membership, m) is None,
        }
        for m in members
    ]
    open_invitations = list(
        team.invitations.filter(accepted_at=None, revoked_at=None).select_related("invited_by")
    )
    for invitation in open_invitations:
        invitation.can_resend = invitations.resend_refusal(membership, invitation) is None
    is_admin = membership.can(Role.ADMIN)
    show_member_actions = any(r["can_change_role"] or r["can_remove"] for r in rows)
    context = {
        "membership": membership,
        "team": team,
        "rows": rows,
        "invitations": open_invitations,
        "is_current": membership.team_id == request.membership.team_id,
        "is_admin": is_admin,
        "show_member_actions": show_member_actions,
        "can_invite": actions.invite_refusal(membership) is None,
        "can_transfer": actions.transfer_refusal(membership) is None and len(members) > 1,
        "leave_refusal": actions.leave_refusal(membership),
        "grantable_roles": [
            (role, Role(role).label) for role in actions.grantable_roles(membership)
        ],
    }
    return render(request, "teams/detail.html", context)


@login_required
def team_detail(request):
    """The current team's page."""
    return _render_team(request, get_team_for_user(request))


@login_required
def team_page(request, slug):
    return _render_team(request, get_team_for_user(request, slug))


@login_required
def team_rename(request, slug):
    membership = get_rw_team_for_user(request, slug, Role.ADMIN)
    form = TeamForm(_posted(request), initial={"name": membership.team.name})
    if request.method == "POST" and form.is_valid():
        actions.rename_team(membership, form.cleaned_data["name"])
        messages.success(request, f"The team is now called {membership.team.name}.")
        return _team_page(membership)
    return render(request, "teams/rename.html", {"form": form, "team": membership.team})


@login_required
def team_leave(request, slug):
    membership = get_team_for_user(request, slug)
    if request.method == "POST":
        actions.leave_team(membership)
        if request.session.get(actions.SESSION_KEY) == membership.team_id:
            del request.session[actions.SESSION_KEY]
        messages.success(request, f"You left {membership.team.name}.")
        return redirect("team_list")
    return render(
        request,
        "teams/leave.html",
        {"team": membership.team, "refusal": actions.leave_refusal(membership)},
    )


@login_required
def team_transfer(request, slug):
    membership = get_rw_team_for_user(request, slug, Role.OWNER)
    actions.refuse_if(actions.transfer_refusal(membership))
    form = TransferOwnershipForm(_posted(request), actor=membership)
    if request.method == "POST" and form.is_valid():
        new_owner = form.cleaned_data["member"]
        actions.transfer_ownership(membership, new_owner)
        messages.success(
            request,
            f"{new_owner.user.email} now owns {membership.team.name}. You are an admin.",
        )
        return _team_page(membership)
    return render(request, "teams/transfer.html", {"form": form, "team": membership.team})


# --- Members ----------------------------------------------------------------------------------


def _member(actor: Membership, member_id: int) -> Membership:
    return get_object_or_404(
        Membership.objects.select_related("user", "team"), pk=member_id, team=actor.team
    )


@login_required
def member_role(request, slug, member_id):
    membership = get_rw_team_for_user(request, slug, Role.ADMIN)
    target = _member(membership, member_id)
    actions.refuse_if(actions.role_change_refusal(membership, target))
    form = MemberRoleForm(_posted(request), initial={"role": target.role})
    if request.method == "POST" and form.is_valid():
        role = form.cleaned_data["role"]
        actions.change_role(membership, target, role)
        messages.success(request, f"{target.user.email} is now {Role(role).label.lower()}.")
        return _team_page(membership)
    allowed = actions.grantable_roles(membership)
    form.fields["role"].choices = [c for c in form.fields["role"].choices if c[0] in allowed]
    return render(
        request, "teams/member_role.html", {"form": form, "team": membership.team, "target": target}
    )


@login_required
def member_remove(request, slug, member_id):
    membership = get_rw_team_for_user(request, slug, Role.ADMIN)
    target = _member(membership, member_id)
    actions.refuse_if(actions.removal_refusal(membership, target))
    if request.method == "POST":
        actions.remove_member(membership, target)
        messages.success(request, f"{target.user.email} was removed from {membership.team.name}.")
        return _team_page(membership)
    return render(request, "teams/member_remove.html", {"team": membership.team, "target": target})


# --- Invitations (team side) --------------------------------------------------------------------


@login_required
def invitation_create(request, slug):
    membership = get_rw_team_for_user(request, slug, Role.ADMIN)
    actions.refuse_if(actions.invite_refusal(membership))
    form = InvitationForm(_posted(request), actor=membership)
    if request.method == "POST" and form.is_valid():
        try:
            invitation = invitations.create(
                membership, form.cleaned_data["email"], form.cleaned_data["role"]
            )
        except invitations.DuplicateInvitation as e:
            form.add_error("email", str(e))
        else:
            _report_sent(request, invitation, invitations.send_email(request, invitation))
            return _team_page(membership)
    return render(request, "teams/invite.html", {"form": form, "team": membership.team})


def _report_sent(request, invitation: Invitation, sent: bool) -> None:
    if sent:
        messages.success(request, f"Invitation sent to {invitation.email}.")
    else:
        messages.warning(
            request,
            f"The invitation to {invitation.email} is saved, but the email could not be sent. "
            "Try “Resend” in a few minutes.",
        )


def _post_only() -> HttpResponseNotAllowed:
    # Checked after the team: an outsider gets the same 404 for every method.
    return HttpResponseNotAllowed(["POST"])


def _invitation(actor: Membership, invitation_id: int) -> Invitation:
    return get_object_or_404(
        Invitation.objects.select_related("team", "invited_by"), pk=invitation_id, team=actor.team
    )


@login_required
def invitation_resend(request, slug, invitation_id):
    membership = get_rw_team_for_user(request, slug, Role.ADMIN)
    if request.method != "POST":
        return _post_only()
    invitation = invitations.renew(membership, _invitation(membership, invitation_id))
    _report_sent(request, invitation, invitations.send_email(request, invitation))
    return _team_page(membership)


@login_required
def invitation_revoke(request, slug, invitation_id):
    membership = get_rw_team_for_user(request, slug, Role.ADMIN)
    if request.method != "POST":
        return _post_only()
    invitation = _invitation(membership, invitation_id)
    if invitations.revoke(invitation):
        messages.success(request, f"The invitation to {invitation.email} was revoked.")
    else:
        messages.info(request, f"The invitation to {invitation.email} was already closed.")
    return _team_page(membership)


# --- Invitations (invitee side) -----------------------------------------------------------------


def _problem(request, problem: invitations.InvitationProblem):
    return render(
        request, "teams/invitation_problem.html", {"problem": problem}, status=problem.status
    )


def invitation_accept(request, token):
    """The page an invitation email links to. GET only shows; joining takes a POST, so mail
    scanners that open links can't use up an invitation."""
    try:
        invitation = invitations.load(token)
    except invitations.InvitationProblem as problem:
        return _problem(request, problem)
    path = request.path
    user = request.user

    if not user.is_authenticated:
        try:
            invitations.check_usable(invitation)
        except invitations.InvitationProblem as problem:
            return _problem(request, problem)
        if request.method == "POST":
            return redirect(f"{reverse('account_login')}?{urlencode({'next': path})}")
        request.session[invitations.SESSION_KEY] = invitation.key.hex
        context = {
            "invitation": invitation,
            # allauth brings the visitor back here after either; sign-up starts prefilled.
            "signup_url": reverse("account_signup")
            + "?"
            + urlencode({"email": invitation.email, "next": path}),
            "login_url": reverse("account_login") + "?" + urlencode({"next": path}),
        }
        return render(request, "teams/invitation.html", context)

    is_member = Membership.objects.filter(team_id=invitation.team_id, user=user).exists()
    if request.method == "POST":
        try:
            membership, created = invitations.accept(user, invitation)
        except invitations.InvitationProblem as problem:
            return _problem(request, problem)
        request.session.pop(invitations.SESSION_KEY, None)
        actions.switch_team(request, membership)
        if created:
            messages.success(
                request,
                f"Welcome to {invitation.team.name}! You joined as "
                f"{membership.get_role_display().lower()}, and it is now your current team.",
            )
        else:
            messages.info(request, f"You are already a member of {invitation.team.name}.")
        return redirect("team_detail")

    if not is_member:
        try:
            invitations.check_usable(invitation)
            if not invitations.is_for(invitation, user):
                raise invitations.WrongAccount(invitation)
        except invitations.InvitationProblem as problem:
            return _problem(request, problem)
    return render(
        request,
        "teams/invitation.html",
        {"invitation": invitation, "is_member": is_member},
    )
