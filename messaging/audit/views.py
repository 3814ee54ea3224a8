"""The team admin's audit log page and its CSV export (the current team's entries only).

The audit room sits below teams (every room writes to it), so it cannot ask
`teams.permissions`; it applies the same rule to the current team the teams middleware put on
the request: no team or not a member is 404, a member below admin is 403.
"""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from messaging import audit
from messaging.audit.browsing import PAGE_SIZE, AuditFilterForm, csv_rows, entries_for
from messaging.models import AuditAction, Role


def _team_admin(request):
    membership = getattr(request, "membership", None)
    if not request.user.is_authenticated or membership is None:
        raise Http404
    if not membership.can(Role.ADMIN):
        raise PermissionDenied(f"The audit log is read by the admins of {membership.team}.")
    return membership


def _filtered(request, membership):
    form = AuditFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_bound and form.is_valid() else {}
    return form, filters, entries_for(membership.team, filters)


@login_required
@require_GET
def audit_log(request):
    membership = _team_admin(request)
    form, _, entries = _filtered(request, membership)
    page = Paginator(entries.select_related("actor"), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    status = 400 if form.is_bound and form.errors else 200
    return render(
        request,
        "audit/log.html",
        {
            "team": membership.team,
            "form": form,
            "page": page,
            "query": query.urlencode(),
        },
        status=status,
    )


@login_required
@require_GET
def audit_export(request):
    membership = _team_admin(request)
    _, filters, entries = _filtered(request, membership)
    audit.record(
        AuditAction.AUDIT_EXPORTED,
        team=membership.team,
        details={key: str(value) for key, value in filters.items() if value},
    )
    stamp = timezone.localtime().strftime("%Y-%m-%d")
    response = StreamingHttpResponse(csv_rows(entries), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return response
