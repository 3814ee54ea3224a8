"""The compose page and its helpers for the browser.

    GET/POST /messages/compose/                  the form (works without JavaScript)
    POST     /messages/compose/upload/           one file -> a draft attachment (JSON)
    POST     /messages/compose/upload/<key>/delete/   remove a draft (JSON)
    POST     /messages/compose/check/            the server's verdict on the fields (JSON)
    GET      /messages/compose/upload/<key>/thumbnail/   a draft's preview (its uploader only)
    POST     /templates/<id>/files/              add files to a template (who may edit it)
    POST     /templates/<id>/files/<file>/delete/   remove one

Senders and above only (viewers get 403); everything is looked up inside the current team.
Checking lives in messaging/compose/submission.py, so the page, the live checks and the command
line give the same answers in the same words.

Hostile or oversized uploads: the views that take files are exempt from the CSRF middleware,
because that middleware reads (and so parses and stores) the whole body before any view runs.
They look at Content-Length first, refuse an oversized request unread (413), and only then
check the CSRF token with `csrf_protect` and parse the body. A body without a Content-Length is
read as empty by Django, so the check cannot be skipped.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from messaging.compose import media
from messaging.compose.drafts import (
    MAX_LIVE_DRAFTS,
    create_draft,
    delete_draft,
    form_drafts,
    load_drafts,
    new_form_key,
    parse_form_key,
    purge_expired_drafts,
    quota_problem,
    waiting_uploads,
)
from messaging.compose.forms import ComposeForm
from messaging.compose.picker import add_files as add_template_files
from messaging.compose.picker import pick
from messaging.compose.recipients import expand_tags, known_problems, parse_recipients
from messaging.compose.senders import last_used, sender_numbers, sender_refusal
from messaging.compose.submission import (
    ComposeInvalid,
    Mode,
    fit_report,
    prefill_from,
    prepare,
    quiet_hours_warning,
    submit,
    summary,
)
from messaging.compose.uploads import ingest_upload, sizes_apart
from messaging.consent.team_settings import opt_out_suffix
from messaging.contacts.book import names_for
from messaging.core.addresses import origin_of
from messaging.core.files import serve_stored
from messaging.core.phones import format_number
from messaging.links.connections import brought_into
from messaging.message_templates import library as template_library
from messaging.models import DraftAttachment, OutboundMessage, RingCentralConnection, Role
from messaging.ringcentral import limits
from messaging.teams.permissions import get_rw_team_for_user, get_team_for_user

log = logging.getLogger(__name__)

# Room for the multipart framing and the other fields around one file.
FORM_OVERHEAD = 64 * 1024


def _outbox_url(created) -> str:
    """Where to go after queueing: the message itself when there is one and its page exists,
    else the outbox (its URL name may not be registered yet, hence the fallback)."""
    if len(created) == 1:
        try:
            return reverse("message_detail", args=[created[0].pk])
        except NoReverseMatch:
            pass
    try:
        return reverse("outbox")
    except NoReverseMatch:
        return "/messages/"


def _content_length(request) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def _too_large_message(size: int, limit: int) -> str:
    shown, shown_limit = sizes_apart(size, limit)
    return (
        f"The upload is {shown}; this portal accepts at most {shown_limit} at once. "
        "Attach fewer or smaller files — photos are "
        f"reduced to fit RingCentral's {limits.format_size(limits.MAX_ATTACHMENTS_BYTES)} "
        "automatically, so they need not be large."
    )


def _parse_body(request) -> str | None:
    """Parse the form now, inside our own error handling; a message when it cannot be read."""
    try:
        request.POST  # noqa: B018 - parsing has side effects we want here, not in a middleware
        request.FILES  # noqa: B018
    except RequestDataTooBig:
        return "The form is too large to read. Shorten the recipient list or the text."
    except (SuspiciousOperation, MultiPartParserError):
        return (
            "The form could not be read (too many files, or the upload was broken off). "
            f"Attach at most {limits.MAX_ATTACHMENTS} files and send again."
        )
    return None


def _numbers(membership):
    """The numbers the page offers: those the member may send from that can text at all (a
    number that cannot send files is offered, with a note, and refused only with files)."""
    numbers = sender_numbers(membership.user, membership.team)
    return [n for n in numbers if sender_refusal(n, with_files=False) is None]


def _form_key(request):
    """The compose page a request comes from (`?form=` on every URL the page posts to), or a
    new page's key when there is none."""
    return parse_form_key(request.GET.get("form")) or new_form_key()


