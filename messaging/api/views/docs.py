"""The OpenAPI schema and its rendering, from the sidecar's files (no CDN)."""

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny


class Schema(SpectacularAPIView):
    # Readable without a key, so a client can be generated from it.
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []


class Docs(SpectacularSwaggerSplitView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # Swagger UI sets style attributes from its script; everything else stays as strict as
        # on every other page (scripts only from our own static files).
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'; form-action 'self'"
        )
        return response
