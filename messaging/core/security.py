"""Response headers that browsers enforce on every page."""

from urllib.parse import urlsplit

from django.conf import settings


def _origin(url: str) -> str:
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def content_security_policy() -> str:
    """No inline script or style anywhere: everything comes from our own static files.

    Forms may post only to us, and the RingCentral link flow redirects the browser to
    RingCentral's authorize page (browsers check `form-action` on that redirect too). Images may
    also come from the attachment store when it hands out signed S3 URLs.
    """
    images = ["'self'", "data:", "blob:"]
    if settings.STORAGE_BACKEND == "s3":
        images.append(_origin(getattr(settings, "AWS_S3_ENDPOINT_URL", "")) or "https:")
    form_action = ["'self'", _origin(settings.RINGCENTRAL_SERVER_URL)]
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": images,
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": [source for source in form_action if source],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


class SecurityHeadersMiddleware:
    """Content-Security-Policy and a Permissions-Policy on every response (Django's own
    SecurityMiddleware covers HSTS, nosniff, the referrer policy and the SSL redirect)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.csp = content_security_policy()

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.csp)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"
        )
        return response
