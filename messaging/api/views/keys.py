"""The team's API keys page (team admins).

GET/POST  /teams/<slug>/api-keys/                 the keys; make one (shown once)
POST      /teams/<slug>/api-keys/<id>/revoke/     revoke one
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from messaging.api import keys
from messaging.api.forms import ApiKeyForm
from messaging.models import Role
from messaging.teams.permissions import get_rw_team_for_user


def _page(request, membership, form, *, new_key=None, status=200):
    return render(
        request,
        "teams/api_keys.html",
        {
            "team": membership.team,
            "membership": membership,
            "form": form,
            "new_key": new_key,
            "keys": keys.team_keys(membership.team),
        },
        status=status,
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def api_keys(request, slug):
    membership = get_rw_team_for_user(request, slug, Role.ADMIN)
    if request.method != "POST":
        return _page(request, membership, ApiKeyForm(membership=membership))
    form = ApiKeyForm(request.POST, membership=membership)
    if not form.is_valid():
        return _page(request, membership, form, status=400)
    try:
        new_key = keys.create_key(
            membership, name=form.cleaned_data["name"], role=form.cleaned_data["role"]
        )
    except keys.KeyRefused as refused:
        form.add_error(refused.field, str(refused))
        return _page(request, membership, form, status=400)
    # The key is shown on this answer only; it is never stored in clear.
    return _page(request, membership, ApiKeyForm(membership=membership), new_key=new_key)


@login_required
@require_POST
def api_key_revoke(request, slug, key_id):
    membership = get_rw_team_for_user(request, slug, Role.ADMIN)
    api_key = get_object_or_404(keys.team_keys(membership.team), pk=key_id)
    if keys.revoke_key(membership, api_key):
        messages.success(
            request, f"Revoked “{api_key.name}” ({api_key.prefix}…): it works no more."
        )
    else:
        messages.info(request, f"“{api_key.name}” was revoked already.")
    return redirect("api_keys", slug=membership.team.slug)
