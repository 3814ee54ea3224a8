"""The history console's view of the outbox (messaging/admin.py explains the console)."""

from __future__ import annotations

import csv
from collections import Counter

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Prefetch, Q
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.urls import path
from django.utils import timezone
from django.utils.text import Truncator

from messaging.core.admin import ActionsOnlyAdminMixin, ReadOnlyInline
from messaging.core.phones import format_number
from messaging.links.admin import ConnectionListFilter
from messaging.models import (
    Attachment,
    MessageEvent,
    MessageStatus,
    OutboundMessage,
    Recipient,
    SendAttempt,
    SenderNumber,
)
from messaging.outbox import states
from messaging.outbox.folders import FOLDERS, folder_q, get_folder, search_q

# --- Messages -----------------------------------------------------------------------------------


class FolderFilter(admin.SimpleListFilter):
    """The outbox folders, as defined in messaging/outbox/folders.py (the team outbox's rows)."""

    title = "folder"
    parameter_name = "folder"

    def lookups(self, request, model_admin):
        return [(f.key, f.label) for f in FOLDERS]

    def queryset(self, request, queryset):
        folder = get_folder(self.value())
        return queryset.filter(folder_q(folder)) if folder else queryset


class FromNumberFilter(admin.SimpleListFilter):
    """The number a message was sent from, each number once (the same number may belong to
    several links)."""

    title = "sender number"
    parameter_name = "from"

    def lookups(self, request, model_admin):
        numbers = SenderNumber.objects.order_by("phone_number").values_list(
            "phone_number", flat=True
        )
        return [(number, format_number(number)) for number in numbers.distinct()]

    def queryset(self, request, queryset):
        return queryset.filter(from_number=self.value()) if self.value() else queryset


class HasErrorFilter(admin.SimpleListFilter):
    """Messages that carry an error (code or reason), whatever their status now."""

    title = "has error"
    parameter_name = "has_error"
    _error = ~Q(error_code="") | ~Q(error_reason="")

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(self._error)
        if self.value() == "no":
            return queryset.exclude(self._error)
        return queryset


class RecipientInline(ReadOnlyInline, admin.TabularInline):
    model = Recipient
    fields = ("phone_number", "status", "error_code", "error_reason", "error_fix", "updated_at")
    readonly_fields = fields


class AttachmentInline(ReadOnlyInline, admin.TabularInline):
    model = Attachment
    fields = ("position", "original_name", "content_type", "size", "sha256")
    readonly_fields = fields


class SendAttemptInline(ReadOnlyInline, admin.TabularInline):
    model = SendAttempt
    fields = (
        "number",
        "started_at",
        "finished_at",
        "http_status",
        "rc_error_code",
        "outcome",
        "rate_limit",
        "detail",
    )
    readonly_fields = fields


class MessageEventInline(ReadOnlyInline, admin.TabularInline):
    model = MessageEvent
    fields = ("at", "kind", "text", "recipient")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("recipient")


class _Echo:
    """csv.writer writes into this and gets the line back, so rows can be streamed."""

    def write(self, value):
        return value


# Spreadsheets run a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    """Free text made safe for spreadsheets (a leading quote stops formula evaluation)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _when(value) -> str:
    return timezone.localtime(value).isoformat() if value else ""


CSV_HEADER = [
    "id",
    "created_at",
    "team",
    "written_by",
    "from",
    "to",
    "status",
    "sent_at",
    "final_at",
    "ringcentral_id",
    "attempts",
    "error_code",
    "error_reason",
    "attachments",
    "text",
]


def csv_rows(queryset):
    """The CSV lines (header first) for `queryset`, fetched in chunks so memory stays flat.

    Phone numbers are written as stored: E.164 (a "+" and digits) is data a spreadsheet shows,
    not a formula it runs. Everything people typed goes through `_cell`.
    """
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    rows = (
        queryset.select_related("team", "created_by")
        .prefetch_related(None)
        .prefetch_related(
            Prefetch("recipients", queryset=Recipient.objects.only("message_id", "phone_number"))
        )
        .annotate(attachment_count=Count("attachments"))
        .order_by("-created_at", "-pk")
    )
    for m in rows.iterator(chunk_size=1000):
        yield writer.writerow(
            [
                m.pk,
                _when(m.created_at),
                _cell(m.team.name),
                _cell(m.created_by.email if m.created_by else ""),
                m.from_number,
                " ".join(r.phone_number for r in m.recipients.all()),
                m.status,
                _when(m.sent_at),
                _when(m.final_at),
                m.rc_message_id or "",
                m.attempts,
                _cell(m.error_code),
                _cell(m.error_reason),
                m.attachment_count,
                _cell(m.text),
            ]
        )


