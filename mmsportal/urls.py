from django.contrib import admin
from django.urls import include, path

from messaging.pages import views as pages

handler400 = "messaging.pages.views.bad_request"
handler403 = "messaging.pages.views.permission_denied"
handler404 = "messaging.pages.views.page_not_found"
handler500 = "messaging.pages.views.server_error"

urlpatterns = [
    path("", pages.home, name="home"),
    path("dashboard/", pages.dashboard, name="dashboard"),
    path("healthz", pages.healthz, name="healthz"),
    # Browsers ask for /favicon.ico wherever a page names no icon (files, JSON, the admin's own
    # pages before they load).
    path("favicon.ico", pages.favicon),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("", include("messaging.urls")),
]
