"""The inbox pages: the conversation list, a thread with its reply box, and what members do
there (assign, close, reopen, notes, read state), the files received, the notices.

Every member of a team reads its conversations; acting needs the roles messaging/inbox/
actions.py names. Conversations are looked up inside the user's team, so another team's is a
404. A conversation of another of the user's teams (a link from an email) makes that team
current. The list and a thread each cost a fixed number of queries, and follow changes without
a reload (the `live` endpoints, polled by static/js/inbox.js).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Max
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from messaging.compose import media
from messaging.compose.drafts import load_drafts, new_form_key, parse_form_key
from messaging.compose.picker import pick
from messaging.compose.submission import ComposeInvalid
from messaging.consent import quiet_hours
from messaging.contacts.book import contacts_for, names_for
from messaging.core.addresses import origin_of
from messaging.core.files import serve_stored
from messaging.core.phones import format_number
from messaging.core.times import ago
from messaging.inbox import actions, listing, reply
from messaging.message_templates import library as template_library
from messaging.models import (
    Conversation,
    ConversationNote,
    FileState,
    InboxEmails,
    InboxFile,
    Membership,
    OutboundMessage,
    Role,
)
from messaging.outbox import scheduling
from messaging.outbox.folders import badge_class
from messaging.ringcentral import limits
from messaging.teams import actions as team_actions
from messaging.teams.permissions import get_team_for_user

# Replies carry at most a few photos: a body larger than this is refused before it is read.
MAX_REPLY_BYTES_MARGIN = 100_000


def _live_error(request):
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Your session has ended; sign in again."}, status=401)
    return None


# --- The list ------------------------------------------------------------------------------------


def _list_params(request) -> tuple[str, str]:
    filter_key = request.GET.get("filter") or "open"
    if filter_key not in listing.FILTER_KEYS:
        filter_key = "open"
    return filter_key, (request.GET.get("q") or "").replace("\x00", "")


def _list_version(membership) -> str:
    """Changes whenever the list could look different to this person."""
    team_changed = Conversation.objects.filter(team=membership.team).aggregate(
        at=Max("updated_at")
    )["at"]
    mine = Conversation.objects.filter(team=membership.team, reads__user=membership.user).aggregate(
        at=Max("reads__seen_at")
    )["at"]
    return f"{team_changed.timestamp() if team_changed else 0}:{mine.timestamp() if mine else 0}"


def _list_context(request, membership) -> dict:
    filter_key, search = _list_params(request)
    queryset = listing.conversations(membership, filter_key=filter_key, search=search)
    try:
        rows, older = listing.page(queryset, request.GET.get("after") or None)
    except listing.BadCursor:
        raise Http404 from None
    return {
        "team": membership.team,
        "rows": _rows(rows),
        "filters": listing.FILTERS,
        "filter_key": filter_key,
        "search": search,
        "older_url": (
            f"?{urlencode({'filter': filter_key, 'q': search, 'after': older})}" if older else ""
        ),
        "first_page": not request.GET.get("after"),
        "version": _list_version(membership),
        "live_query": urlencode({"filter": filter_key, "q": search}),
    }


def _with_names(numbers, names: dict[str, str]) -> str:
    """Numbers as people read them, each after its contact's name when the team has one."""
    return ", ".join(
        f"{names[n]} ({format_number(n)})" if n in names else format_number(n) for n in numbers
    )


def _rows(conversations) -> list[dict]:
    """The list's rows with their text ready: the page lists fifty, so the template does no
    work per row beyond placing strings. Contact names come in one query for the page."""
    thread_url = reverse("inbox_thread", args=[0])[: -len("0/")]
    conversations = list(conversations)
    names = (
        names_for(conversations[0].team_id, [n for c in conversations for n in c.contact_numbers])
        if conversations
        else {}
    )
    return [
        {
            "pk": c.pk,
            "url": f"{thread_url}{c.pk}/",
            "contact": _with_names(c.contact_numbers, names),
            "unread": c.unread,
            "preview": c.last_preview,
            "ours": c.last_direction == "outbound",
            "team_number": format_number(c.team_number),
            "assignee": c.assignee.email if c.assignee_id else "",
            "closed": c.state == "closed",
            "at": c.last_message_at,
            "ago": ago(c.last_message_at),
        }
        for c in conversations
    ]


@login_required
@never_cache
@require_GET
def inbox_list(request):
    membership = get_team_for_user(request)
    return render(request, "inbox/list.html", _list_context(request, membership))


