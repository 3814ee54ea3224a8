"""The console's view of outgoing webhooks: endpoints (never their secret) and deliveries with
their attempts, read-only (team admins manage endpoints on their Webhooks page)."""

from django.contrib import admin

from messaging.core.admin import ReadOnlyAdminMixin, ReadOnlyInline
from messaging.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("url", "team", "is_active", "failing_since", "created_at")
    list_filter = ("is_active", ("team", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("team",)
    search_fields = ("url", "description")
    fields = (
        "team",
        "url",
        "description",
        "events",
        "is_active",
        "disabled_reason",
        "failing_since",
        "created_by",
        "created_at",
        "updated_at",
    )


class WebhookAttemptInline(ReadOnlyInline, admin.TabularInline):
    model = WebhookAttempt
    fields = ("at", "succeeded", "response_code", "duration_ms", "error", "next_attempt_at")
    readonly_fields = fields


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("event_id", "event_type", "endpoint", "status", "attempts", "created_at")
    list_filter = ("status", "event_type")
    list_select_related = ("endpoint",)
    search_fields = ("event_id",)
    exclude = ()
    inlines = [WebhookAttemptInline]
