"""The console's view of campaigns: each team's campaigns with their state and why one
stopped, and every recipient's result. Read-only: campaigns are run from their pages."""

from django.contrib import admin

from messaging.core.admin import ReadOnlyAdminMixin, ReadOnlyInline
from messaging.models import Campaign, CampaignRecipient


class RecipientInline(ReadOnlyInline, admin.TabularInline):
    model = CampaignRecipient
    fields = ("position", "phone_number", "name", "state", "skip_reason", "message", "batch_id")
    readonly_fields = fields
    ordering = ("position",)
    # A campaign may hold 100,000 recipients: the console shows the first 200, the campaign's
    # page and its CSV report all of them.
    shown = 200

    def get_queryset(self, request):
        return super().get_queryset(request).filter(position__lt=self.shown)


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "team", "status", "uses_high_volume", "created_by", "created_at")
    list_filter = ("status", "uses_high_volume", ("team", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("team", "created_by")
    search_fields = ("name", "text")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-pk")
    inlines = [RecipientInline]
    actions = None

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]