@never_cache
@require_GET
def inbox_live(request):
    """`/inbox/live/?filter=…&q=…&version=…`: the first page of the list again when anything
    on it may have changed, with the unread count for the navigation."""
    refused = _live_error(request)
    if refused:
        return refused
    membership = get_team_for_user(request)
    version = _list_version(membership)
    unread = listing.unread_conversations(membership)
    if request.GET.get("version") == version:
        return JsonResponse({"changed": False, "unread": unread})
    context = _list_context(request, membership)
    html = render_to_string("inbox/_rows.html", context, request=request)
    return JsonResponse({"changed": True, "version": version, "html": html, "unread": unread})


# --- A thread ------------------------------------------------------------------------------------


def _conversation_for_reading(request, pk) -> tuple[Membership, Conversation]:
    """The conversation and the user's membership in its team; 404 for anyone else."""
    membership = get_team_for_user(request)
    conversation = Conversation.objects.filter(team=membership.team, pk=pk).first()
    if conversation is None:
        slug = (
            Conversation.objects.filter(pk=pk, team__memberships__user=request.user)
            .values_list("team__slug", flat=True)
            .first()
        )
        if slug is None:
            raise Http404
        membership = get_team_for_user(request, slug)
        team_actions.switch_team(request, membership)
        request.membership = membership
        messages.info(
            request, f"You are now working in {membership.team}, the team of this conversation."
        )
        conversation = Conversation.objects.get(team=membership.team, pk=pk)
    return membership, conversation


def _conversation_for_acting(request, pk) -> tuple[Membership, Conversation]:
    membership = get_team_for_user(request)
    conversation = Conversation.objects.filter(team=membership.team, pk=pk).first()
    if conversation is None:
        raise Http404
    return membership, conversation


def _thread_version(conversation: Conversation) -> str:
    """Changes when the thread could look different: a message, a note, a status, a file."""
    fresh = Conversation.objects.filter(pk=conversation.pk).values_list("updated_at", flat=True)
    statuses = OutboundMessage.objects.filter(conversation_message__conversation=conversation)
    latest = statuses.aggregate(at=Max("updated_at"))["at"]
    at = fresh.first()
    return f"{at.timestamp() if at else 0}:{latest.timestamp() if latest else 0}"


def _thread_context(membership, conversation: Conversation, *, reply_form=None) -> dict:
    conversation = (
        Conversation.objects.select_related("assignee", "connection__linked_by")
        .filter(pk=conversation.pk)
        .first()
    )
    thread = listing.thread(conversation)
    number = reply.reply_number(membership, conversation)
    items = [_item(kind, obj) for kind, obj in thread.items]
    known = contacts_for(conversation.team_id, conversation.contact_numbers)
    names = {n: name for n, (_, name) in known.items() if name}
    return {
        "team": membership.team,
        "membership": membership,
        "conversation": conversation,
        "contact": _with_names(conversation.contact_numbers, names),
        "contact_links": _contact_links(conversation.contact_numbers, known),
        "items": items,
        "earlier": thread.earlier,
        "can_act": membership.can(Role.SENDER),
        "is_admin": membership.can(Role.ADMIN),
        "reply_number": number,
        "no_reply_reason": (
            reply.why_no_reply(membership, conversation)
            if number is None and membership.can(Role.SENDER)
            else ""
        ),
        "members": Membership.objects.filter(team=membership.team)
        .select_related("user")
        .order_by("user__email"),
        "reply": reply_form or {"text": "", "errors": {}, "form_key": new_form_key()},
        "templates": list(template_library.visible_to(membership))
        if membership.can(Role.SENDER)
        else [],
        "version": _thread_version(conversation),
        "accept": media.ACCEPT,
    }


def _contact_links(numbers, known: dict) -> list[dict]:
    """Each number of the conversation with its contact's page, or the form to add it."""
    links = []
    for number in numbers:
        if number in known:
            pk, name = known[number]
            url = reverse("contact_detail", args=[pk])
            links.append({"url": url, "label": name or format_number(number), "known": True})
        else:
            url = reverse("contact_new") + "?" + urlencode({"number": number})
            links.append({"url": url, "label": format_number(number), "known": False})
    return links


def _item(kind: str, obj) -> dict:
    if kind == "note":
        return {"kind": "note", "note": obj}
    message = obj
    outbound = message.outbound
    status = outbound.get_status_display() if outbound else _rc_status_label(message.rc_status)
    return {
        "kind": "message",
        "message": message,
        "outbound": outbound,
        "status": status,
        "badge": badge_class(outbound.status) if outbound else "badge",
        "reason": outbound.error_reason if outbound else "",
        "fix": outbound.error_fix if outbound else "",
        "files": list(message.files.all()),
        "sent_files": list(outbound.attachments.all()) if outbound else [],
    }


def _rc_status_label(status: str) -> str:
    return {
        "Received": "",
        "Queued": "Queued at RingCentral",
        "Sent": "Sent",
        "Delivered": "Delivered",
        "DeliveryFailed": "Not delivered",
        "SendingFailed": "Sending failed",
    }.get(status, status)


