"""Keeps the request being answered where `audit.record` finds it (a context variable, so
threads and async tasks each see their own)."""

from messaging.audit.log import current_request


class AuditContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            current_request.reset(token)