def _unavailable(request, membership, status=200):
    team = membership.team
    team_has_links = (
        (RingCentralConnection.objects.filter(team=team) | brought_into(team))
        .filter(status__in=RingCentralConnection.USABLE_STATUSES)
        .exists()
    )
    return render(
        request,
        "messaging/compose_unavailable.html",
        {"team": team, "team_has_links": team_has_links},
        status=status,
    )


def _draft_json(draft: DraftAttachment) -> dict:
    media_type = limits.describe_type(draft.content_type)
    return {
        "id": str(draft.key),
        "name": draft.original_name,
        "size": draft.size,
        "originalSize": draft.original_size,
        "sizeText": limits.format_size(draft.size),
        "originalSizeText": limits.format_size(draft.original_size),
        "contentType": draft.content_type,
        "label": media_type.label if media_type else draft.content_type,
        "category": media_type.category if media_type else "",
        "fittable": draft.fittable,
        "converted": draft.was_converted,
        "notes": draft.notes,
        "thumbnailUrl": reverse("compose_upload_thumbnail", args=[draft.key])
        if draft.thumbnail
        else None,
        "deleteUrl": reverse("compose_upload_delete", args=[draft.key]),
    }


def megabytes(num_bytes: int) -> str:
    """Megabytes with two decimals, halves rounded up, as the page's script writes them."""
    hundredths = (num_bytes + 5_000) // 10_000
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def _meter(drafts) -> dict:
    total = sum(d.size for d in drafts)
    return {
        "count": len(drafts),
        "bytes": total,
        "text": f"{len(drafts)} of {limits.MAX_ATTACHMENTS} files · {megabytes(total)} of "
        f"{limits.format_size(limits.MAX_ATTACHMENTS_BYTES)}",
    }


def _render(
    request,
    membership,
    form,
    *,
    drafts=(),
    status=200,
    page_error="",
    expanded=(),
    picked=None,
    picked_name="",
):
    drafts = list(drafts)
    form_query = f"?form={form.form_key}"
    return render(
        request,
        "messaging/compose.html",
        {
            "form": form,
            "form_action": reverse("compose") + form_query,
            "team": membership.team,
            "warnings": _recipient_warnings(membership, form),
            "drafts": [(d, _draft_json(d)) for d in drafts],
            "drafts_json": [_draft_json(d) for d in drafts],
            "meter": _meter(drafts),
            "limits": limits.as_json(),
            "limits_summary": limits.supported_summary(),
            "page_error": page_error,
            "expanded": list(expanded),
            "templates": list(template_library.visible_to(membership)),
            "picked": picked,
            "picked_name": picked_name,
            "contact_search_url": reverse("contact_search"),
            "default_region": settings.PHONE_DEFAULT_REGION,
            "compose_config": {
                "uploadUrl": reverse("compose_upload") + form_query,
                "checkUrl": reverse("compose_check") + form_query,
                "maxFileBytes": settings.COMPOSE_MAX_FILE_BYTES,
                "maxFileBytesLabel": limits.format_size(settings.COMPOSE_MAX_FILE_BYTES),
                "maxRequestBytes": settings.COMPOSE_MAX_REQUEST_BYTES,
                "minImageBytes": media.MIN_IMAGE_BYTES,
                # Counted with the text: the team adds it to a first message to a contact.
                "optOutLine": opt_out_suffix(membership.team),
            },
        },
        status=status,
    )


@csrf_exempt  # CSRF is checked by csrf_protect in _compose, after the size check (see above)
@never_cache
@require_http_methods(["GET", "POST"])
def compose_view(request):
    if not request.user.is_authenticated:
        from django.contrib.auth.views import redirect_to_login

        return redirect_to_login(request.get_full_path())
    membership = get_rw_team_for_user(request, role=Role.SENDER)
    if request.method == "POST":
        size = _content_length(request)
        if size > settings.COMPOSE_MAX_REQUEST_BYTES:
            return _refused(
                request,
                membership,
                _too_large_message(size, settings.COMPOSE_MAX_REQUEST_BYTES),
                413,
            )
    return _compose(request, membership)


