"""The campaign pages. Viewers read campaigns and their reports; senders create and run them;
people outside the team get 404.

    GET       /campaigns/                    the team's campaigns
    GET/POST  /campaigns/new/                a new campaign (then its pre-flight page);
                                             ?template=<id> starts it from a template
    GET       /campaigns/<id>/               pre-flight before it starts; progress afterwards
    GET/POST  /campaigns/<id>/edit/          name, text, start time (only before it starts);
                                             ?template=<id> takes a template's text
    POST      /campaigns/<id>/start/ pause/ resume/ cancel/
    GET       /campaigns/<id>/progress/      the progress as JSON (polled by the page)
    GET       /campaigns/<id>/report.csv     one row per recipient, with reasons
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.text import get_valid_filename
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from messaging.campaigns import creation, lengths, preflight, report, running
from messaging.campaigns.forms import CampaignFields, CampaignForm
from messaging.compose.picker import describe_length
from messaging.contacts import exporting
from messaging.message_templates import library as template_library
from messaging.models import Campaign, Role
from messaging.teams.permissions import get_rw_team_for_user, get_team_for_user


def _campaign(membership, pk) -> Campaign:
    campaign = Campaign.objects.filter(team=membership.team, pk=pk).first()
    if campaign is None:
        raise Http404
    return campaign


def _campaign_to_run(request, pk):
    """The campaign (404 outside its team) and the member's membership, who must be a sender
    (403 otherwise, once the campaign is known to be theirs to see)."""
    campaign = _campaign(get_team_for_user(request), pk)
    return get_rw_team_for_user(request, role=Role.SENDER), campaign


@login_required
@never_cache
@require_GET
def campaign_list(request):
    membership = get_team_for_user(request)
    campaigns = Campaign.objects.filter(team=membership.team)[:100]
    return render(
        request,
        "campaigns/list.html",
        {
            "team": membership.team,
            "campaigns": campaigns,
            "can_send": membership.can(Role.SENDER),
        },
    )


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def campaign_new(request):
    membership = get_rw_team_for_user(request, role=Role.SENDER)
    if request.method != "POST":
        template = _picked_template(membership, request.GET)
        form = CampaignForm(initial=_from_template(template), membership=membership)
        return _new_page(request, membership, form, template)
    template = _picked_template(membership, request.POST)
    form = CampaignForm(request.POST, request.FILES, membership=membership)
    form.is_valid()
    data = form.cleaned_data
    errors = {name: list(found) for name, found in form.errors.items()}
    ask = creation.Request(
        name=data.get("name") or request.POST.get("name", ""),
        sender_ids=request.POST.getlist("senders"),
        text=data.get("text") or request.POST.get("text", ""),
        missing_policy=data.get("missing_policy") or request.POST.get("missing_policy", ""),
        fallback_text=data.get("fallback_text", ""),
        source=request.POST.get("source", ""),
        tag=data.get("tag") or "",
        contact_ids=[int(pk) for pk in data.get("contacts") or []],
        upload=request.FILES.get("list_file"),
        attachments=request.FILES.getlist("attachments"),
        template_files=list(template.attachments.all()) if template else [],
        start_at=data.get("start_at"),
        # The form's own problems (a start time in the past, a sender not offered) are shown
        # with those of the campaign; the senders are checked again by the campaign.
        errors={k: v for k, v in errors.items() if k not in ("senders", "name", "text")},
    )
    try:
        campaign = creation.create(membership, ask)
    except creation.CampaignInvalid as invalid:
        for name, found in invalid.errors.items():
            target = {"recipients": "list_file", "attachments": "attachments"}.get(name, name)
            if name == "recipients" and ask.source != "file":
                target = "tag" if ask.source == "tag" else "contacts"
            for message in found:
                if message not in form.errors.get(target, []):
                    form.add_error(target if target in form.fields else None, message)
        return _new_page(request, membership, form, template, status=400)
    messages.success(request, "Campaign created. Check it, then start it.")
    return HttpResponseRedirect(reverse("campaign_detail", args=[campaign.pk]))


def _picked_template(membership, data):
    """The template named by ``template`` in ``data`` if the member may read it (404 if not);
    None when none is named."""
    if not data.get("template"):
        return None
    return template_library.readable(membership, data["template"])


def _from_template(template) -> dict:
    """What a template puts in the campaign form (its files are copied when it is created)."""
    if template is None:
        return {}
    return {
        "text": template.text,
        "missing_policy": template.missing_policy,
        "fallback_text": template.fallback,
    }


def _picker_context(membership, form, template) -> dict:
    """The "Use template" picker, and the length of the text as it stands (before merging)."""
    text = form["text"].value() or ""
    return {
        "templates": list(template_library.visible_to(membership).order_by("name", "pk")),
        "picked": template,
        "picked_files": list(template.attachments.all()) if template else [],
        "text_length": describe_length(text),
    }


def _new_page(request, membership, form, template=None, status=200):
    return render(
        request,
        "campaigns/new.html",
        {"team": membership.team, "form": form, **_picker_context(membership, form, template)},
        status=status,
    )


@login_required
@never_cache
@require_GET
def campaign_detail(request, pk):
    membership = get_team_for_user(request)
    campaign = _campaign(membership, pk)
    context = {
        "team": membership.team,
        "campaign": campaign,
        "can_send": membership.can(Role.SENDER),
        "summary": preflight.summary(campaign),
        "progress": running.progress(campaign),
        "lengths": lengths.message_lengths(campaign) if campaign.status == "draft" else None,
        "senders": list(campaign.senders.all()),
        "files": list(campaign.files.all()),
    }
    return render(request, "campaigns/detail.html", context)


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def campaign_edit(request, pk):
    membership, campaign = _campaign_to_run(request, pk)
    if not campaign.is_editable:
        messages.error(
            request,
            f"This campaign is {campaign.get_status_display().lower()}: it can no longer be "
            "changed. Cancel it and create a new one to send something else.",
        )
        if request.method == "POST":
            return _refused(request, campaign, 409)
        return HttpResponseRedirect(reverse("campaign_detail", args=[campaign.pk]))
    zone_form = CampaignFields(team=membership.team)
    initial = {
        "name": campaign.name,
        "text": campaign.text,
        "missing_policy": campaign.missing_policy,
        "fallback_text": campaign.fallback_text,
        "start_at": campaign.start_at.astimezone(zone_form.zone) if campaign.start_at else None,
    }
    if request.method != "POST":
        template = _picked_template(membership, request.GET)
        form = CampaignFields(initial=initial | _from_template(template), team=membership.team)
        return _edit_page(request, membership, campaign, form, template)
    template = _picked_template(membership, request.POST)
    form = CampaignFields(request.POST, team=membership.team)
    if form.is_valid():
        try:
            creation.update(
                campaign,
                **form.cleaned_data,
                template_files=list(template.attachments.all()) if template else None,
            )
        except creation.CampaignInvalid as invalid:
            for name, found in invalid.errors.items():
                for message in found:
                    form.add_error(name if name in form.fields else None, message)
        else:
            messages.success(request, "Campaign saved.")
            return HttpResponseRedirect(reverse("campaign_detail", args=[campaign.pk]))
    return _edit_page(request, membership, campaign, form, template, status=400)


def _edit_page(request, membership, campaign, form, template=None, status=200):
    context = {"team": membership.team, "campaign": campaign, "form": form}
    context.update(_picker_context(membership, form, template))
    context["files"] = list(campaign.files.all())
    return render(request, "campaigns/edit.html", context, status=status)


def _refused(request, campaign, status):
    """The campaign's page again, with the refusal shown, and a 4xx status."""
    membership = get_team_for_user(request)
    context = {
        "team": membership.team,
        "campaign": campaign,
        "can_send": membership.can(Role.SENDER),
        "summary": preflight.summary(campaign),
        "progress": running.progress(campaign),
        "lengths": lengths.message_lengths(campaign) if campaign.status == "draft" else None,
        "senders": list(campaign.senders.all()),
        "files": list(campaign.files.all()),
    }
    return render(request, "campaigns/detail.html", context, status=status)


