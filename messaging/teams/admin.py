"""The history console's view of teams, memberships and invitations."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count
from django.utils import timezone

from messaging.core.admin import ActionsOnlyAdminMixin, email_of
from messaging.models import Invitation, Membership, Team
from messaging.teams import invitations


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
    rules of messaging/teams/actions.py; prefer the team page for everyday changes."""

    list_display = ("member", "team", "role", "joined_at", "last_selected_at")
    list_filter = ("role",)
    list_select_related = ("user", "team")
    search_fields = ("user__email", "team__name", "team__slug")
    raw_id_fields = ("user", "team")
    readonly_fields = ("joined_at", "last_selected_at")

    @admin.display(description="Member", ordering="user__email")
    def member(self, obj):
        return email_of(obj.user)


@admin.register(Invitation)
class InvitationAdmin(ActionsOnlyAdminMixin, admin.ModelAdmin):
    """Invitations are created and emailed from the team page (they carry a signed link);
    the console lists them and can withdraw pending ones."""

    list_display = ("email", "team", "role", "inviter", "created_at", "expires_at", "state")
    list_filter = ("role",)
    list_select_related = ("team", "invited_by")
    search_fields = ("email", "team__name")
    actions = ("revoke_pending",)

    @admin.display(description="Invited by", ordering="invited_by__email")
    def inviter(self, obj):
        return email_of(obj.invited_by)

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
