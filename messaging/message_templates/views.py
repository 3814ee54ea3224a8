"""The template pages.

    GET       /templates/                    the templates this member may read
    GET/POST  /templates/new/                a new template (senders: personal; admins: team too)
    GET/POST  /templates/<id>/               edit (its owner; team templates: team admins);
                                             others who may read it see it read-only
    POST      /templates/<id>/delete/        delete (whoever may edit it)
    POST      /templates/preview/            the text merged with a contact, and its length (JSON)

A template another member cannot read is a 404 for them, whatever their role. A template's files
are added and removed by the compose room (it stores files): /templates/<id>/files/.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from messaging.message_templates import library
from messaging.message_templates.forms import TemplateForm
from messaging.message_templates.merge import CONTACT_FIELDS, TemplateError
from messaging.models import Contact, Role
from messaging.ringcentral import limits
from messaging.teams.permissions import get_rw_team_for_user, get_team_for_user


@login_required
@require_GET
def template_list(request):
    membership = get_team_for_user(request)
    templates = list(library.visible_to(membership).prefetch_related("attachments"))
    return render(
        request,
        "message_templates/list.html",
        {
            "team": membership.team,
            "rows": [
                {"template": t, "can_edit": library.may_edit(membership, t)} for t in templates
            ],
            "can_create": membership.can(Role.SENDER),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def template_new(request):
    membership = get_rw_team_for_user(request, role=Role.SENDER)
    form = TemplateForm(request.POST or None, membership=membership)
    if request.method == "POST" and form.is_valid():
        template = form.save()
        messages.success(request, f"Template “{template.name}” saved. You can add files to it.")
        return redirect("template_edit", pk=template.pk)
    return _editor(request, membership, form, None, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def template_edit(request, pk):
    membership = get_team_for_user(request)
    template = library.readable(membership, pk)
    can_edit = library.may_edit(membership, template)
    if request.method == "POST" and not can_edit:
        raise PermissionDenied("Only the team's admins change a team template.")
    form = TemplateForm(request.POST or None, instance=template, membership=membership)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Template “{template.name}” saved.")
        return redirect("template_edit", pk=template.pk)
    return _editor(request, membership, form, template, status=400 if form.errors else 200)


def _editor(request, membership, form, template, *, status):
    can_edit = template is None or library.may_edit(membership, template)
    return render(
        request,
        "message_templates/form.html",
        {
            "team": membership.team,
            "form": form,
            "template": template,
            "can_edit": can_edit,
            "attachments": list(template.attachments.all()) if template else [],
            "contact_fields": CONTACT_FIELDS,
            "custom_fields": library.custom_field_names(membership.team),
            "contacts": Contact.objects.filter(team=membership.team).order_by("name", "id")[:200],
            "max_text_units": limits.MAX_TEXT_UNITS,
        },
        status=status,
    )


@login_required
@require_POST
def template_delete(request, pk):
    membership = get_team_for_user(request)
    template = library.readable(membership, pk)
    if not library.may_edit(membership, template):
        raise PermissionDenied("Only the team's admins delete a team template.")
    name = template.name
    template.delete()  # its files are released by the compose room (messaging/apps.py)
    messages.success(request, f"Template “{name}” deleted.")
    return redirect("templates")


@never_cache
@require_POST
def template_preview(request):
    """`text` (and `contact`, an id of the team's address book, and `fallback`) → the merged
    text, the fields without a value, and its length in UTF-16 units and SMS segments."""
    if not request.user.is_authenticated:
        return JsonResponse(
            {"ok": False, "error": "Your session has ended. Sign in again."}, status=401
        )
    membership = get_team_for_user(request)
    text = (request.POST.get("text") or "").replace("\r\n", "\n")[:20_000]
    contact = None
    raw = request.POST.get("contact") or ""
    if raw:
        if not raw.isascii() or not raw.isdigit():
            return JsonResponse(
                {"ok": False, "error": "Choose a contact from the list."}, status=400
            )
        contact = Contact.objects.filter(team=membership.team, pk=int(raw)).first()
        if contact is None:
            return JsonResponse(
                {"ok": False, "error": "That contact is not in the team."}, status=404
            )
    try:
        unknown = library.unknown_field_message(membership.team, text)
        result = library.preview(
            membership.team, text, contact, fallback=request.POST.get("fallback", "")[:100]
        )
    except TemplateError as error:
        return JsonResponse({"ok": False, "error": str(error)}, status=400)
    return JsonResponse({"ok": True, "unknown": unknown, **result})