def _refused(request, membership, message, status):
    """The page again with one error at the top, for a request whose body was not read."""
    numbers = _numbers(membership)
    if not numbers:
        return _unavailable(request, membership, status=status)
    form_key = _form_key(request)
    drafts = form_drafts(membership.user, membership.team, form_key)
    form = ComposeForm(membership=membership, numbers=numbers, form_key=form_key)
    response = _render(request, membership, form, drafts=drafts, status=status, page_error=message)
    # The unread body would otherwise be parsed as the next request on this connection.
    response["Connection"] = "close"
    return response


@csrf_protect
def _compose(request, membership):
    numbers = _numbers(membership)
    if not numbers:
        return _unavailable(request, membership, status=400 if request.method == "POST" else 200)
    if request.method != "POST":
        # A page opened anew starts with no files, whatever was attached on other pages.
        form_key = new_form_key()
        initial = _send_again(request, membership, form_key) or {
            "sender": _preselected(membership, numbers)
        }
        form = ComposeForm(
            initial=initial, membership=membership, numbers=numbers, form_key=form_key
        )
        drafts = form_drafts(membership.user, membership.team, form_key)
        return _render(request, membership, form, drafts=drafts)

    problem = _parse_body(request)
    if problem:
        return _refused(request, membership, problem, 400)
    if "use_template" in request.POST:
        return _use_template(request, membership, numbers)
    form = ComposeForm(
        request.POST,
        request.FILES,
        membership=membership,
        numbers=numbers,
        form_key=_form_key(request),
    )
    if form.is_valid() and form.outgoing is not None and form.outgoing.tags:
        return _show_expanded(request, membership, form, numbers)
    if form.is_valid() and form.outgoing is not None:
        created = submit(form.outgoing, origin=origin_of(request))
        messages.success(request, summary(form.outgoing, created))
        quiet = "" if form.outgoing.send_at else quiet_hours_warning(form.outgoing)
        if quiet:
            messages.warning(request, quiet)
        report = fit_report(form.outgoing)
        if report:
            messages.info(
                request,
                "Photos reduced to fit RingCentral's "
                f"{limits.format_size(limits.MAX_ATTACHMENTS_BYTES)}: " + "; ".join(report) + ".",
            )
        return HttpResponseRedirect(_outbox_url(created))
    kept = _keep_as_drafts(membership, form, form.ingested)
    return _render(request, membership, form, drafts=list(form.drafts) + kept, status=400)


def _use_template(request, membership, numbers):
    """ "Use template": the page again with the template's text (merged with the one recipient
    when that is a contact) and its files added to those already attached."""
    data = request.POST
    form_key = _form_key(request)
    template = template_library.readable(membership, data.get("pick_template", ""))
    recipients = parse_recipients(expand_tags(membership.team_id, data.get("to", "")).raw).numbers
    drafts, _ = load_drafts(membership.user, membership.team, form_key, data.getlist("uploads"))
    picked = pick(membership, template, form_key, recipients)
    initial = {name: data.get(name, "") for name in ("sender", "to", "mode", "send_at")}
    initial.update(
        text=picked.text,
        template=str(template.pk),
        fit_images=data.get("fit_images") == "on",
        send_later=data.get("send_later") == "on",
        time_zone=data.get("time_zone", ""),
    )
    form = ComposeForm(initial=initial, membership=membership, numbers=numbers, form_key=form_key)
    return _render(
        request,
        membership,
        form,
        drafts=list(drafts) + picked.drafts,
        picked=picked,
        picked_name=template.name,
    )


def _show_expanded(request, membership, form, numbers):
    """Tags typed as recipients are never queued unseen: the page comes back with the tags
    replaced by their numbers, and says who they are, for a second press of the button."""
    kept = _keep_as_drafts(membership, form, form.ingested)
    outgoing = form.outgoing
    initial = {
        name: form.cleaned_data.get(name) for name in ("sender", "text", "mode", "fit_images")
    }
    initial["sender"] = str(outgoing.sender.pk)
    initial["to"] = "\n".join(format_number(n) for n in outgoing.recipients)
    shown = ComposeForm(
        initial=initial, membership=membership, numbers=numbers, form_key=form.form_key
    )
    response = _render(
        request,
        membership,
        shown,
        drafts=list(form.drafts) + kept,
        expanded=[t.sentence() for t in outgoing.tags],
    )
    return response


def _recipient_warnings(membership, form) -> list[str]:
    """Known problems with the recipients the page shows ("send again" of an undelivered
    message, or a form sent back), so nobody queues a message bound to fail."""
    typed = form.data.get("to", "") if form.is_bound else form.initial.get("to", "")
    return known_problems(membership.team, parse_recipients(typed or "").numbers)


