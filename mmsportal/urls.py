from django.contrib import admin
from django.urls import include, path

from messaging.views import home

handler400 = "messaging.views.errors.bad_request"
handler403 = "messaging.views.errors.permission_denied"
handler404 = "messaging.views.errors.page_not_found"
handler500 = "messaging.views.errors.server_error"

urlpatterns = [
    path("", home.home, name="home"),
    path("dashboard/", home.dashboard, name="dashboard"),
    path("healthz", home.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("", include("messaging.urls")),
]
