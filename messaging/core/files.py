"""Serving a privately stored file to someone already allowed to see it.

Files are read through ``STORAGES["default"]`` only. On the local file system they are streamed
with their recorded type, ``X-Content-Type-Options: nosniff``, a sandboxing
Content-Security-Policy and a ``Content-Disposition`` that shows only raster images, audio,
video and plain text in the browser and downloads everything else (HTML and SVG can carry
scripts). On S3 the response is a redirect to a presigned URL that lives ``PRESIGNED_SECONDS``
and makes S3 answer with the same type and disposition. Who may see a file is the caller's
business (each view checks the file's team first).
"""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.utils.http import content_disposition_header

PRESIGNED_SECONDS = 60
# Shown in the browser; everything else is downloaded.
INLINE_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/bmp",
        "text/plain",
    }
)


def _inline(content_type: str) -> bool:
    return content_type in INLINE_TYPES or content_type.startswith(("audio/", "video/"))


def _presigned_url(storage, name: str, content_type: str, disposition: str) -> str | None:
    """A short-lived signed URL when the storage is S3, else None."""
    try:
        from storages.backends.s3 import S3Storage
    except ImportError:  # pragma: no cover - django-storages[s3] is a dependency
        return None
    if not isinstance(storage, S3Storage):
        return None
    return storage.url(
        name,
        parameters={
            "ResponseContentType": content_type,
            "ResponseContentDisposition": disposition,
        },
        expire=PRESIGNED_SECONDS,
    )


def serve_stored(name: str, content_type: str, filename: str, *, inline: bool | None = None):
    """A response with the stored file ``name`` (see the module docstring); 404 if missing."""
    if not name:
        raise Http404
    storage = default_storage
    inline = _inline(content_type) if inline is None else inline
    disposition = content_disposition_header(not inline, filename)
    url = _presigned_url(storage, name, content_type, disposition)
    if url is not None:
        response = HttpResponseRedirect(url)
        response["Cache-Control"] = "no-store"
        response["Referrer-Policy"] = "no-referrer"
        return response
    try:
        handle = storage.open(name, "rb")
    except (FileNotFoundError, OSError):
        raise Http404 from None
    response = FileResponse(handle, content_type=content_type)
    response["Content-Disposition"] = disposition
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Cache-Control"] = "private, max-age=300"
    return response
