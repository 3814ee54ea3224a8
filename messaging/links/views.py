"""Linking RingCentral accounts to a team: overview, OAuth connect/callback, share, sync,
disconnect.

Who may do what with a connection (on top of messaging/teams/permissions.py, which decides team
access and roles):
    see it          its linking user; everyone in the team when it is shared; team admins
    link a new one  senders and above, in the current team
    share/unshare   only its linking user
    sync numbers    whoever may see it and is at least a sender (or its linking user)
    disconnect      its linking user, or any admin of its team
A connection of a team the user is not in is a 404; one they are in but may not act on is 403.

The OAuth round trip keeps its secrets in the Django session, keyed by `state`: the PKCE
verifier, the team that started the flow, the redirect URI and the start time. An entry is
removed when the callback reads it (single use) and is refused after `STATE_TTL` seconds.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from messaging.core.addresses import origin_of
from messaging.links import connections
from messaging.models import (
    ConnectionShare,
    ConnectionStatus,
    RingCentralConnection,
    Role,
    SenderNumber,
    Team,
)
from messaging.ringcentral import oauth
from messaging.ringcentral.errors import RingCentralError
from messaging.teams.permissions import get_rw_team_for_user, get_team_for_user

log = logging.getLogger(__name__)

SESSION_KEY = "ringcentral_oauth"
STATE_TTL = 600
# Several tabs may start a link at once; older pending entries beyond this are dropped.
MAX_PENDING = 5


def _redirect_uri(request) -> str:
    path = reverse("ringcentral_callback")
    if settings.PUBLIC_BASE_URL:
        return f"{settings.PUBLIC_BASE_URL}{path}"
    return request.build_absolute_uri(path)


@login_required
@require_GET
def overview(request):
    """The team's RingCentral links with their health, owner, sharing and sender numbers."""
    membership = get_team_for_user(request)
    connections_qs = (
        connections.visible_to(
            RingCentralConnection.objects.filter(team=membership.team),
            request.user,
            membership,
        )
        .select_related("linked_by")
        .prefetch_related(
            Prefetch("numbers", queryset=SenderNumber.objects.order_by("-active", "phone_number"))
        )
    )
    current, disconnected = [], []
    for connection in connections_qs:
        (disconnected if connection.status == ConnectionStatus.DISCONNECTED else current).append(
            connection
        )
    can_link = membership.can(Role.SENDER)
    return render(
        request,
        "ringcentral/overview.html",
        {
            "membership": membership,
            "connections": current,
            "disconnected": disconnected,
            "brought_in": ConnectionShare.objects.filter(team=membership.team)
            .select_related("connection__team", "connection__linked_by", "shared_by")
            .prefetch_related("connection__numbers"),
            # The user's links in their other teams, to use here without signing in again.
            "bringable": RingCentralConnection.objects.filter(
                linked_by=request.user, status__in=RingCentralConnection.USABLE_STATUSES
            )
            .exclude(team=membership.team)
            .exclude(shares__team=membership.team)
            .select_related("team")
            if can_link
            else [],
            "can_link": can_link,
            "is_admin": membership.can(Role.ADMIN),
        },
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
@sensitive_variables("auth", "pending")
def connect(request):
    """POST starts OAuth for the current user in the current team.

    GET only shows a page with the button: starting the flow writes to the session and sends
    the browser away, so it is a CSRF-protected POST, and a link someone else planted cannot
    start it.
    """
    membership = get_rw_team_for_user(request)
    if request.method == "GET":
        return render(request, "ringcentral/connect.html", {"membership": membership})
    redirect_uri = _redirect_uri(request)
    try:
        auth = oauth.start_authorization(redirect_uri)
    except RingCentralError as exc:  # pragma: no cover - building a URL makes no request
        return _problem(request, "failed", exc=exc, status=502)
    now = time.time()
    pending = {
        state: entry
        for state, entry in request.session.get(SESSION_KEY, {}).items()
        if now - entry.get("started", 0) < STATE_TTL
    }
    pending[auth.state] = {
        "verifier": auth.code_verifier,
        "team_id": membership.team_id,
        "user_id": request.user.pk,
        "redirect_uri": redirect_uri,
        "started": now,
    }
    newest = sorted(pending.items(), key=lambda item: item[1]["started"])[-MAX_PENDING:]
    request.session[SESSION_KEY] = dict(newest)
    return redirect(auth.url)


def _take_pending(request, state: str):
    """The pending entry for `state`, removed from the session; None if unknown or expired."""
    pending = request.session.get(SESSION_KEY) or {}
    if not state or state not in pending:
        return None
    entry = pending.pop(state)
    request.session[SESSION_KEY] = pending
    if time.time() - entry.get("started", 0) >= STATE_TTL:
        return None
    if entry.get("user_id") != request.user.pk:
        return None
    return entry


def _problem(request, kind: str, *, exc: RingCentralError | None = None, status: int = 400):
    return render(
        request,
        "ringcentral/link_problem.html",
        {"kind": kind, "error": exc, "rc_error": request.GET.get("error", "")},
        status=status,
    )


@never_cache
@login_required
@require_GET
@sensitive_variables("entry", "code", "tokens")
def callback(request):
    """RingCentral sends the browser back here with `code` + `state`, or with `error`.

    Nothing is stored unless `state` is one this session started less than ten minutes ago
    and has not used yet.
    """
    entry = _take_pending(request, request.GET.get("state", ""))
    error = request.GET.get("error")
    if error:
        # Nothing is stored on this path, so the page is shown whatever the state says.
        if error == "access_denied":
            return _problem(request, "denied", status=200)
        return _problem(request, "refused", status=400)
    if entry is None:
        log.warning("RingCentral callback with a missing, reused, foreign or expired state")
        return _problem(request, "state", status=400)
    code = request.GET.get("code", "")
    if not code:
        return _problem(request, "refused", status=400)

    team = Team.objects.filter(pk=entry["team_id"]).first()
    if team is None:
        return _problem(request, "state", status=400)
    membership = get_rw_team_for_user(request, slug=team.slug)

    try:
        tokens = oauth.exchange_code(code, entry["redirect_uri"], entry["verifier"])
        connection, created = connections.link(
            membership.team, request.user, tokens, origin=origin_of(request)
        )
    except RingCentralError as exc:
        log.warning("Linking RingCentral failed: %s", exc)
        return _problem(request, "failed", exc=exc, status=502 if exc.retryable else 400)

    verb = "linked" if created else "linked again"
    messages.success(request, f"RingCentral {verb}: {connection.extension_name or 'your account'}.")
    _sync_with_message(request, connection)
    return redirect("ringcentral")


def _sync_with_message(request, connection) -> None:
    try:
        result = connections.sync_numbers(connection)
    except RingCentralError as exc:
        messages.warning(request, f"The phone numbers could not be read: {exc.reason} {exc.fix}")
        return
    usable = connection.numbers.filter(active=True).count()
    if result.changed:
        messages.info(
            request,
            f"Phone numbers updated: {result.added} new, {result.updated} changed, "
            f"{result.deactivated} no longer usable. {usable} can send.",
        )
    else:
        messages.info(request, f"Phone numbers are up to date. {usable} can send.")


def _connection_for(request, pk: int):
    """The connection and the user's membership in its team: 404 for outsiders, 403 for
    members who may not see it."""
    connection = get_object_or_404(
        RingCentralConnection.objects.select_related("team", "linked_by").distinct(),
        pk=pk,
        team__memberships__user=request.user,
    )
    membership = get_team_for_user(request, slug=connection.team.slug)
    owns = connection.linked_by_id == request.user.pk
    if not (owns or connection.shared_with_team or membership.can(Role.ADMIN)):
        raise PermissionDenied("This RingCentral link belongs to another member and is not shared.")
    return connection, membership


@login_required
@require_POST
def share(request, pk: int):
    connection, membership = _connection_for(request, pk)
    if connection.linked_by_id != request.user.pk:
        raise PermissionDenied("Only the person who linked this RingCentral account can share it.")
    shared = request.POST.get("shared") == "1"
    connections.set_shared(connection, shared)
    if shared:
        messages.success(request, f"Everyone in {membership.team} can now send from {connection}.")
    else:
        messages.success(request, f"Only you can send from {connection} now.")
    return redirect("ringcentral")


@login_required
@require_POST
def bring(request, pk: int):
    """Let another team of the linking user (field `team`, a slug) use this link, without
    signing in to RingCentral again."""
    connection, _ = _connection_for(request, pk)
    if connection.linked_by_id != request.user.pk:
        raise PermissionDenied(
            "Only the person who linked this RingCentral account can use it in another team."
        )
    target = get_rw_team_for_user(request, request.POST.get("team") or "", role=Role.SENDER)
    if not connection.is_usable:
        messages.error(request, "Reconnect RingCentral first: this link is not working.")
    elif connections.bring_into(connection, target.team, request.user):
        name = connection.extension_name or "this link"
        messages.success(
            request, f"The senders of {target.team} can now send from {name}'s numbers."
        )
    else:
        messages.info(request, f"{target.team} already uses this link.")
    return redirect("ringcentral")


@login_required
@require_POST
def stop_using(request, pk: int):
    """The current team stops using a link brought in from another team (its linking user or
    the team's admins decide); the link itself stays as it is."""
    membership = get_team_for_user(request)
    share = get_object_or_404(
        ConnectionShare.objects.select_related("connection"), connection_id=pk, team=membership.team
    )
    if share.connection.linked_by_id != request.user.pk and not membership.can(Role.ADMIN):
        raise PermissionDenied(
            "Only the person who brought this link in or a team admin can stop using it here."
        )
    share.delete()
    messages.success(request, f"{membership.team} no longer sends from this link.")
    return redirect("ringcentral")


@login_required
@require_POST
def sync(request, pk: int):
    connection, membership = _connection_for(request, pk)
    if connection.linked_by_id != request.user.pk and not membership.can(Role.SENDER):
        raise PermissionDenied("Viewers cannot refresh the phone numbers.")
    if not connection.is_usable:
        messages.error(request, "Reconnect RingCentral first: this link is not working.")
        return redirect("ringcentral")
    _sync_with_message(request, connection)
    return redirect("ringcentral")


@login_required
@require_http_methods(["GET", "POST"])
def disconnect(request, pk: int):
    """GET asks for confirmation; POST disconnects (linking user or a team admin)."""
    connection, membership = _connection_for(request, pk)
    if connection.linked_by_id != request.user.pk and not membership.can(Role.ADMIN):
        raise PermissionDenied(
            "Only the person who linked this RingCentral account or a team admin can disconnect it."
        )
    if request.method == "GET":
        return render(request, "ringcentral/disconnect.html", {"connection": connection})
    if connection.status != ConnectionStatus.DISCONNECTED:
        connections.disconnect(connection)
    messages.success(request, f"RingCentral disconnected: {connection}.")
    return redirect("ringcentral")
