"""The pages around the rooms: the welcome page, the dashboard, /healthz and the error pages."""

import logging

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from messaging.outbox.dashboard import dashboard_stats
from messaging.teams.permissions import get_team_for_user
from mmsportal.celery import app as celery_app

log = logging.getLogger(__name__)


@require_GET
def favicon(request):
    """Browsers ask for /favicon.ico wherever a page names no icon (a file, JSON)."""
    return redirect(static("favicon.svg"), permanent=True)


def home(request):
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "messaging/welcome.html")


@login_required
def dashboard(request):
    # Folder counts and the 30-day chart (templates/messaging/dashboard_stats.html).
    stats = dashboard_stats(get_team_for_user(request))
    return render(request, "messaging/dashboard.html", stats)


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        log.exception("healthz: database unreachable")
        return False


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
            if conn.transport.driver_type == "redis":
                # Connecting a Redis transport opens no socket yet; ask the server itself.
                conn.default_channel.client.ping()
        return True
    except Exception:
        log.exception("healthz: broker unreachable")
        return False


@never_cache
@require_GET
def healthz(request):
    """Liveness for load balancers and `make run`: 200 only when the database and the broker
    both answer."""
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    status = 200 if all(checks.values()) else 503
    return JsonResponse(
        {"status": "ok" if status == 200 else "unavailable", **checks}, status=status
    )


# --- Error pages (named by settings.CSRF_FAILURE_VIEW and mmsportal/urls.py) ----------------


def csrf_failure(request, reason=""):
    """A form posted without a valid CSRF token (usually an expired page or blocked cookies)."""
    return render(request, "errors/csrf.html", {"reason": reason}, status=403)


def bad_request(request, exception=None):
    return render(request, "errors/400.html", status=400)


def permission_denied(request, exception=None):
    reason = str(exception) if exception and str(exception) else ""
    return render(request, "errors/403.html", {"reason": reason}, status=403)


def page_not_found(request, exception=None):
    return render(request, "errors/404.html", status=404)


def server_error(request):
    return render(request, "errors/500.html", status=500)
