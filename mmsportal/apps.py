from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    """Django's admin, served by our site class (staff with two-factor authentication only)."""

    default_site = "mmsportal.admin.PortalAdminSite"
