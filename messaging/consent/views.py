"""`/consent/`: the team's opt-outs in force and the form a team admin opts a contact out or
back in with; `/consent/settings/`: quiet hours and the opt-out line."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from messaging.consent import actions, checks
from messaging.consent.forms import OPT_OUT, ManualConsentForm, MessagingSettingsForm
from messaging.consent.team_settings import settings_for
from messaging.core.phones import format_number
from messaging.models import ConsentSource, Role
from messaging.teams.permissions import get_rw_team_for_user, get_team_for_user


def _rows(membership, query: str) -> list[dict]:
    return [
        {
            "record": record,
            "contact": format_number(record.contact_number),
            "sender": "every number"
            if record.from_number == "*"
            else format_number(record.from_number),
            "why": checks.explain(record.contact_number, record, record.from_number),
            "source": ConsentSource(record.source).label,
        }
        for record in actions.opted_out_records(membership.team, query)
    ]


def _page(request, membership, form, status=200):
    query = request.GET.get("q", "")[:40]
    return render(
        request,
        "consent/list.html",
        {
            "membership": membership,
            "team": membership.team,
            "rows": _rows(membership, query),
            "query": query,
            "form": form,
            "may_change": membership.can(Role.ADMIN),
            "page_size": actions.PAGE_SIZE,
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def consent_list(request):
    if request.method == "GET":
        membership = get_team_for_user(request)
        initial = {"number": request.GET.get("number", "")[:40]}
        return _page(request, membership, ManualConsentForm(initial=initial))
    membership = get_rw_team_for_user(request, role=Role.ADMIN)
    form = ManualConsentForm(request.POST)
    if not form.is_valid():
        return _page(request, membership, form, status=400)
    number = form.cleaned_data["number"]
    opted_out = form.cleaned_data["action"] == OPT_OUT
    _, changed = actions.set_by_hand(
        membership, number, opted_out=opted_out, note=form.cleaned_data["note"]
    )
    what = "opted out of texts from the team" if opted_out else "opted back in"
    if changed:
        messages.success(
            request, f"{format_number(number)} {what}. RingCentral's consent list is updated too."
        )
    else:
        messages.info(request, f"{format_number(number)} was already {what}; nothing changed.")
    return HttpResponseRedirect(reverse("consent"))


@login_required
@require_http_methods(["GET", "POST"])
def consent_settings(request):
    membership = get_rw_team_for_user(request, role=Role.ADMIN)
    current = settings_for(membership.team)
    form = MessagingSettingsForm(
        request.POST if request.method == "POST" else None, instance=current
    )
    if request.method == "POST":
        if form.is_valid():
            actions.save_settings(membership, form)
            messages.success(request, "Saved.")
            return HttpResponseRedirect(reverse("consent_settings"))
        status = 400
    else:
        status = 200
    return render(
        request,
        "consent/settings.html",
        {"membership": membership, "team": membership.team, "form": form},
        status=status,
    )
