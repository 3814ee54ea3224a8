"""The history console's view of the inbox: conversations and every message in them, received
or sent, read-only (messaging/admin.py explains the console)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from messaging.core.admin import ReadOnlyAdminMixin, ReadOnlyInline, email_of
from messaging.core.phones import format_number
from messaging.models import Conversation, ConversationMessage, InboxFile


class InboxFileInline(ReadOnlyInline, admin.TabularInline):
    model = InboxFile
    fields = ("original_name", "content_type", "size", "state", "tries", "error")
    readonly_fields = fields


@admin.register(ConversationMessage)
class ConversationMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "at",
        "direction",
        "sender",
        "recipients",
        "preview",
        "thread",
        "team",
        "source",
    )
    list_filter = ("direction", "source", ("conversation__team", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("conversation__team",)
    search_fields = ("text", "from_number", "rc_message_id")
    date_hierarchy = "at"
    ordering = ("-at", "-id")
    inlines = [InboxFileInline]
    fields = (
        "conversation",
        "direction",
        "source",
        "from_number",
        "to_numbers",
        "text",
        "rc_message_id",
        "rc_status",
        "rc_error_code",
        "outbound",
        "at",
        "created_at",
    )
    readonly_fields = fields

    @admin.display(description="from")
    def sender(self, obj):
        return format_number(obj.from_number)

    @admin.display(description="to")
    def recipients(self, obj):
        return ", ".join(format_number(n) for n in obj.to_numbers or [])

    @admin.display(description="text")
    def preview(self, obj):
        return Truncator(obj.text).chars(60)

    @admin.display(description="conversation")
    def thread(self, obj):
        url = reverse("admin:messaging_conversation_change", args=[obj.conversation_id])
        return format_html('<a href="{}">{}</a>', url, obj.conversation_id)

    @admin.display(description="team", ordering="conversation__team__name")
    def team(self, obj):
        return obj.conversation.team.name


class ConversationMessageInline(ReadOnlyInline, admin.TabularInline):
    model = ConversationMessage
    fields = ("at", "direction", "from_number", "text", "rc_status")
    readonly_fields = fields
    ordering = ("-at",)
    show_change_link = True


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "contact",
        "number",
        "team",
        "state",
        "assigned",
        "inbound_count",
        "last_message_at",
    )
    list_filter = ("state", ("team", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("team", "assignee")
    search_fields = ("contact_key", "team_number", "last_preview")
    ordering = ("-last_message_at", "-id")
    fields = (
        "team",
        "team_number",
        "contact_key",
        "is_group",
        "state",
        "assignee",
        "inbound_count",
        "last_message_at",
        "last_preview",
        "rc_conversation_id",
        "created_at",
    )
    readonly_fields = fields

    @admin.display(description="contact")
    def contact(self, obj):
        return ", ".join(format_number(n) for n in obj.contact_numbers)

    @admin.display(description="our number")
    def number(self, obj):
        return format_number(obj.team_number)

    @admin.display(description="assignee")
    def assigned(self, obj):
        return email_of(obj.assignee) if obj.assignee_id else "—"
