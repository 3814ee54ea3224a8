"""Where a webhook may be sent: no requests into the portal's own network (SSRF).

An endpoint's URL must be http or https with a host whose every address is public: private,
loopback, link-local, multicast, reserved, shared (100.64/10) and unspecified addresses are
refused, for IPv4 and IPv6 alike, and an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is judged
as the IPv4 address it carries. `HOOKS_ALLOW_PRIVATE_NETWORKS=true` lifts the rule (a receiver
on the same host or network, and the tests).

The URL is checked when it is saved and again at every delivery. At delivery the host is
resolved once, each address checked, and the connection made to the checked address itself
(with the URL's host name kept for the `Host` header, TLS's SNI and certificate check): a name
whose DNS answer changes between the check and the connection (DNS rebinding) cannot lead the
request anywhere the check did not see.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeAddress(ValueError):
    """The URL may not be called; the message says why, in words for the team admin."""


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            address = mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def split(url: str) -> tuple[str, str, int]:
    """Scheme, host and port of an http(s) URL; UnsafeAddress for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeAddress("This is not a valid URL.") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeAddress("Only http:// and https:// addresses can receive webhooks.")
    if not parts.hostname:
        raise UnsafeAddress("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeAddress("Put no user name or password in the URL.")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, each one checked (UnsafeAddress when any is refused,
    or when the name does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeAddress(f"The host {host} could not be found.") from None
    addresses = []
    for info in infos:
        text = info[4][0].split("%", 1)[0]
        address = ipaddress.ip_address(text)
        if not settings.HOOKS_ALLOW_PRIVATE_NETWORKS and _refused(address):
            raise UnsafeAddress(
                f"{host} is on a private, loopback, link-local or otherwise reserved network "
                f"({address}); webhooks go only to public addresses."
            )
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise UnsafeAddress(f"The host {host} could not be found.")
    return addresses


def check(url: str) -> None:
    """Raise UnsafeAddress unless `url` may receive webhooks now."""
    _, host, port = split(url)
    resolve(host, port)
