"""SSRF: targets on loopback, private, link-local, unique-local, mapped and embedded IPv6
addresses, hostnames resolving to any of them (the resolver replaced at the DNS boundary
only), and odd schemes are refused by default and allowed with the setting; the request is
pinned to the checked address."""

from __future__ import annotations

import pytest

from technic_v4.settings import Settings
from technic_v4.watch import safety
from technic_v4.watch.safety import UnsafeTargetError, check_apprise, check_webhook, pin

PRIVATE = ["127.0.0.1", "127.9.9.9", "10.0.0.1", "10.255.255.254", "172.16.0.1",
           "172.31.255.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "100.64.0.1",
           "224.0.0.1", "255.255.255.255", "192.0.2.10", "[::1]", "[fd00::1]", "[fc00::5]",
           "[fe80::1]", "[fec0::1]", "[::]", "[::ffff:127.0.0.1]", "[::ffff:10.0.0.1]",
           "[::ffff:169.254.169.254]", "[64:ff9b::a00:1]", "[2002:a00:1::1]", "[ff02::1]"]
PUBLIC = ["93.184.216.34", "8.8.8.8", "[2606:4700:4700::1111]", "[::ffff:8.8.8.8]"]


@pytest.fixture
def dns(monkeypatch):  # type: ignore[no-untyped-def]
    """A fake DNS: host -> addresses (the only thing replaced)."""
    table: dict[str, list[str]] = {}

    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"no such host {host}")
        return table[host]

    monkeypatch.setattr(safety, "resolve", resolve)
    return table


@pytest.mark.parametrize("host", PRIVATE)
def test_private_literals_are_refused_unless_allowed(host):
    url = f"https://{host}/hook"
    with pytest.raises(UnsafeTargetError, match="refused"):
        check_webhook(url, allow_private=False)
    check_webhook(url, allow_private=True)


@pytest.mark.parametrize("host", PUBLIC)
def test_public_literals_pass(host):
    check_webhook(f"https://{host}:8443/hook?token=x", allow_private=False)


@pytest.mark.parametrize("addresses", [["10.1.2.3"], ["93.184.216.34", "127.0.0.1"],
                                       ["::1"], ["fd12::1"], ["::ffff:192.168.0.1"],
                                       ["169.254.169.254"]])
def test_hostnames_resolving_to_private_addresses_are_refused(dns, addresses):
    dns["hooks.example.com"] = addresses
    with pytest.raises(UnsafeTargetError, match="resolves to"):
        check_webhook("https://hooks.example.com/x", allow_private=False)
    check_webhook("https://hooks.example.com/x", allow_private=True)


def test_localhost_is_refused_by_the_real_resolver():
    with pytest.raises(UnsafeTargetError, match="loopback"):
        check_webhook("http://localhost:8080/hook", allow_private=False)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://x",
                                 "javascript:alert(1)", "https:///nohost", "http://x:99999/",
                                 "//example.com/x", "example.com/x"])
def test_only_http_and_https_with_a_host(url):
    with pytest.raises(UnsafeTargetError):
        check_webhook(url, allow_private=True)


def test_the_request_goes_to_the_checked_address(dns):
    dns["hooks.example.com"] = ["93.184.216.34"]
    p = pin("https://hooks.example.com/a/b?c=1", allow_private=False)
    assert p.url == "https://93.184.216.34:443/a/b?c=1"
    assert (p.host_header, p.sni, p.address) == ("hooks.example.com", "hooks.example.com",
                                                 "93.184.216.34")
    dns["hooks.example.com"] = ["2606:4700::1"]
    p = pin("http://hooks.example.com:8080/", allow_private=False)
    assert p.url == "http://[2606:4700::1]:8080/" and p.host_header == "hooks.example.com:8080"
    assert p.sni is None


def test_rebinding_after_the_check_cannot_redirect_the_request(dns):
    """The address is resolved once per attempt and the connection made to it: a second
    answer (rebinding) is never looked up for that attempt."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    dns_calls = []

    def resolve(host, port):  # type: ignore[no-untyped-def]
        dns_calls.append(host)
        return next(answers)

    safety.resolve = resolve  # restored by the dns fixture's monkeypatch
    p = pin("https://rebind.example/x", allow_private=False)
    assert p.address == "93.184.216.34" and dns_calls == ["rebind.example"]
    with pytest.raises(UnsafeTargetError):
        pin("https://rebind.example/x", allow_private=False)


@pytest.mark.parametrize("url", ["json://127.0.0.1/x", "mailto://u:p@10.0.0.5?to=a@b.c&from=x@example.org",
                                 "mailtos://u:p@example.org?smtp=192.168.0.2&to=a@b.c",
                                 "ntfy://[::1]/topic", "xml://169.254.169.254/"])
def test_apprise_targets_on_private_hosts_are_refused(dns, url):
    dns["example.org"] = ["93.184.216.34"]
    with pytest.raises(UnsafeTargetError, match="refused"):
        check_apprise(url, allow_private=False)
    check_apprise(url, allow_private=True)


def test_apprise_service_urls_pass_and_nonsense_is_refused():
    check_apprise("tgram://123456789:AAAbbbCCC/12345", allow_private=False)
    with pytest.raises(UnsafeTargetError, match="is not allowed"):
        check_apprise("nonsense://what", allow_private=False)
    with pytest.raises(UnsafeTargetError, match="does not understand"):
        check_apprise("tgram://", allow_private=False)


def test_the_setting(monkeypatch):
    monkeypatch.delenv("TECHNIC_WEBHOOK_ALLOW_PRIVATE", raising=False)
    assert Settings().webhook_allow_private is False
    monkeypatch.setenv("TECHNIC_WEBHOOK_ALLOW_PRIVATE", "1")
    assert Settings().webhook_allow_private is True
