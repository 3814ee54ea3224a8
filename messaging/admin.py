"""The history console for operators.

The admin reads everything and changes little: a message's status moves only through
messaging/outbox.py (the actions below call it and say how many messages moved and why the rest
did not), messages are never added here (the compose page and `send_message` are the only ways
in), and RingCentral tokens never appear on any page, not even encrypted.

Changelists run a fixed number of queries whatever the page holds: related rows come from
`list_select_related` or one prefetch, and relation filters load their choices in one query.
"""

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

from . import invitations, outbox
from .folders import FOLDERS, folder_q, get_folder, search_q
from .models import (
    Attachment,
    Invitation,
    Membership,
    MessageEvent,
    MessageStatus,
    OutboundMessage,
    Recipient,
    RingCentralConnection,
    SendAttempt,
    SenderNumber,
    Team,
)

admin.site.site_header = "mmsportal history console"
admin.site.site_title = "mmsportal console"
admin.site.index_title = "Teams, RingCentral links and every message sent"


# --- Shared pieces ------------------------------------------------------------------------------


class ReadOnlyInline:
    """An inline that shows rows and offers no way to add, change or delete them."""

    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ConnectionListFilter(admin.RelatedFieldListFilter):
    """A connection's name includes its team; load them together, not one query per choice."""

    def field_choices(self, field, request, model_admin):
        return [
            (c.pk, str(c))
            for c in RingCentralConnection.objects.select_related("team").order_by(
                "team__name", "extension_name", "pk"
            )
        ]


# --- Messages -----------------------------------------------------------------------------------


class FolderFilter(admin.SimpleListFilter):
    """The outbox folders, as defined in messaging/folders.py (same rows as the team outbox)."""

    title = "folder"
    parameter_name = "folder"

    def lookups(self, request, model_admin):
        return [(f.key, f.label) for f in FOLDERS]

    def queryset(self, request, queryset):
        folder = get_folder(self.value())
        return queryset.filter(folder_q(folder)) if folder else queryset


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
class OutboundMessageAdmin(admin.ModelAdmin):
    """Every message of every team. Read-only; status changes only through the actions."""

    date_hierarchy = "created_at"
    list_display = (
        "id",
        "created_at",
        "team",
        "from_number",
        "recipient_numbers",
        "status",
        "error_summary",
        "written_by",
        "connection",
        "rc_message_id",
    )
    list_display_links = ("id", "created_at")
    list_filter = (
        "status",
        FolderFilter,
        "team",
        ("connection", ConnectionListFilter),
        HasErrorFilter,
        "sender_number",
    )
    list_select_related = ("team", "created_by", "connection__team")
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
    fieldsets = (
        (None, {"fields": ("team", "status", "created_at", "created_by", "text", "is_group")}),
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

    def get_readonly_fields(self, request, obj=None):
        # Everything: the history is evidence, and status belongs to the state machine.
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Actions need the change permission on the list; a single message opens read-only.
        return obj is None and super().has_change_permission(request)

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
                status = OutboundMessage.objects.values_list("status", flat=True).get(pk=message.pk)
                refused[MessageStatus(status).label] += 1
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
            outbox.requeue,
            verb="queued again",
            allowed_label="failed",
        )

    @admin.action(description="Cancel selected queued messages", permissions=["change"])
    def cancel_queued(self, request, queryset):
        self._apply(
            request,
            queryset,
            outbox.cancel,
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


# --- RingCentral --------------------------------------------------------------------------------

# Never shown, searched or exported by the admin.
TOKEN_FIELDS = ("access_token_ciphertext", "refresh_token_ciphertext")


class SenderNumberInline(ReadOnlyInline, admin.TabularInline):
    model = SenderNumber
    fields = ("phone_number", "label", "can_sms", "can_mms", "is_toll_free", "active", "synced_at")
    readonly_fields = fields


@admin.register(RingCentralConnection)
class RingCentralConnectionAdmin(admin.ModelAdmin):
    """Health of each link. Linking, refreshing and disconnecting happen in the app, which holds
    the rules (and the tokens); here they are only watched."""

    list_display = (
        "__str__",
        "team",
        "status",
        "shared_with_team",
        "last_error_short",
        "access_expires_at",
        "refresh_expires_at",
        "last_refreshed_at",
        "numbers_synced_at",
    )
    list_filter = ("status", "shared_with_team", "team")
    list_select_related = ("team", "linked_by")
    search_fields = (
        "extension_name",
        "extension_number",
        "company_name",
        "account_id",
        "team__name",
    )
    exclude = TOKEN_FIELDS
    fieldsets = (
        (None, {"fields": ("team", "linked_by", "shared_with_team", "status", "last_error")}),
        (
            "RingCentral user",
            {
                "fields": (
                    "account_id",
                    "extension_id",
                    "extension_name",
                    "extension_number",
                    "company_name",
                    "scopes",
                )
            },
        ),
        (
            "Times",
            {
                "fields": (
                    "access_expires_at",
                    "refresh_expires_at",
                    "last_refreshed_at",
                    "numbers_synced_at",
                    "created_at",
                    "updated_at",
                    "disconnected_at",
                )
            },
        ),
    )
    inlines = (SenderNumberInline,)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name not in TOKEN_FIELDS]

    def get_queryset(self, request):
        # The ciphertext is not even loaded, so no template or repr can leak it.
        return super().get_queryset(request).defer(*TOKEN_FIELDS)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Last error")
    def last_error_short(self, obj):
        return Truncator(obj.last_error).chars(80) or "—"


