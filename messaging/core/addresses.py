"""Links in emails: on the address the portal is served at, never a guessed host.

`PUBLIC_BASE_URL` wins when it is set. Otherwise a link uses the address of the request that
started the work (kept on the message or the link as `origin`), since a worker sending an email
has no request of its own. With neither, the link is the bare path.
"""

from django.conf import settings


def origin_of(request) -> str:
    """The scheme and host a request reached the portal at (`https://sms.example.com`)."""
    return request.build_absolute_uri("/").rstrip("/")


def absolute_url(path: str, origin: str = "") -> str:
    base = settings.PUBLIC_BASE_URL or origin
    return f"{base}{path}"