def csv_response(queryset, name: str = "messages") -> StreamingHttpResponse:
    response = StreamingHttpResponse(csv_rows(queryset), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response


def _refusals(counter: Counter) -> str:
    return ", ".join(f"{n} {label.lower()}" for label, n in counter.most_common())


@admin.register(OutboundMessage)
class OutboundMessageAdmin(ActionsOnlyAdminMixin, admin.ModelAdmin):
    """Every message of every team. Read-only, for the history is evidence; status changes only
    through the actions, which call the state machine."""

    date_hierarchy = "created_at"
    # Columns that fit a 1280 px screen; the link and RingCentral's id are on each message's
    # page (and the id is searchable).
    list_display = (
        "id",
        "created_at",
        "team",
        "from_number",
        "recipient_numbers",
        "status",
        "error_summary",
        "written_by",
    )
    list_display_links = ("id", "created_at")
    list_filter = (
        "status",
        FolderFilter,
        "team",
        ("connection", ConnectionListFilter),
        HasErrorFilter,
        FromNumberFilter,
    )
    list_select_related = ("team", "created_by")
    # The search box looks at these; get_search_results normalises phone numbers first.
    search_fields = ("recipients__phone_number", "text", "rc_message_id")
    search_help_text = (
        "A recipient number (any part, with or without +, spaces or dashes), words from the "
        "text, or a RingCentral message id."
    )
    # Both would count the whole (possibly huge) history on every page view.
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 100
    actions = ("requeue_failed", "cancel_queued", "export_selected_csv")
    inlines = (RecipientInline, AttachmentInline, SendAttemptInline, MessageEventInline)
    readonly_fields = ("written_by",)
    fieldsets = (
        (None, {"fields": ("team", "status", "created_at", "written_by", "text", "is_group")}),
        (
            "RingCentral",
            {
                "fields": (
                    "connection",
                    "sender_number",
                    "from_number",
                    "rc_message_id",
                    "rc_conversation_id",
                )
            },
        ),
        (
            "Sending",
            {
                "fields": (
                    "attempts",
                    "next_attempt_at",
                    "sending_since",
                    "sent_at",
                    "next_check_at",
                    "checks",
                    "last_checked_at",
                    "final_at",
                    "updated_at",
                )
            },
        ),
        ("Error", {"fields": ("error_code", "error_reason", "error_fix")}),
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .prefetch_related(
                Prefetch(
                    "recipients",
                    queryset=Recipient.objects.only("id", "message_id", "phone_number"),
                )
            )
        )

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        q = search_q(search_term)
        if q is None:
            return queryset, False
        term = search_term.strip()
        q |= Q(rc_message_id=term) | Q(rc_conversation_id=term)
        return queryset.filter(q), False

    @admin.display(description="To")
    def recipient_numbers(self, obj):
        return ", ".join(r.phone_number for r in obj.recipients.all())

    @admin.display(description="Error")
    def error_summary(self, obj):
        if not (obj.error_code or obj.error_reason):
            return "—"
        reason = Truncator(obj.error_reason).chars(60)
        return f"{obj.error_code}: {reason}" if obj.error_code else reason

    @admin.display(description="Written by", ordering="created_by__email")
    def written_by(self, obj):
        return obj.created_by.email if obj.created_by else "—"

    def _apply(self, request, queryset, transition, *, verb, allowed_label):
        """Run an outbox transition on each selected message and report the outcome."""
        moved, refused = 0, Counter()
        for message in queryset.select_related(None).prefetch_related(None).order_by():
            if transition(message):
                moved += 1
            else:
                # Re-read: the status may have changed between the list and the transition.
                refused[MessageStatus(states.current_status(message.pk)).label] += 1
        if moved:
            self.message_user(request, f"{moved} message(s) {verb}.", messages.SUCCESS)
        if refused:
            self.message_user(
                request,
                f"{sum(refused.values())} message(s) not {verb}: only {allowed_label} messages "
                f"can be, and these were {_refusals(refused)}.",
                messages.WARNING,
            )
        if not moved and not refused:
            self.message_user(request, "No messages selected.", messages.INFO)

    @admin.action(description="Retry selected failed messages", permissions=["change"])
    def requeue_failed(self, request, queryset):
        self._apply(
            request,
            queryset,
            states.requeue,
            verb="queued again",
            allowed_label="failed",
        )

    @admin.action(description="Cancel selected queued messages", permissions=["change"])
    def cancel_queued(self, request, queryset):
        self._apply(
            request,
            queryset,
            states.cancel,
            verb="canceled",
            allowed_label="queued or waiting-to-retry",
        )

    @admin.action(description="Export selected messages to CSV", permissions=["view"])
    def export_selected_csv(self, request, queryset):
        return csv_response(queryset.order_by())

    def get_urls(self):
        return [
            path(
                "export.csv",
                self.admin_site.admin_view(self.export_view),
                name="messaging_outboundmessage_export",
            ),
            *super().get_urls(),
        ]

    def export_view(self, request):
        """The changelist as CSV: the same filters, search and date drill-down, every page."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except admin.options.IncorrectLookupParameters:
            return HttpResponseBadRequest("These filters are not valid; go back and pick again.")
        return csv_response(changelist.queryset)
