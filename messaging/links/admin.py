"""The history console's view of RingCentral links and their numbers (messaging/admin.py
explains the console)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.text import Truncator

from messaging.core.admin import ReadOnlyAdminMixin, ReadOnlyInline, email_of
from messaging.models import ConnectionShare, RingCentralConnection, SenderNumber


class ConnectionListFilter(admin.RelatedFieldListFilter):
    """A connection's name includes its team; load them together, not one query per choice."""

    def field_choices(self, field, request, model_admin):
        return [
            (c.pk, str(c))
            for c in RingCentralConnection.objects.select_related("team").order_by(
                "team__name", "extension_name", "pk"
            )
        ]


# Never shown, searched or exported by the admin.
TOKEN_FIELDS = ("access_token_ciphertext", "refresh_token_ciphertext")


class ConnectionShareInline(ReadOnlyInline, admin.TabularInline):
    model = ConnectionShare
    verbose_name = "other team using it"
    verbose_name_plural = "other teams using it"
    fields = ("team", "shared_by_email", "created_at")
    readonly_fields = fields

    @admin.display(description="Brought in by")
    def shared_by_email(self, obj):
        return email_of(obj.shared_by)


class SenderNumberInline(ReadOnlyInline, admin.TabularInline):
    model = SenderNumber
    fields = ("phone_number", "label", "can_sms", "can_mms", "is_toll_free", "active", "synced_at")
    readonly_fields = fields


@admin.register(RingCentralConnection)
class RingCentralConnectionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Health of each link. Linking, refreshing and disconnecting happen in the app, which holds
    the rules (and the tokens); here they are only watched."""

    # Columns that fit a 1280 px screen; the other times are on each link's page.
    list_display = (
        "ringcentral_user",
        "team",
        "linked_by_email",
        "status",
        "shared_with_team",
        "last_error_short",
        "refresh_expires_at",
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
        (
            None,
            {"fields": ("team", "linked_by_email", "shared_with_team", "status", "last_error")},
        ),
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
    inlines = (SenderNumberInline, ConnectionShareInline)

    def get_readonly_fields(self, request, obj=None):
        return [
            "linked_by_email",
            *(f.name for f in self.model._meta.fields if f.name not in TOKEN_FIELDS),
        ]

    @admin.display(description="Linked by", ordering="linked_by__email")
    def linked_by_email(self, obj):
        return email_of(obj.linked_by)

    @admin.display(description="RingCentral user", ordering="extension_name")
    def ringcentral_user(self, obj):
        name = obj.extension_name or f"extension {obj.extension_id}"
        return f"{name} (ext. {obj.extension_number})" if obj.extension_number else name

    def get_queryset(self, request):
        # The ciphertext is not even loaded, so no template or repr can leak it.
        return super().get_queryset(request).defer(*TOKEN_FIELDS)

    @admin.display(description="Last error")
    def last_error_short(self, obj):
        return Truncator(obj.last_error).chars(40) or "—"


@admin.register(SenderNumber)
class SenderNumberAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
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
