"""Where a watch may send: no requests into the server's own network (SSRF).

A webhook URL is a request this server makes on a user's behalf; without checks it could
reach the cloud metadata service (169.254.169.254), an admin port on loopback, or anything
on the private network. So, unless `TECHNIC_WEBHOOK_ALLOW_PRIVATE=1`:
  1. form: http or https only, a host, a valid port;
  2. resolve the host (`resolve`, the one DNS boundary: tests replace it) and refuse when
     ANY address it resolves to is not public: private, loopback, link-local, unique-local,
     site-local, multicast, unspecified, reserved, shared (100.64/10), documentation, and
     IPv6 forms that embed an IPv4 address (::ffff:a.b.c.d, 64:ff9b::/96, 2002::/16) judged
     by the embedded address;
  3. connect to the address that was checked, never to the name again: the request goes to
     `https://<ip>:<port>/path` with the original `Host` header and the TLS SNI/certificate
     check on the original host name (httpx's `sni_hostname`), so a DNS answer that changes
     between check and connect (rebinding) cannot redirect the request;
  4. redirects are not followed: a 3xx is a failed attempt saying where it pointed (point
     the watch at the final URL), so no redirect can lead into the network either.
Every request has connect/read/write timeouts and an overall deadline, and reads at most
RESPONSE_CAP bytes of the answer (only the status matters).
Apprise targets (chat, e-mail) connect through apprise's own clients, so they are confined
instead of pinned:
  5. only the schemes in APPRISE_SCHEMES are accepted (any other is refused at creation,
     naming these): SERVER_SCHEMES, whose host is a server the user names (the host, and an
     e-mail `smtp=` host, resolved and checked as in step 2 at creation and before every
     send), and SERVICE_SCHEMES, whose plugin sends to its service's fixed public endpoint
     (the URL's host is a token there, never a place to connect to);
  6. every send runs under `confined`: a Python audit hook refuses each socket connection
     (and datagram) of that context to a non-public address, whatever name, DNS answer or
     redirect led there, so the check holds at connect time as a pinned address would;
     apprise is told not to follow redirects at all (`http_redirects=False`, and
     `redirects = False` on the plugin, whatever the URL's `redirect=` says).
Listings and logs show targets through `display_url` / `redact_text`: no path, query, user
or password, and no host where the host is a token (SERVICE_SCHEMES).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from technic_v4.errors import ConfigError

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
RESPONSE_CAP = 64 * 1024
SHARED = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
SERVER_SCHEMES = frozenset({
    "mailto", "mailtos", "json", "jsons", "xml", "xmls", "form", "forms", "ntfy", "ntfys",
    "gotify", "gotifys", "mmost", "mmosts", "matrix", "matrixs", "rocket", "rockets",
    "apprise", "apprises"})
SERVICE_SCHEMES = frozenset({
    "tgram", "slack", "discord", "pover", "pbul", "prowl", "ifttt", "join", "pagerduty",
    "opsgenie", "gchat", "wxteams", "webex"})
APPRISE_SCHEMES = SERVER_SCHEMES | SERVICE_SCHEMES
Resolver = Callable[[str, int], list[str]]


class UnsafeTargetError(ConfigError):
    """A target URL that is malformed or points into a non-public network."""

    def __init__(self, field: str, message: str):
        super().__init__(field, message)


def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


resolve: Resolver = _getaddrinfo  # the DNS boundary (tests monkeypatch this name)


def not_public(ip: IP) -> str | None:
    """Why `ip` is not a public address, or None when it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or (ip.sixtofour if ip.sixtofour else None)
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            why = not_public(embedded)
            return f"embeds {embedded}, which is {why}" if why else None
        if ip.is_site_local:
            return "site-local"
    for label, hit in (("loopback", ip.is_loopback), ("link-local", ip.is_link_local),
                       ("multicast", ip.is_multicast), ("unspecified", ip.is_unspecified),
                       ("private", ip.is_private), ("reserved", ip.is_reserved)):
        if hit:
            return label
    if isinstance(ip, ipaddress.IPv4Address) and ip in SHARED:
        return "shared address space (100.64.0.0/10)"
    if not ip.is_global:
        return "not globally routable"
    return None