def _preselected(membership, numbers) -> str:
    """The number a new message starts from: the only one, else the one last sent from."""
    if len(numbers) == 1:
        return str(numbers[0].pk)
    number = last_used(membership.user, membership.team, numbers)
    return str(number.pk) if number else ""


def _send_again(request, membership, form_key) -> dict:
    """`?again=<id>`: start from a message of this team (404 for anyone else's)."""
    again = request.GET.get("again")
    if not again:
        return {}
    if not again.isascii() or not again.isdigit():
        raise Http404
    message = get_object_or_404(
        OutboundMessage.objects.prefetch_related("recipients", "attachments"),
        team=membership.team,
        pk=int(again),
    )
    return prefill_from(message, membership.user, form_key)


def _keep_as_drafts(membership, form, files):
    """Store the new files that passed their own checks, so that a form sent back for another
    reason does not make the user attach them again (on this page only); say which were not
    kept, and why."""
    user, team = membership.user, membership.team
    room = MAX_LIVE_DRAFTS - waiting_uploads(user, team)
    kept = []
    for file in files:
        if len(kept) >= room:
            form.add_error(
                "attachments",
                f"Not kept: “{file.name}” — too many files are waiting to be sent. Remove some "
                "and attach it again.",
            )
            continue
        refusal = quota_problem(user, team, file.size)
        if refusal:
            form.add_error("attachments", f"Not kept: “{file.name}” — {refusal}")
            continue
        kept.append(create_draft(user, team, form.form_key, file))
    return kept


# --- JSON helpers for the page's script --------------------------------------------------------


def _json_error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"ok": False, "error": message}, status=status)


def _json_membership(request):
    """The sending membership, or a JSON error response (a script cannot follow a login page)."""
    if not request.user.is_authenticated:
        return None, _json_error("Your session has ended. Sign in again.", 401)
    try:
        return get_rw_team_for_user(request, role=Role.SENDER), None
    except PermissionDenied as denied:
        return None, _json_error(str(denied) or "You may not send in this team.", 403)
    except Http404:
        return None, _json_error("Not found.", 404)


@csrf_exempt  # checked by csrf_protect in _upload, after the size check (module docstring)
@never_cache
@require_POST
def upload(request):
    """Take one file (field ``file``), check and normalise it, keep it as a draft.

    201 with ``{"ok": true, "upload": {...}}``, or 4xx with ``{"ok": false, "error": "..."}``.
    """
    membership, error = _json_membership(request)
    if error:
        return error
    size = _content_length(request)
    limit = settings.COMPOSE_MAX_FILE_BYTES + FORM_OVERHEAD
    if size > limit:
        shown, shown_limit = sizes_apart(size, settings.COMPOSE_MAX_FILE_BYTES)
        response = _json_error(
            f"The file is {shown}; this portal accepts files of up to {shown_limit}. "
            "Send a smaller copy.",
            413,
        )
        response["Connection"] = "close"
        return response
    return _upload(request, membership)


@csrf_protect
def _upload(request, membership):
    problem = _parse_body(request)
    if problem:
        return _json_error(problem, 400)
    uploaded = request.FILES.get("file")
    if uploaded is None:
        return _json_error("No file arrived. Choose the file again.", 400)
    form_key = parse_form_key(request.GET.get("form"))
    if form_key is None:
        return _json_error("This page is out of date. Reload it and attach the file again.", 400)
    purge_expired_drafts(limit=20)
    user, team = membership.user, membership.team
    live = waiting_uploads(user, team)
    if live >= MAX_LIVE_DRAFTS:
        return _json_error(
            f"You have {live} files waiting to be sent. Send or remove some before adding more.",
            400,
        )
    # Before any work on the file when even an empty one would not fit; after, with its size.
    refusal = quota_problem(user, team, 1)
    if refusal:
        return _json_error(refusal, 400)
    try:
        file = ingest_upload(uploaded)
    except media.MediaError as refused:
        return _json_error(refused.message, 400)
    refusal = quota_problem(user, team, file.size)
    if refusal:
        return _json_error(refusal, 400)
    draft = create_draft(user, team, form_key, file)
    return JsonResponse({"ok": True, "upload": _draft_json(draft)}, status=201)


