"""Outgoing requests to addresses a tenant typed (workflow webhooks): refuse the server's own
neighbourhood — loopback, private, link-local (cloud metadata), multicast, reserved — after DNS
resolution, and send to the very address that was checked, without following redirects.

On-premise targets are allowed by listing their networks in OUTBOUND_ALLOWED_NETWORKS."""

import ipaddress
import socket
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.translation import gettext as _
from requests.adapters import HTTPAdapter

# Names that resolve to the metadata service on clouds without going through an IP literal.
_BLOCKED_NAMES = {"metadata", "metadata.google.internal", "metadata.internal", "instance-data"}


class UnsafeURL(ValidationError):
    """The URL points somewhere the server must not send to."""


def _allowed_networks():
    return [ipaddress.ip_network(net, strict=False) for net in settings.OUTBOUND_ALLOWED_NETWORKS]


def address_is_public(ip):
    """True for an address on the public internet (or in an allowed on-premise network)."""
    ip = ipaddress.ip_address(ip)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if any(ip in net for net in _allowed_networks()):
        return True
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def url_check(url, *, resolve=True):
    """Return (url parts, the checked addresses) or raise UnsafeURL with a message for the user.
    Every address the name resolves to must be public: a name with one private answer could be
    made to pick it."""
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError as exc:
        raise UnsafeURL(_("Enter a valid http:// or https:// URL.")) from exc
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.username or parts.password:
        raise UnsafeURL(_("The URL must not carry a user name or password."))
    if host in _BLOCKED_NAMES or host == "localhost" or host.endswith((".localhost", ".internal", ".local")):
        raise UnsafeURL(_("The URL points to a private, loopback or link-local address, which is not allowed."))
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    elif not resolve:
        return parts, []
    else:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise UnsafeURL(_("The host “%(host)s” cannot be found.") % {"host": host}) from exc
        addresses = sorted({info[4][0] for info in infos})
    if not addresses or not all(address_is_public(a) for a in addresses):
        raise UnsafeURL(_("The URL points to a private, loopback or link-local address, which is not allowed."))
    return parts, addresses


class PinnedAdapter(HTTPAdapter):
    """Connects to the checked address while TLS still verifies the certificate for the name."""

    def __init__(self, hostname, **kwargs):
        self.hostname = hostname
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["server_hostname"] = self.hostname
        kwargs["assert_hostname"] = self.hostname
        super().init_poolmanager(*args, **kwargs)


def safe_post(url, *, data, headers, timeout):
    """POST to `url` after url_check, to the address that passed it (no second lookup a DNS
    rebinding could answer differently), never following a redirect."""
    parts, addresses = url_check(url)
    ip = addresses[0]
    host_in_url = f"[{ip}]" if ":" in ip else ip
    netloc = f"{host_in_url}:{parts.port}" if parts.port else host_in_url
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = parts.hostname + (f":{parts.port}" if parts.port else "")
    with requests.Session() as session:
        session.trust_env = False  # an HTTP(S)_PROXY variable would move the request elsewhere
        if parts.scheme == "https":
            session.mount(f"https://{netloc}", PinnedAdapter(parts.hostname))
        return session.post(pinned, data=data, headers={**headers, "Host": host_header}, timeout=timeout,
                            allow_redirects=False)