def _action(request, pk, act, done: str):
    _, campaign = _campaign_to_run(request, pk)
    try:
        act(campaign)
    except running.CampaignRefused as refused:
        messages.error(request, str(refused))
        campaign.refresh_from_db()
        return _refused(request, campaign, 409)
    messages.success(request, done)
    return HttpResponseRedirect(reverse("campaign_detail", args=[campaign.pk]))


@login_required
@require_POST
def campaign_start(request, pk):
    return _action(request, pk, running.start, "Campaign started.")


@login_required
@require_POST
def campaign_pause(request, pk):
    return _action(
        request,
        pk,
        running.pause,
        "Campaign paused: no more messages are handed to the outbox until you resume it.",
    )


@login_required
@require_POST
def campaign_resume(request, pk):
    return _action(request, pk, running.resume, "Campaign resumed.")


@login_required
@require_POST
def campaign_cancel(request, pk):
    return _action(
        request, pk, running.cancel, "Campaign canceled: messages not sent yet will not be sent."
    )


@never_cache
@require_GET
def campaign_progress(request, pk):
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Your session has ended; sign in again."}, status=401)
    membership = get_team_for_user(request)
    campaign = _campaign(membership, pk)
    return JsonResponse(running.progress(campaign).as_json())


@login_required
@require_GET
def campaign_report(request, pk):
    membership = get_team_for_user(request)
    campaign = _campaign(membership, pk)
    response = StreamingHttpResponse(
        exporting.csv_lines(report.HEADER, report.report_rows(campaign)),
        content_type="text/csv; charset=utf-8",
    )
    stem = get_valid_filename(campaign.name)[:60] or "campaign"
    response["Content-Disposition"] = f'attachment; filename="{stem}-report.csv"'
    return response