@never_cache
@require_POST
def upload_delete(request, key):
    if not request.user.is_authenticated:
        return _json_error("Your session has ended. Sign in again.", 401)
    # The draft first, the role second (as for every object URL): someone else's draft is a 404
    # whatever the requester's role, so the answer says nothing about whether it exists.
    draft = DraftAttachment.objects.filter(
        key=key, user=request.user, team=get_team_for_user(request).team
    ).first()
    if draft is None:
        return _json_error("That file is no longer attached.", 404)
    _, error = _json_membership(request)
    if error:
        return error
    delete_draft(draft)
    return JsonResponse({"ok": True})


@never_cache
@require_POST
def check(request):
    """The server's verdict on the form's fields, without files in the body: the page's script
    shows these messages while the user types, so they match what sending would say."""
    membership, error = _json_membership(request)
    if error:
        return error
    data = request.POST
    drafts, gone = load_drafts(
        membership.user, membership.team, _form_key(request), data.getlist("uploads")
    )
    expanded = expand_tags(membership.team_id, data.get("to", ""))
    parsed = parse_recipients(expanded.raw)
    names = names_for(membership.team_id, parsed.numbers)
    try:
        prepare(
            membership,
            sender=data.get("sender"),
            to=data.get("to", ""),
            text=data.get("text", ""),
            drafts=drafts,
            mode=data.get("mode") or Mode.SEPARATE,
            fit_images=data.get("fit_images") in ("on", "true", "1"),
            file_errors=gone,
            check_only=True,
        )
        errors = {}
    except ComposeInvalid as invalid:
        errors = invalid.errors
    return JsonResponse(
        {
            "ok": not errors,
            "errors": errors,
            "recipients": [
                {
                    "number": n,
                    "display": f"{names[n]} ({format_number(n)})"
                    if n in names
                    else format_number(n),
                }
                for n in parsed.numbers
            ],
            "tags": [t.sentence() for t in expanded.tags],
            "duplicates": parsed.duplicates,
        }
    )


@login_required
@require_GET
def draft_thumbnail(request, key):
    membership = get_team_for_user(request)
    draft = DraftAttachment.objects.filter(key=key, user=request.user, team=membership.team).first()
    if draft is None:
        raise Http404
    return serve_stored(
        draft.thumbnail.name, "image/jpeg", f"preview of {draft.original_name}.jpg", inline=True
    )


# --- A template's files (compose stores files; messaging/compose/picker.py) ---------------------


def _template_for_files(request, pk):
    membership = get_team_for_user(request)
    template = template_library.readable(membership, pk)
    if not template_library.may_edit(membership, template):
        raise PermissionDenied("Only whoever may edit the template changes its files.")
    return template


@csrf_exempt  # checked by csrf_protect in _template_files, after the size check (see above)
@login_required
@require_POST
def template_files(request, pk):
    template = _template_for_files(request, pk)
    size = _content_length(request)
    if size > settings.COMPOSE_MAX_REQUEST_BYTES:
        messages.error(request, _too_large_message(size, settings.COMPOSE_MAX_REQUEST_BYTES))
        response = HttpResponseRedirect(reverse("template_edit", args=[template.pk]))
        # The unread body would otherwise be parsed as the next request on this connection.
        response["Connection"] = "close"
        return response
    return _template_files(request, template)


@csrf_protect
def _template_files(request, template):
    problem = _parse_body(request)
    if problem:
        messages.error(request, problem)
        return HttpResponseRedirect(reverse("template_edit", args=[template.pk]))
    uploads = request.FILES.getlist("attachments")
    if not uploads:
        messages.error(request, "Choose the files to add.")
        return HttpResponseRedirect(reverse("template_edit", args=[template.pk]))
    problems = add_template_files(template, uploads)
    for problem in problems:
        messages.error(request, problem)
    added = len(uploads) - len(problems)
    if added > 0:
        messages.success(request, f"{added} file{'s' if added != 1 else ''} added.")
    return HttpResponseRedirect(reverse("template_edit", args=[template.pk]))


@login_required
@require_POST
def template_file_delete(request, pk, file_pk):
    template = _template_for_files(request, pk)
    row = get_object_or_404(template.attachments, pk=file_pk)
    name = row.original_name
    row.delete()  # the stored bytes are released after commit (messaging/apps.py)
    messages.success(request, f"“{name}” removed from the template.")
    return HttpResponseRedirect(reverse("template_edit", args=[template.pk]))