@admin.register(SenderNumber)
class SenderNumberAdmin(admin.ModelAdmin):
    """Numbers as last synced from RingCentral (a sync overwrites them, so no editing here)."""

    list_display = (
        "phone_number",
        "label",
        "connection",
        "can_sms",
        "can_mms",
        "is_toll_free",
        "active",
        "synced_at",
    )
    list_filter = ("active", "can_mms", "is_toll_free", ("connection", ConnectionListFilter))
    list_select_related = ("connection__team",)
    search_fields = ("phone_number", "label", "rc_id")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("connection__team")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Teams --------------------------------------------------------------------------------------


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "joined_at", "last_selected_at")
    readonly_fields = ("joined_at", "last_selected_at")
    raw_id_fields = ("user",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "is_personal", "member_count", "created_at")
    list_filter = ("is_personal",)
    search_fields = ("name", "slug", "memberships__user__email")
    readonly_fields = ("created_at",)
    inlines = (MembershipInline,)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(description="Members", ordering="member_count")
    def member_count(self, obj):
        return obj.member_count


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Role changes here are checked by the database (one owner per team) but not by the team
    rules of messaging/teams.py; prefer the team page for everyday changes."""

    list_display = ("user", "team", "role", "joined_at", "last_selected_at")
    list_filter = ("role",)
    list_select_related = ("user", "team")
    search_fields = ("user__email", "team__name", "team__slug")
    raw_id_fields = ("user", "team")
    readonly_fields = ("joined_at", "last_selected_at")


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Invitations are created and emailed from the team page (they carry a signed link);
    the console lists them and can withdraw pending ones."""

    list_display = ("email", "team", "role", "invited_by", "created_at", "expires_at", "state")
    list_filter = ("role",)
    list_select_related = ("team", "invited_by")
    search_fields = ("email", "team__name")
    actions = ("revoke_pending",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request)

    @admin.display(description="State")
    def state(self, obj):
        if obj.accepted_at:
            return "Accepted"
        if obj.revoked_at:
            return "Revoked"
        if obj.expires_at <= timezone.now():
            return "Expired"
        return "Pending"

    @admin.action(description="Revoke selected pending invitations", permissions=["change"])
    def revoke_pending(self, request, queryset):
        revoked = sum(invitations.revoke(invitation) for invitation in queryset)
        skipped = queryset.count() - revoked
        self.message_user(request, f"{revoked} invitation(s) revoked.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"{skipped} not revoked: they had already been accepted or revoked.",
                messages.WARNING,
            )
