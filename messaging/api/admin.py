"""The console's view of team API keys: who made each, its role, when it was last used and
revoked. Read-only; the key's digest is never shown (team admins revoke keys on their page)."""

from django.contrib import admin

from messaging.core.admin import ReadOnlyAdminMixin
from messaging.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "prefix", "team", "role", "created_by", "last_used_at", "revoked_at")
    list_filter = ("role", ("team", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("team", "created_by")
    search_fields = ("name", "prefix", "created_by__email")
    fields = (
        "name",
        "prefix",
        "team",
        "role",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    )
    readonly_fields = fields
    ordering = ("-created_at", "-pk")
    actions = None