def check_host(host: str, port: int, allow_private: bool, field: str) -> list[str]:
    """The addresses `host` resolves to, all public (or `allow_private`); else
    UnsafeTargetError naming the address and why."""
    host = host.strip("[]")
    try:
        literal: IP | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise UnsafeTargetError(field, f"cannot resolve {host!r}: {exc}") from None
        if not addresses:
            raise UnsafeTargetError(field, f"{host!r} resolves to no address")
    if not allow_private:
        for address in addresses:
            why = not_public(ipaddress.ip_address(address.split("%")[0]))
            if why:
                raise UnsafeTargetError(
                    field, f"{host} resolves to {address}, which is {why}: refused (set "
                    "TECHNIC_WEBHOOK_ALLOW_PRIVATE=1 to allow private targets)")
    return addresses


def webhook_parts(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a webhook URL, or UnsafeTargetError for a malformed one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTargetError("webhooks", f"malformed URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeTargetError("webhooks", f"webhook URLs are http or https, not "
                                f"{parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise UnsafeTargetError("webhooks", "a webhook URL needs a host")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


@dataclass(frozen=True)
class Pinned:
    """A request target bound to the address that was checked (module docstring, step 3)."""

    url: str          # the URL with the host replaced by the checked address
    host_header: str  # the original host[:port]
    sni: str | None   # the original host, for TLS
    address: str


def pin(url: str, allow_private: bool) -> Pinned:
    """Resolve and check `url`'s host, and aim the request at the first checked address."""
    scheme, host, port = webhook_parts(url)
    address = check_host(host, port, allow_private, "webhooks")[0]
    parts = urlsplit(url)
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{port}"
    default = (scheme, port) in (("http", 80), ("https", 443))
    shown_host = f"[{host}]" if ":" in host else host
    host_header = shown_host if default else f"{shown_host}:{port}"
    target = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
    return Pinned(target, host_header, host if scheme == "https" else None, address)


def check_webhook(url: str, allow_private: bool) -> None:
    pin(url, allow_private)


def check_apprise(url: str, allow_private: bool) -> None:
    """The scheme (APPRISE_SCHEMES), the form (apprise must understand the URL) and, for
    SERVER_SCHEMES, where it points (module docstring, step 5)."""
    import apprise

    scheme = _scheme(url)
    if scheme not in APPRISE_SCHEMES:
        raise UnsafeTargetError(
            "apprise", f"apprise scheme {scheme or 'none'!r} is not allowed: technic sends "
            f"only where it checks the host or the service's endpoint is fixed: "
            f"{', '.join(sorted(APPRISE_SCHEMES))}")
    plugin: Any = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if not plugin:
        raise UnsafeTargetError("apprise", "apprise does not understand this URL (see "
                                "https://github.com/caronc/apprise/wiki for the formats)")
    if scheme not in SERVER_SCHEMES:
        return
    port = int(getattr(plugin, "port", None) or 0)
    for host in {getattr(plugin, "host", None), getattr(plugin, "smtp_host", None)}:
        if host:
            check_host(str(host), port, allow_private, "apprise")


async def check_target(kind: str, url: str, allow_private: bool) -> None:
    """`check_webhook` / `check_apprise` off the event loop (DNS blocks)."""
    check = check_webhook if kind == "webhook" else check_apprise
    await asyncio.to_thread(check, url, allow_private)


def _scheme(url: str) -> str:
    head, sep, _ = url.partition("://")
    return head.strip().lower() if sep else ""


# -- confinement of apprise's own connections (module docstring, step 6) -----------------
_CONFINED: ContextVar[bool] = ContextVar("technic_confined", default=False)
_HOOK = threading.Lock()
_hooked = False


class RefusedConnection(ConnectionRefusedError):
    """A connection `confined` code tried to open to a non-public address."""


def confined_address(address: object) -> str | None:
    """Why a socket may not connect/send to `address` under `confined`, or None."""
    if not isinstance(address, tuple) or len(address) < 2:
        return f"{address!r} is not an internet address"
    host = str(address[0]).split("%")[0].strip("[]")
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in
                         _getaddrinfo(host, int(address[1] or 0))]
        except (OSError, UnicodeError, ValueError) as exc:
            return f"{host!r} does not resolve: {exc}"
    for ip in addresses:
        why = not_public(ip)
        if why:
            return f"{ip} is {why}"
    return None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event not in ("socket.connect", "socket.sendto") or not _CONFINED.get():
        return
    why = confined_address(args[1] if len(args) > 1 else None)
    if why:
        raise RefusedConnection(f"refused: a target may not reach {why}")


@contextmanager
def confined(allow_private: bool) -> Iterator[None]:
    """Within this context (and what apprise runs for it in its worker threads: the context
    travels with them), no socket connects or sends to a non-public address; nothing is
    confined when `allow_private`."""
    global _hooked
    with _HOOK:
        if not _hooked:
            sys.addaudithook(_audit)
            _hooked = True
    token = _CONFINED.set(not allow_private)
    try:
        yield
    finally:
        _CONFINED.reset(token)


# -- redaction -----------------------------------------------------------------------------
URL_IN_TEXT = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{1,19})://([^\s/?#'\"<>]*)([/?#][^\s'\"<>]*)?")


