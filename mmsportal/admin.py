"""The admin site: the operators' history console, for staff who use two-factor authentication.

Admin login goes through the normal account login (so allauth's rate limits and MFA step apply);
a staff member without an authenticator is sent to set one up instead of being let in.
"""

from allauth.account.decorators import secure_admin_login
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import admin, messages
from django.shortcuts import redirect


def has_mfa(user) -> bool:
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


class PortalAdminSite(admin.AdminSite):
    site_header = "mmsportal history console"
    # The list of models lives on the index page; on every list it would take a third of a
    # laptop's screen from the columns.
    enable_nav_sidebar = False
    site_title = "mmsportal console"
    index_title = "Teams, RingCentral links and every message sent"

    def has_permission(self, request):
        if not super().has_permission(request):
            return False
        return not settings.ADMIN_REQUIRE_MFA or has_mfa(request.user)

    def login(self, request, extra_context=None):
        user = request.user
        if user.is_authenticated and user.is_active and user.is_staff and not has_mfa(user):
            messages.warning(
                request, "The admin needs two-factor authentication. Set up an authenticator app."
            )
            return redirect("mfa_activate_totp")
        return secure_admin_login(super().login)(request, extra_context)
