"""Loaded by the documentation sandbox's Python processes (tests/docs/doc_blocks.py): the
examples' placeholder host example.com (and its subdomains) resolves to 127.0.0.1."""

import socket

_resolve = socket.getaddrinfo


def _getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    if isinstance(host, bytes):
        host = host.decode()
    if isinstance(host, str) and (host == "example.com" or host.endswith(".example.com")):
        host = "127.0.0.1"
    return _resolve(host, *args, **kwargs)


socket.getaddrinfo = _getaddrinfo