def shown_host(scheme: str, host: str) -> bool:
    """Whether a URL's host may be shown: a server someone connects to (webhooks,
    SERVER_SCHEMES with a dotted name or address), not a token (SERVICE_SCHEMES, an ntfy
    topic, anything else)."""
    if scheme in ("http", "https"):
        return True
    return scheme in SERVER_SCHEMES and bool(host) and (
        "." in host or ":" in host or host == "localhost")


def display_url(url: str) -> str:
    """A target URL without what may be a credential: the scheme, the host where it is a
    server (`shown_host`) and its port, "/…" when a path or query was cut, and a short
    fingerprint of the whole URL so two targets can be told apart."""
    fingerprint = hashlib.sha256(url.encode()).hexdigest()[:8]
    return f"{redact_text(url.strip(), whole=True)} #{fingerprint}"


def redact_text(text: str, whole: bool = False) -> str:
    """`text` with every URL in it cut to what `display_url` shows (logs, error texts)."""
    def cut(m: re.Match[str]) -> str:
        scheme, netloc, rest = m.group(1).lower(), m.group(2), m.group(3) or ""
        hostport = netloc.rpartition("@")[2]
        host = hostport
        if hostport.startswith("["):
            host = hostport[1:hostport.find("]")] if "]" in hostport else hostport
        elif hostport.count(":") == 1:
            host = hostport.split(":")[0]
        if not shown_host(scheme, host.lower()):
            return f"{scheme}://…"
        return f"{scheme}://{hostport.lower()}" + ("/…" if rest not in ("", "/") else "")

    if whole:
        m = URL_IN_TEXT.fullmatch(text)
        return cut(m) if m else "(unparsed URL)"
    return URL_IN_TEXT.sub(cut, text)


class RedactURLs(logging.Filter):
    """Rewrites a log record's message with `redact_text` (httpx's `HTTP Request: POST
    http://host/hooks/<token>` becomes `... http://host/…`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


REDACTED_LOGGERS = ("httpx", "httpcore", "urllib3.connectionpool", "apprise")


def redact_logs() -> None:
    """Install RedactURLs on the loggers of the clients targets are sent through (once)."""
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactURLs) for f in logger.filters):
            logger.addFilter(RedactURLs())
