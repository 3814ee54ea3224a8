"""The console's view of the audit log: every team's entries, read-only, never deleted."""

from django.contrib import admin

from messaging.core.admin import ReadOnlyAdminMixin
from messaging.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("at", "team_name", "who", "ip", "action", "target_type", "target_label")
    list_filter = ("action", ("team", admin.RelatedOnlyFieldListFilter))
    search_fields = ("actor_label", "target_label", "api_key_prefix", "team_name")
    date_hierarchy = "at"
    ordering = ("-at", "-pk")
    actions = None

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]
