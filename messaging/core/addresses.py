"""Addresses: where the portal is served (for links in emails) and where a request came from.

Links in emails use `PUBLIC_BASE_URL` when it is set. Otherwise a link uses the address of the
request that started the work (kept on the message or the link as `origin`), since a worker
sending an email has no request of its own. With neither, the link is the bare path.

A client's address is `REMOTE_ADDR`, unless `TRUSTED_PROXY_COUNT` proxies stand in front of the
portal: each appends the address it was reached from to `X-Forwarded-For`, so the client is the
entry that many places from the right. Entries further left come from the client itself and
are never believed.
"""

import ipaddress

from django.conf import settings


def origin_of(request) -> str:
    """The scheme and host a request reached the portal at (`https://sms.example.com`)."""
    return request.build_absolute_uri("/").rstrip("/")


def absolute_url(path: str, origin: str = "") -> str:
    base = settings.PUBLIC_BASE_URL or origin
    return f"{base}{path}"


def client_ip(request) -> str:
    """The address of the client behind `TRUSTED_PROXY_COUNT` proxies (see the module
    docstring). A request that passed fewer proxies than that (one that reached the portal
    directly) or carries no address in that place is taken at its `REMOTE_ADDR`."""
    remote = request.META.get("REMOTE_ADDR", "")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(forwarded) < hops:
        return remote
    candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
