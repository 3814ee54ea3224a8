"""The team outbox: the list, a message's page, its actions, live statuses.

Every member of a team (any role) reads all of the team's messages; acting on one (cancel, retry)
needs the sender role. Messages are always looked up inside the requesting user's team, so
another team's message is a 404 (messaging/teams/permissions.py decides). Status changes go
through messaging/outbox/states.py only.

The list pages with a keyset cursor on (created_at, id), newest first (messaging/outbox/paging.py):
a page costs the same whether it is the first or the thousandth, and no page counts the whole
table. The number of queries per page is fixed (select_related for the author, one prefetch for
the recipients).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Exists, F, OuterRef, Prefetch, Subquery
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.http import urlencode
from django.utils.text import Truncator
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from messaging.core.phones import format_number, format_numbers_in
from messaging.models import (
    CLAIMABLE_STATUSES,
    Attachment,
    MessageEvent,
    MessageStatus,
    OutboundMessage,
    Recipient,
    Role,
    SendAttempt,
)
from messaging.outbox import scheduling, states
from messaging.outbox.folders import (
    ALL,
    DEFAULT_FIX,
    FOLDERS,
    MAX_SEARCH_LENGTH,
    MEANING,
    ON_THE_WAY_STATUSES,
    STALLED_FIX,
    UNUSABLE_CONNECTION_STATUSES,
    badge_class,
    count_label,
    folder_counts,
    folder_q,
    get_folder,
    is_final,
    search_q,
    stalled_connection_ids,
)
from messaging.outbox.paging import (
    MAX_ID,
    PAGE_SIZE,
    BadCursor,
    encode_cursor,
    keyset_page,
    newer_than,
)
from messaging.ringcentral import limits
from messaging.teams import actions
from messaging.teams.permissions import get_rw_team_for_user, get_team_for_user

# The live status endpoint answers for at most this many messages per request.
MAX_STATUS_IDS = 100

# --- Helpers ------------------------------------------------------------------------------------


def _recipient_numbers(message) -> dict:
    """A row's recipients as people read them: plain text for the live announcements, and HTML
    with each number unbreakable and the list free to wrap between them (built here rather than
    in a template loop, which costs this page more than the rest of a row)."""
    numbers = [format_number(r.phone_number) for r in message.recipients.all()]
    return {
        "numbers": ", ".join(numbers),
        "numbers_html": format_html_join(
            ", ", '<span class="outbox-number">{}</span>', ((n,) for n in numbers)
        ),
    }


def _url_or_none(name: str, *args) -> str | None:
    # Pages owned by other parts of the app (compose) may not be installed in every deployment.
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def _status_payload(message_id: int, status: str) -> dict:
    return {
        "id": message_id,
        "status": status,
        "label": MessageStatus(status).label,
        "badge": badge_class(status),
        "final": is_final(status),
    }


def _list_queryset(team):
    return (
        team.messages.select_related("created_by")
        .prefetch_related(
            Prefetch(
                "recipients",
                queryset=Recipient.objects.only("id", "message_id", "phone_number", "status"),
            )
        )
        .annotate(has_attachments=Exists(Attachment.objects.filter(message=OuterRef("pk"))))
    )


# --- The list -----------------------------------------------------------------------------------


@dataclass
class Listing:
    """What a list page shows: a folder (None: all), a search term, and the rows they select."""

    folder_key: str
    folder: object
    term: str
    stalled_ids: list[int]
    queryset: object


def _listing(request, team) -> Listing:
    folder_key = request.GET.get("folder") or ALL
    folder = get_folder(folder_key)
    if folder is None:
        folder_key = ALL
    term = (request.GET.get("q") or "").strip()[:MAX_SEARCH_LENGTH]
    stalled_ids = stalled_connection_ids(team.pk)
    queryset = _list_queryset(team)
    if folder is not None:
        queryset = queryset.filter(folder_q(folder, stalled_ids))
    search = search_q(term)
    if search is not None:
        queryset = queryset.filter(search)
    return Listing(folder_key, folder, term, stalled_ids, queryset)


def _rows(messages, stalled_ids) -> list[dict]:
    # Everything a row shows is worked out here, once: the template engine is the slowest part
    # of this page, and plain values are what it renders fastest.
    stalled = set(stalled_ids)
    return [
        {
            "message": m,
            "url": reverse("message_detail", args=[m.pk]),
            "preview": Truncator(m.text).chars(80),
            **_recipient_numbers(m),
            "author": m.created_by.email if m.created_by else "",
            "label": m.get_status_display(),
            "badge": badge_class(m.status),
            "final": "true" if m.is_final else "false",
            "stalled": m.connection_id in stalled and m.status in ON_THE_WAY_STATUSES,
            "created": timezone.localtime(m.created_at),
            "scheduled": scheduling.describe(m.scheduled_for, m.scheduled_zone)
            if m.status in states.WAITING_FOR_TIME
            else "",
        }
        for m in messages
    ]


def _counts(team, listing: Listing) -> dict[str, int]:
    """Folder counts of the messages the search shows (all of them without a search)."""
    messages = team.messages.all()
    search = search_q(listing.term)
    if search is not None:
        messages = messages.filter(search)
    return folder_counts(messages, listing.stalled_ids)


@login_required
@require_GET
def outbox_list(request):
    """`/messages/?folder=<key>&q=<search>&after=<cursor>|before=<cursor>`."""
    membership = get_team_for_user(request)
    team = membership.team
    listing = _listing(request, team)
    folder_key, folder, term = listing.folder_key, listing.folder, listing.term

    status_code = 200
    try:
        page = keyset_page(
            listing.queryset, after=request.GET.get("after"), before=request.GET.get("before")
        )
    except BadCursor:
        messages.error(request, "That page link is not valid any more; here are the newest.")
        page = keyset_page(listing.queryset)
        status_code = 400

    rows = _rows(page.rows, listing.stalled_ids)
    counts = _counts(team, listing)
    base = {"folder": folder_key} if folder_key != ALL else {}
    if term:
        base["q"] = term

    def link(**extra):
        return "?" + urlencode({**base, **extra}) if (base or extra) else "?"

    newest_page = not page.newer and not request.GET.get("after")
    context = {
        "membership": membership,
        "team": team,
        "rows": rows,
        "folder_key": folder_key,
        "folder": folder,
        "folders": [
            {
                "key": f.key,
                "label": f.label,
                "count": counts[f.key],
                "count_label": count_label(counts[f.key]),
                "url": "?" + urlencode({"folder": f.key, **({"q": term} if term else {})}),
            }
            for f in FOLDERS
        ],
        "all_count": counts[ALL],
        "all_count_label": count_label(counts[ALL]),
        "all_url": "?" + urlencode({"q": term}) if term else "?",
        "term": term,
        "older_url": link(after=page.older) if page.older else None,
        "newer_url": link(before=page.newer) if page.newer else None,
        "newest_url": link() if not newest_page else None,
        "can_send": membership.can(Role.SENDER),
        "compose_url": _url_or_none("compose"),
        # The newest page shows messages as they are written; older pages keep their rows.
        "live_url": reverse("outbox_live") + "?" + urlencode({**base, "newest": "1"})
        if newest_page
        else None,
        "top": encode_cursor(page.rows[0]) if newest_page and page.rows else "",
    }
    return render(request, "messaging/outbox.html", context, status=status_code)


@never_cache
@require_GET
def outbox_live(request):
    """`/messages/live/?ids=1,2,3[&newest=1&folder=…&q=…&top=<cursor>]`: what changed.

    `{"messages": [statuses of ids]}`, and for the newest page (`newest=1`) also `"rows"`:
    `<tr>`s of the messages of the folder and search newer than `top` (all of the first page
    when `top` is empty), newest first, `"top"`: the cursor of the newest, and `"counts"`: the
    folder counts of the search. Only the current team's messages are answered.
    """
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Your session has ended; sign in again."}, status=401)
    membership = get_team_for_user(request)
    team = membership.team
    statuses, problem = _statuses(membership, request.GET.get("ids", ""))
    if problem:
        return JsonResponse({"error": problem}, status=400)
    if request.GET.get("newest") != "1":
        return JsonResponse({"messages": statuses})
    listing = _listing(request, team)
    top = request.GET.get("top") or ""
    try:
        new = newer_than(listing.queryset, top) if top else list(listing.queryset[:PAGE_SIZE])
    except BadCursor:
        return JsonResponse({"error": "top is not a cursor of this list."}, status=400)
    rows = _rows(new, listing.stalled_ids)
    counts = _counts(team, listing)
    return JsonResponse(
        {
            "messages": statuses,
            "rows": render_to_string("messaging/_outbox_rows.html", {"rows": rows}, request)
            if rows
            else "",
            "top": encode_cursor(new[0]) if new else top,
            "added": len(rows),
            "counts": {key: count_label(count) for key, count in counts.items()},
        }
    )


# --- Live statuses ------------------------------------------------------------------------------


@never_cache
@require_GET
def message_statuses(request):
    """`/messages/status/?ids=1,2,3` → {"messages": [{id, status, label, badge, final}], …}.

    Only the current team's messages are answered; other ids are left out without a word, so the
    answer reveals nothing about other teams. At most MAX_STATUS_IDS ids per request.
    """
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Your session has ended; sign in again."}, status=401)
    membership = get_team_for_user(request)
    payload, problem = _statuses(membership, request.GET.get("ids", ""))
    if problem:
        return JsonResponse({"error": problem}, status=400)
    return JsonResponse({"messages": payload, "all_final": all(item["final"] for item in payload)})


def _statuses(membership, ids_param: str) -> tuple[list[dict], str]:
    """The statuses of the team's messages among `ids_param` (ids separated by commas), or a
    problem with the parameter."""
    parts = [p.strip() for p in ids_param.split(",") if p.strip()]
    if len(parts) > MAX_STATUS_IDS:
        return [], f"Ask for at most {MAX_STATUS_IDS} messages at a time."
    try:
        ids = {int(p) for p in parts}
        ids = {i for i in ids if 0 < i <= MAX_ID}
    except ValueError:
        return [], "ids must be message numbers separated by commas."
    found = (
        membership.team.messages.filter(pk__in=ids).order_by().values_list("pk", "status")
        if ids
        else []
    )
    return [_status_payload(pk, status) for pk, status in found], ""


# --- One message --------------------------------------------------------------------------------


def _message_for_reading(request, pk):
    """The message and the user's membership in its team; 404 if they are not a member.

    A message of another of the user's teams (a link from an email) makes that team current,
    so the page, its actions and the navigation all speak of the same team.
    """
    membership = get_team_for_user(request)
    message = membership.team.messages.filter(pk=pk).first()
    if message is None:
        slug = (
            OutboundMessage.objects.filter(pk=pk, team__memberships__user=request.user)
            .values_list("team__slug", flat=True)
            .first()
        )
        if slug is None:
            raise Http404
        membership = get_team_for_user(request, slug)
        actions.switch_team(request, membership)
        request.membership = membership
        messages.info(
            request, f"You are now working in {membership.team}, the team of this message."
        )
        message = membership.team.messages.get(pk=pk)
    return membership, message


def _timeline(message) -> list[dict]:
    """Events and send attempts of `message`, oldest first, as rows for one table."""
    entries = [
        {
            "at": message.created_at,
            "what": "Written by "
            + (message.created_by.email if message.created_by else "a former member"),
            "kind": "created",
        }
    ]
    for attempt in message.send_attempts.all():
        entries.append(
            {
                "at": attempt.started_at,
                "kind": "attempt",
                "what": f"Attempt {attempt.number} to hand it to RingCentral",
                "attempt": attempt,
            }
        )
    for event in message.events.all():
        # Events name their recipient in their own words: numbers are shown as people read them
        # (older events wrote them as stored).
        entries.append({"at": event.at, "kind": event.kind, "what": format_numbers_in(event.text)})
    # Stable: at equal times, the order above (written, attempts, events) stands.
    entries.sort(key=lambda entry: entry["at"])
    return entries


def _progress(message) -> list[dict]:
    """Three steps that keep "accepted by RingCentral" apart from "delivered to the phone"."""
    status = message.status
    accepted = message.sent_at is not None
    if status == MessageStatus.DELIVERED:
        delivery = ("done", "The carrier reported that the phone received it.")
    elif status in (MessageStatus.DELIVERY_FAILED, MessageStatus.SENDING_FAILED):
        delivery = ("failed", "The carrier reported that it could not be delivered.")
    elif status == MessageStatus.NO_RECEIPT:
        delivery = ("unknown", "No delivery report came back.")
    elif not accepted and is_final(status):
        delivery = ("skipped", "Not sent, so not delivered.")
    else:
        delivery = ("waiting", "Waiting for the carrier's delivery report.")
    if accepted:
        acceptance = ("done", "RingCentral took the message and gave it an id.")
    elif status == MessageStatus.CANCELED:
        acceptance = ("skipped", "Canceled before it was sent.")
    elif status == MessageStatus.FAILED:
        acceptance = ("failed", "RingCentral refused the message.")
    else:
        acceptance = ("waiting", "Not handed to RingCentral yet.")
    return [
        {"label": "Written", "state": "done", "at": message.created_at, "note": ""},
        {
            "label": "Accepted by RingCentral",
            "state": acceptance[0],
            "at": message.sent_at,
            "note": acceptance[1],
        },
        {
            "label": "Delivered to the phone",
            "state": delivery[0],
            "at": message.final_at if delivery[0] in ("done", "failed") else None,
            "note": delivery[1],
        },
    ]


@login_required
@require_GET
def message_detail(request, pk):
    membership, message = _message_for_reading(request, pk)
    context = _detail_context(membership, message.pk)
    return render(request, "messaging/message_detail.html", context)


@never_cache
@require_GET
def message_live(request, pk):
    """`/messages/<id>/live/?version=…`: the changing part of a message's page, for its script.

    `{"changed": false}` while the page shows the message as it is; otherwise the part of the
    page that follows the message (status, actions, explanation, progress, recipients,
    timeline) rendered anew, with its version. Only the current team's messages are answered.
    """
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Your session has ended; sign in again."}, status=401)
    membership = get_team_for_user(request)
    version = _version(membership.team.messages.filter(pk=pk))
    if version is None:
        raise Http404
    if request.GET.get("version") == version:
        return JsonResponse({"changed": False})
    context = _detail_context(membership, pk)
    message = context["message"]
    return JsonResponse(
        {
            "changed": True,
            "version": context["version"],
            "final": message.is_final,
            "label": message.get_status_display(),
            "html": render_to_string("messaging/_message_live.html", context, request=request),
        }
    )


def _version(messages) -> str | None:
    """What changes whenever anything the message's page shows changes: the message row, its
    latest event, recipient change and attempt. One query; None when there is no message."""

    def newest(model, field):
        rows = model.objects.filter(message=OuterRef("pk")).order_by(F(field).desc(nulls_last=True))
        return Subquery(rows.values(field)[:1])

    latest = {
        "last_event": newest(MessageEvent, "id"),
        "last_recipient": newest(Recipient, "updated_at"),
        "last_attempt": newest(SendAttempt, "finished_at"),
    }
    row = messages.annotate(**latest).values_list("updated_at", "attempts", *latest).first()
    if row is None:
        return None
    return "/".join(str(part.timestamp() if hasattr(part, "timestamp") else part) for part in row)


def _detail_context(membership, pk) -> dict:
    # The version first: a change made while the page is being read then shows as a newer
    # version at the next poll, never as one the page already claims to show.
    version = _version(OutboundMessage.objects.filter(pk=pk))
    message = (
        OutboundMessage.objects.select_related("created_by", "connection", "sender_number")
        .prefetch_related("recipients", "attachments")
        .get(pk=pk)
    )
    stalled = (
        message.connection.status in UNUSABLE_CONNECTION_STATUSES
        and message.status in ON_THE_WAY_STATUSES
    )
    fix = message.error_fix or (STALLED_FIX if stalled else DEFAULT_FIX.get(message.status, ""))
    can_act = membership.can(Role.SENDER)
    compose_url = _url_or_none("compose")
    numbers = [format_number(r.phone_number) for r in message.recipients.all()]
    others = f" and {len(numbers) - 1} more" if len(numbers) > 1 else ""
    return {
        "heading": f"Message to {numbers[0]}{others}" if numbers else "Message",
        "version": version,
        "membership": membership,
        "message": message,
        "badge": badge_class(message.status),
        "meaning": MEANING.get(message.status, ""),
        "reason": message.error_reason,
        "fix": fix,
        "stalled": stalled,
        "progress": _progress(message),
        "recipients": [
            {"recipient": r, "badge": badge_class(r.status)} for r in message.recipients.all()
        ],
        "attachments": list(message.attachments.all()),
        "timeline": _timeline(message),
        "can_act": can_act,
        "can_cancel": can_act and message.status in (*CLAIMABLE_STATUSES, *states.WAITING_FOR_TIME),
        "waiting_for_time": message.status in states.WAITING_FOR_TIME,
        "can_reschedule": can_act and message.status in states.WAITING_FOR_TIME,
        "scheduled_for": scheduling.describe(message.scheduled_for, message.scheduled_zone),
        "released_at": scheduling.describe(message.next_attempt_at, message.scheduled_zone)
        if message.status == MessageStatus.SCHEDULED
        and message.next_attempt_at != message.scheduled_for
        else "",
        "schedule_input": scheduling.input_value(message.scheduled_for, message.scheduled_zone),
        "can_retry": can_act and message.status == MessageStatus.FAILED,
        "again_url": f"{compose_url}?{urlencode({'again': message.pk})}"
        if can_act and compose_url
        else None,
    }


def _message_for_action(request, pk):
    # Reading first: an outsider gets 404 whatever their role elsewhere; then the role (403).
    membership = get_team_for_user(request)
    message = get_object_or_404(membership.team.messages, pk=pk)
    get_rw_team_for_user(request, role=Role.SENDER)
    return message


def _status_now(message) -> MessageStatus:
    # The transition lost the race or was not allowed: say what the message is now.
    return MessageStatus(states.current_status(message.pk))


@login_required
@require_POST
def message_cancel(request, pk):
    """Cancel a message no worker has picked up yet (states.cancel decides, atomically)."""
    message = _message_for_action(request, pk)
    if states.cancel(message):
        messages.success(request, "Canceled. The message was not sent and will not be.")
    else:
        status = _status_now(message)
        if status in (MessageStatus.SENDING, MessageStatus.UNKNOWN):
            text = (
                "Too late to cancel: the message is already being handed to RingCentral, so it "
                "may be on its way. Watch its status here."
            )
        else:
            text = (
                f"This message cannot be canceled: it is {status.label.lower()}. Only messages "
                "still waiting to be sent can be canceled."
            )
        messages.error(request, text)
    return redirect("message_detail", pk=message.pk)


@login_required
@require_POST
def message_retry(request, pk):
    """Send a message RingCentral refused again, with fresh attempts (states.requeue)."""
    message = _message_for_action(request, pk)
    if states.requeue(message):
        messages.success(request, "Queued again. It will be sent in a moment.")
    else:
        label = _status_now(message).label.lower()
        messages.error(
            request,
            f"Only messages RingCentral refused (failed) can be retried; this one is {label}. "
            "To send the same text again, use “Send again”.",
        )
    return redirect("message_detail", pk=message.pk)


@login_required
@require_POST
def message_send_now(request, pk):
    """A scheduled or held message goes to the queue at once (states.send_now)."""
    message = _message_for_action(request, pk)
    if states.send_now(message):
        messages.success(request, "Queued. It will be sent in a moment.")
    else:
        label = _status_now(message).label.lower()
        messages.error(
            request, f"Only scheduled or held messages can be sent now; this one is {label}."
        )
    return redirect("message_detail", pk=message.pk)


@login_required
@require_POST
def message_reschedule(request, pk):
    """A new time, and text, for a message that has not been released (states.reschedule)."""
    message = _message_for_action(request, pk)
    zone = scheduling.zone_for(message.team, request.POST.get("time_zone"))
    try:
        at = scheduling.local_moment(request.POST.get("send_at"), zone)
    except scheduling.ScheduleInvalid as invalid:
        messages.error(request, str(invalid))
        return redirect("message_detail", pk=message.pk)
    text = request.POST.get("text")
    if text is not None:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        problems = [v.message for v in limits.check_text(text)]
        if "\0" in text:
            problems.append("The text contains characters that cannot be sent. Remove them.")
        if problems:
            messages.error(request, " ".join(problems))
            return redirect("message_detail", pk=message.pk)
        if not text.strip() and not message.attachments.exists():
            messages.error(request, "The message needs a text or a file.")
            return redirect("message_detail", pk=message.pk)
    if states.reschedule(message, at=at, zone_name=zone.key, text=text):
        messages.success(request, f"Rescheduled for {scheduling.describe(at, zone.key)}.")
    else:
        label = _status_now(message).label.lower()
        messages.error(
            request, f"Too late to change it: it is {label}. Only scheduled messages can change."
        )
    return redirect("message_detail", pk=message.pk)
