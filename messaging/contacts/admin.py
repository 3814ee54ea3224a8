"""The history console's view of contacts and imports, read-only (messaging/admin.py explains
the console): operators look up a number's contact and see how far an import got and why it
stopped (its problem rows are downloaded from the import's page); contacts are changed on the
team's own pages."""

from __future__ import annotations

from django.contrib import admin

from messaging.core.admin import ReadOnlyAdminMixin, ReadOnlyInline
from messaging.models import Contact, ContactNumber, ImportJob


class ContactNumberInline(ReadOnlyInline, admin.TabularInline):
    model = ContactNumber
    fields = ("number", "label")
    readonly_fields = fields


@admin.register(Contact)
class ContactAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "company", "team", "updated_at")
    list_filter = (("team", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("team",)
    search_fields = ("name", "company", "email", "numbers__number")
    ordering = ("team", "name", "id")
    inlines = [ContactNumberInline]
    fields = (
        "team",
        "name",
        "company",
        "email",
        "time_zone",
        "custom_fields",
        "notes",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "file_name",
        "team",
        "status",
        "position",
        "total_rows",
        "created_count",
        "refused_count",
    )
    list_filter = ("status", ("team", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("team",)
    search_fields = ("file_name",)
    ordering = ("-created_at", "-id")
    fields = (
        "team",
        "created_by",
        "file_name",
        "file_kind",
        "encoding",
        "file_size",
        "headers",
        "mapping",
        "status",
        "position",
        "total_rows",
        "created_count",
        "updated_count",
        "merged_count",
        "refused_count",
        "opted_out_count",
        "failure",
        "created_at",
        "started_at",
        "finished_at",
    )
    readonly_fields = fields
