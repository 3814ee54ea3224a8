"""Importing a contacts file (admins).

    GET/POST  /contacts/import/                   recent imports; upload a CSV or Excel file
    GET/POST  /contacts/import/<id>/              its columns and first rows, then "Import";
                                                  once started, its progress and results
    GET       /contacts/import/<id>/progress/     the progress as JSON (polled by the page)
    GET       /contacts/import/<id>/problems.csv  the rows refused or merged, with their cells
    POST      /contacts/import/<id>/resume/       continue a stopped import where it stopped

The upload view is exempt from the CSRF middleware for the same reason as compose's: the
middleware would read (and store) the whole body first. It refuses a body larger than
CONTACTS_IMPORT_MAX_BYTES from its Content-Length, unread, then checks the token.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.urls import reverse
from django.utils.text import get_valid_filename
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from messaging.contacts import columns, exporting, importing, reading, tasks
from messaging.models import ImportJob, ImportStatus, Role
from messaging.teams.permissions import get_rw_team_for_user, get_team_for_user

# Room for the multipart framing around the file.
FORM_OVERHEAD = 64 * 1024


def _job(request, pk) -> tuple[object, ImportJob]:
    membership = get_team_for_user(request)
    job = ImportJob.objects.filter(team=membership.team, pk=pk).first()
    if job is None:
        raise Http404
    return get_rw_team_for_user(request, role=Role.ADMIN), job


def _upload_page(request, membership, error="", status=200):
    response = render(
        request,
        "contacts/import.html",
        {
            "team": membership.team,
            "jobs": ImportJob.objects.filter(team=membership.team)[:10],
            "error": error,
            "max_bytes": settings.CONTACTS_IMPORT_MAX_BYTES,
            "max_rows": reading.MAX_ROWS,
            "default_region": settings.PHONE_DEFAULT_REGION,
        },
        status=status,
    )
    return response


@csrf_exempt  # checked by csrf_protect in _upload, after the size check (see above)
@never_cache
@require_http_methods(["GET", "POST"])
def import_upload(request):
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    membership = get_rw_team_for_user(request, role=Role.ADMIN)
    if request.method == "POST":
        try:
            size = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            size = 0
        limit = settings.CONTACTS_IMPORT_MAX_BYTES
        if size > limit + FORM_OVERHEAD:
            response = _upload_page(
                request,
                membership,
                f"The file is larger than {limit / 1e6:.0f} MB, the most an import takes. "
                "Split it and import each part.",
                status=413,
            )
            response["Connection"] = "close"
            return response
    return _upload(request, membership)


@csrf_protect
def _upload(request, membership):
    if request.method != "POST":
        return _upload_page(request, membership)
    try:
        upload = request.FILES.get("file")
    except (MultiPartParserError, RequestDataTooBig, SuspiciousOperation):
        return _upload_page(request, membership, "The upload was cut off. Try again.", 400)
    if upload is None:
        return _upload_page(request, membership, "Choose a CSV or Excel file to import.", 400)
    try:
        job = importing.receive(membership, upload)
    except importing.ImportRefused as refused:
        status = 413 if upload.size > settings.CONTACTS_IMPORT_MAX_BYTES else 400
        return _upload_page(request, membership, f"{upload.name[:80]}: {refused}", status)
    return HttpResponseRedirect(reverse("contact_import", args=[job.pk]))


def _progress(job: ImportJob) -> dict:
    total = job.total_rows
    percent = 100 if job.status == ImportStatus.DONE else 0
    if total:
        percent = min(100, round(100 * job.position / total))
    return {
        "status": job.status,
        "status_label": job.get_status_display(),
        "position": job.position,
        "total": total,
        "percent": percent,
        "created": job.created_count,
        "updated": job.updated_count,
        "merged": job.merged_count,
        "refused": job.refused_count,
        "opted_out": job.opted_out_count,
        "failure": job.failure,
        "finished": job.finished,
    }


@never_cache
@require_http_methods(["GET", "POST"])
def import_detail(request, pk):
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    membership, job = _job(request, pk)
    error = ""
    mapping = job.mapping
    if request.method == "POST":
        mapping = [request.POST.get(f"column-{i}", "") for i in range(len(job.headers))]
        try:
            importing.start(job, mapping)
        except importing.ImportRefused as refused:
            error = str(refused)
        else:
            tasks.import_soon(job.pk)
            return HttpResponseRedirect(reverse("contact_import", args=[job.pk]))
    job.refresh_from_db()
    context = {
        "team": membership.team,
        "job": job,
        "progress": _progress(job),
        "error": error,
        "resumable": importing.resumable(job),
    }
    if job.status == ImportStatus.UPLOADED:
        context["columns"] = [
            {"index": i, "header": header, "target": target}
            for i, (header, target) in enumerate(zip(job.headers, mapping, strict=False))
        ]
        context["targets"] = columns.TARGETS
        context["preview"] = importing.preview(job)
    else:
        context["merged"] = job.problems.filter(kind="merged")[:20]
        context["refused"] = job.problems.filter(kind="refused")[:20]
    return render(request, "contacts/import_job.html", context, status=400 if error else 200)


@never_cache
@require_GET
def import_progress(request, pk):
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Your session has ended; sign in again."}, status=401)
    _, job = _job(request, pk)
    return JsonResponse(_progress(job))


@require_GET
def import_problems(request, pk):
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    _, job = _job(request, pk)
    header, rows = importing.problem_rows(job)
    response = StreamingHttpResponse(
        exporting.csv_lines(header, rows), content_type="text/csv; charset=utf-8"
    )
    stem = get_valid_filename(job.file_name.rsplit(".", 1)[0])[:60] or "contacts"
    response["Content-Disposition"] = f'attachment; filename="{stem}-problems.csv"'
    return response


@require_POST
def import_resume(request, pk):
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    _, job = _job(request, pk)
    try:
        importing.resume(job)
    except importing.ImportRefused as refused:
        messages.error(request, str(refused))
    else:
        tasks.import_soon(job.pk)
    return HttpResponseRedirect(reverse("contact_import", args=[job.pk]))