@login_required
@never_cache
@require_GET
def inbox_thread(request, pk):
    membership, conversation = _conversation_for_reading(request, pk)
    actions.mark_read(membership, conversation)
    return render(request, "inbox/thread.html", _thread_context(membership, conversation))


@never_cache
@require_GET
def inbox_thread_live(request, pk):
    """`/inbox/<id>/live/?version=…`: the thread again when anything in it changed (and it is
    marked read for this person, who is looking at it)."""
    refused = _live_error(request)
    if refused:
        return refused
    membership, conversation = _conversation_for_acting(request, pk)
    version = _thread_version(conversation)
    if request.GET.get("version") == version:
        return JsonResponse({"changed": False})
    actions.mark_read(membership, conversation)
    context = _thread_context(membership, conversation)
    html = render_to_string("inbox/_thread_live.html", context, request=request)
    return JsonResponse({"changed": True, "version": context["version"], "html": html})


def _back(conversation_id: int, fragment: str = ""):
    return HttpResponseRedirect(reverse("inbox_thread", args=[conversation_id]) + fragment)


@csrf_exempt  # checked by csrf_protect in _reply, after the size check
@login_required
@require_POST
def inbox_reply(request, pk):
    limit = settings.COMPOSE_MAX_REQUEST_BYTES + MAX_REPLY_BYTES_MARGIN
    try:
        size = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        size = 0
    if size > limit:
        membership, conversation = _conversation_for_acting(request, pk)
        too_large = (
            f"The upload is {limits.format_size(size)}; this portal accepts at most "
            f"{limits.format_size(limit)} at once. Photos are reduced to fit RingCentral's limit "
            "automatically, so they need not be large."
        )
        form = {"text": "", "errors": {"attachments": [too_large]}}
        context = _thread_context(membership, conversation, reply_form=form)
        response = render(request, "inbox/thread.html", context, status=413)
        # The unread body would otherwise be parsed as the next request on this connection.
        response["Connection"] = "close"
        return response
    return _reply(request, pk)


@csrf_protect
def _reply(request, pk):
    membership, conversation = _conversation_for_acting(request, pk)
    if not membership.can(Role.SENDER):
        raise PermissionDenied("Replying needs the sender role.")
    data = request.POST
    text = data.get("text", "")
    form_key = parse_form_key(data.get("form_key")) or new_form_key()
    drafts, gone = load_drafts(membership.user, membership.team, form_key, data.getlist("uploads"))
    form = {
        "text": text,
        "errors": {},
        "form_key": form_key,
        "drafts": drafts,
        "send_later": data.get("send_later") == "on",
        "send_at": data.get("send_at", ""),
        "template": data.get("template", ""),
    }
    if "use_template" in data:
        return _reply_with_template(request, membership, conversation, form)
    template = None
    if form["template"].isascii() and form["template"].isdigit():
        template = template_library.visible_to(membership).filter(pk=int(form["template"])).first()
    send_at, zone = None, ""
    if form["send_later"]:
        found = scheduling.zone_for(membership.team, data.get("time_zone"))
        zone = found.key
        try:
            send_at = scheduling.local_moment(data.get("send_at"), found)
        except scheduling.ScheduleInvalid as invalid:
            form["errors"] = {"send_at": [str(invalid)]}
    try:
        if form["errors"]:
            raise ComposeInvalid(form["errors"])
        created = reply.send_reply(
            membership,
            conversation,
            text=text,
            uploads=request.FILES.getlist("attachments"),
            fit_images=True,
            origin=origin_of(request),
            drafts=drafts,
            file_errors=gone,
            template=template,
            send_at=send_at,
            schedule_zone=zone,
        )
    except ComposeInvalid as invalid:
        form["errors"] = invalid.errors
        return render(
            request,
            "inbox/thread.html",
            _thread_context(membership, conversation, reply_form=form),
            status=400,
        )
    if send_at is not None:
        messages.success(
            request,
            f"Reply scheduled for {scheduling.describe(send_at, zone)}. Until then you can change "
            "or cancel it in the outbox's Scheduled folder.",
        )
    else:
        messages.success(
            request,
            "Reply queued. It shows “Sent” once RingCentral accepts it and “Delivered” once the "
            "carrier confirms.",
        )
        quiet = quiet_hours.warning(membership.team, conversation.contact_numbers)
        if quiet:
            messages.warning(request, quiet)
    return _back(
        conversation.pk, f"#message-{created[0].conversation_message.pk}" if created else ""
    )


