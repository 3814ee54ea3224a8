"""Every error of the API as an RFC 9457 problem document (`application/problem+json`):

    {"type": "/api/v1/problems#validation", "title": "…", "status": 400, "detail": "…",
     "errors": {"field": ["message", …]}}

DRF's exceptions, Django's Http404 and PermissionDenied, the compose rules' ComposeInvalid and
bodies Django refuses to read all end here; nothing under /api/ answers with an HTML page.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from messaging.compose.submission import ComposeInvalid

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "/api/v1/problems#"

# Titles by status, and the problem type each status is given when nothing more precise applies.
TITLES = {
    400: ("invalid", "The request is not valid"),
    401: ("unauthenticated", "Authentication needed"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("too-large", "Request too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("unprocessable", "The request cannot be carried out"),
    429: ("throttled", "Too many requests"),
    500: ("server-error", "Server error"),
}


class Problem(exceptions.APIException):
    """An error with its own status, type, detail and field errors."""

    def __init__(self, status_code: int, detail: str, *, code: str = "", errors=None, title=""):
        self.status_code = status_code
        self.code = code or TITLES.get(status_code, ("error", ""))[0]
        self.title = title or TITLES.get(status_code, ("", "Error"))[1]
        self.errors = errors or {}
        super().__init__(detail)


def body(status_code: int, detail: str, *, code: str = "", title: str = "", errors=None) -> dict:
    default_code, default_title = TITLES.get(status_code, ("error", "Error"))
    document = {
        "type": TYPE_BASE + (code or default_code),
        "title": title or default_title,
        "status": status_code,
        "detail": detail,
    }
    if errors:
        document["errors"] = errors
    return document


def problem_response(status_code: int, detail: str, **kwargs) -> Response:
    return Response(
        body(status_code, detail, **kwargs), status=status_code, content_type=CONTENT_TYPE
    )


def django_problem(status_code: int, detail: str, **kwargs) -> JsonResponse:
    """The same document for a plain Django view (outside DRF's handling)."""
    return JsonResponse(
        body(status_code, detail, **kwargs), status=status_code, content_type=CONTENT_TYPE
    )


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"field": [...], "field.sub": [...]}."""
    errors: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for field, messages in _flatten(value, name).items():
                errors.setdefault(field, []).extend(messages)
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, dict | list):
                name = f"{prefix}.{index}" if prefix else str(index)
                for field, messages in _flatten(value, name).items():
                    errors.setdefault(field, []).extend(messages)
            else:
                errors.setdefault(prefix or "non_field_errors", []).append(str(value))
    else:
        errors.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return errors


def _summary(errors: dict[str, list[str]]) -> str:
    parts = [f"{field}: {messages[0]}" for field, messages in errors.items() if messages]
    more = f" (and {len(parts) - 3} more)" if len(parts) > 3 else ""
    return "; ".join(parts[:3]) + more


def exception_handler(exc, context):
    if isinstance(exc, ComposeInvalid):
        errors = {field: messages for field, messages in exc.errors.items() if messages}
        return problem_response(
            422,
            _summary(errors) or "The message cannot be sent.",
            code="message-refused",
            title="The message cannot be sent",
            errors=errors,
        )
    if isinstance(exc, PermissionDenied):
        return problem_response(403, str(exc) or "Your role in this team does not allow this.")
    if isinstance(exc, RequestDataTooBig):
        return problem_response(413, "The request body is larger than the API reads.")
    if isinstance(exc, SuspiciousOperation):
        return problem_response(400, "The request body could not be read.")
    if isinstance(exc, Problem):
        response = problem_response(
            exc.status_code, str(exc.detail), code=exc.code, title=exc.title, errors=exc.errors
        )
        if exc.status_code == 429 and getattr(exc, "wait", None):
            response["Retry-After"] = str(int(exc.wait))
        return response
    response = drf_exception_handler(exc, context)
    if response is None:
        log.exception("Unexpected error in the API", exc_info=exc)
        return problem_response(500, "Something went wrong on our side; nothing was changed.")
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        document = body(400, _summary(errors), code="validation", errors=errors)
    elif isinstance(exc, Http404 | exceptions.NotFound):
        document = body(404, "There is nothing here, or it belongs to another team.")
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        if isinstance(detail, dict | list):
            errors = _flatten(detail)
            document = body(response.status_code, _summary(errors), errors=errors)
        else:
            document = body(response.status_code, str(detail))
    response.data = document
    response.content_type = CONTENT_TYPE
    return response


@csrf_exempt  # answers every method with a 404; reads nothing, changes nothing
def not_found(request, *args, **kwargs):
    """Any other address under /api/."""
    return django_problem(status.HTTP_404_NOT_FOUND, "There is no such API address.")
