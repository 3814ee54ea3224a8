"""The history console's view of consent: every record with its history, and each team's
sending manners, read-only (a consent change is made on the Consent page, which also writes it
to RingCentral; messaging/admin.py explains the console)."""

from __future__ import annotations

from django.contrib import admin

from messaging.core.admin import ReadOnlyAdminMixin, ReadOnlyInline, email_of
from messaging.core.phones import format_number
from messaging.models import ConsentChange, ConsentRecord, TeamMessagingSettings


class ConsentChangeInline(ReadOnlyInline, admin.TabularInline):
    model = ConsentChange
    fields = ("changed_at", "state", "source", "who", "note")
    readonly_fields = fields
    ordering = ("-changed_at", "-pk")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("changed_by")

    @admin.display(description="by")
    def who(self, obj):
        return email_of(obj.changed_by)


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("contact", "state", "sender", "account_id", "source", "changed_at", "team")
    list_filter = ("state", "source", ("team", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("team",)
    search_fields = ("contact_number", "from_number", "note")
    date_hierarchy = "changed_at"
    ordering = ("-changed_at", "-pk")
    inlines = [ConsentChangeInline]
    fields = (
        "team",
        "contact_number",
        "from_number",
        "account_id",
        "state",
        "source",
        "changed_at",
        "who",
        "note",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("changed_by")

    @admin.display(description="contact", ordering="contact_number")
    def contact(self, obj):
        return format_number(obj.contact_number)

    @admin.display(description="from", ordering="from_number")
    def sender(self, obj):
        return "every number" if obj.from_number == "*" else format_number(obj.from_number)

    @admin.display(description="changed by")
    def who(self, obj):
        return email_of(obj.changed_by)


@admin.register(TeamMessagingSettings)
class TeamMessagingSettingsAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "team",
        "quiet_hours_enabled",
        "quiet_start",
        "quiet_end",
        "time_zone",
        "opt_out_line_enabled",
        "updated_at",
    )
    list_select_related = ("team",)
    fields = (
        "team",
        "quiet_hours_enabled",
        "quiet_start",
        "quiet_end",
        "time_zone",
        "opt_out_line_enabled",
        "opt_out_line",
        "updated_at",
    )
    readonly_fields = fields