def _reply_with_template(request, membership, conversation, form):
    """ "Use template" in the reply box: the thread again with the template's text merged with
    the conversation's contact and its files attached."""
    template = template_library.readable(membership, request.POST.get("pick_template", ""))
    picked = pick(membership, template, form["form_key"], conversation.contact_numbers)
    form.update(
        text=picked.text,
        template=str(template.pk),
        drafts=list(form["drafts"]) + picked.drafts,
        picked=picked,
        picked_name=template.name,
    )
    return render(
        request, "inbox/thread.html", _thread_context(membership, conversation, reply_form=form)
    )


@login_required
@require_POST
def inbox_assign(request, pk):
    membership, conversation = _conversation_for_acting(request, pk)
    raw = request.POST.get("assignee", "")
    try:
        assignee = int(raw) if raw else None
    except ValueError:
        assignee = -1
    if assignee is not None and not 0 < assignee < 2**63:
        assignee = -1  # names nobody: refused below as not a member
    try:
        actions.assign(membership, conversation, assignee)
    except ValidationError as invalid:
        messages.error(request, " ".join(invalid.messages))
        return _back(conversation.pk)
    if assignee is None:
        messages.success(request, "Nobody is assigned now.")
    elif assignee == request.user.pk:
        messages.success(request, "Assigned to you.")
    else:
        messages.success(request, "Assigned.")
    return _back(conversation.pk)


@login_required
@require_POST
def inbox_close(request, pk):
    membership, conversation = _conversation_for_acting(request, pk)
    actions.close(membership, conversation)
    messages.success(request, "Closed. A new message from the contact opens it again.")
    return _back(conversation.pk)


@login_required
@require_POST
def inbox_reopen(request, pk):
    membership, conversation = _conversation_for_acting(request, pk)
    actions.reopen(membership, conversation)
    messages.success(request, "Open again.")
    return _back(conversation.pk)


@login_required
@require_POST
def inbox_unread(request, pk):
    membership, conversation = _conversation_for_acting(request, pk)
    actions.mark_unread(membership, conversation)
    messages.info(request, "Marked unread for you.")
    return HttpResponseRedirect(reverse("inbox"))


@login_required
@require_POST
def inbox_note(request, pk):
    membership, conversation = _conversation_for_acting(request, pk)
    try:
        note = actions.add_note(membership, conversation, request.POST.get("text", ""))
    except ValidationError as invalid:
        messages.error(request, " ".join(invalid.messages))
        return _back(conversation.pk, "#note")
    return _back(conversation.pk, f"#note-{note.pk}")


@login_required
@require_POST
def inbox_note_delete(request, pk, note_id):
    membership, conversation = _conversation_for_acting(request, pk)
    note = get_object_or_404(ConversationNote, conversation=conversation, pk=note_id)
    actions.delete_note(membership, note)
    messages.success(request, "Note deleted.")
    return _back(conversation.pk)


# --- Files received ------------------------------------------------------------------------------


def _file_for(request, key) -> InboxFile:
    membership = get_team_for_user(request)
    file = (
        InboxFile.objects.filter(
            key=key, state=FileState.STORED, message__conversation__team=membership.team
        )
        .select_related("message")
        .first()
    )
    if file is None:
        raise Http404
    return file


@login_required
@require_GET
def inbox_file(request, key):
    file = _file_for(request, key)
    return serve_stored(file.file.name, file.content_type, file.original_name)


@login_required
@require_GET
def inbox_file_thumbnail(request, key):
    file = _file_for(request, key)
    if not file.thumbnail:
        raise Http404
    return serve_stored(file.thumbnail.name, "image/jpeg", f"{file.original_name}.jpg", inline=True)


# --- Settings and notices ------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def inbox_settings(request):
    membership = get_team_for_user(request)
    if request.method == "POST":
        choice = request.POST.get("inbox_emails", "")
        if choice not in InboxEmails.values:
            messages.error(request, "Choose one of the options.")
            return render(
                request,
                "inbox/settings.html",
                {"membership": membership, "choices": InboxEmails.choices},
                status=400,
            )
        Membership.objects.filter(pk=membership.pk).update(inbox_emails=choice)
        messages.success(request, "Saved.")
        return HttpResponseRedirect(reverse("inbox_settings"))
    return render(
        request, "inbox/settings.html", {"membership": membership, "choices": InboxEmails.choices}
    )


@login_required
@require_http_methods(["GET", "POST"])
def inbox_notifications(request):
    membership = get_team_for_user(request)
    notices = listing.unread_notifications(membership)
    if request.method == "POST":
        notices.update(read_at=timezone.now())
        messages.success(request, "All notifications marked read.")
        return HttpResponseRedirect(reverse("inbox_notifications"))
    return render(
        request,
        "inbox/notifications.html",
        {"notices": list(notices[:100]), "team": membership.team},
    )
