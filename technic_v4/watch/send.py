"""One delivery attempt: a signed webhook, or one apprise message per watch and session.

Webhooks follow Standard Webhooks: the body is `{"type": "watch.<kind>", "data": <event>}`;
headers `webhook-id` (the event id: receivers de-duplicate on it), `webhook-timestamp` (Unix
seconds of this attempt) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of
"id.timestamp.body">` with the watch's secret), signed by the `standardwebhooks` package.
Any 2xx is an acknowledgement; anything else, a timeout or a refused target is a failed
attempt (its `retry_after` honoured when the receiver sends one). The request goes to the
checked address (safety.pin), with timeouts, an overall deadline, no redirects and at most
RESPONSE_CAP bytes read.

Apprise targets get a summary: title "technic watch NAME — SESSION: 3 entered, 1 left", then
one line per event (at most SUMMARY_LINES), sent through apprise in a worker thread with a
deadline, `confined` (no connection to a non-public address) and without redirects;
apprise's own log lines at WARNING and above become the error text. Error texts and the
log lines of httpx, urllib3 and apprise carry no target's path, query or token
(safety.redact_text, installed on import).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from technic_v4.watch.safety import (
    RESPONSE_CAP,
    UnsafeTargetError,
    check_apprise,
    confined,
    pin,
    redact_logs,
    redact_text,
)

SUMMARY_LINES = 50
ERROR_CHARS = 300
redact_logs()


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None


def webhook_body(event: dict[str, Any]) -> bytes:
    kind = event.get("kind", "test")
    return json.dumps({"type": f"watch.{kind}", "data": event}, sort_keys=True,
                      separators=(",", ":"), allow_nan=False).encode()


def sign(secret: str, msg_id: str, body: bytes, when: datetime | None = None
         ) -> dict[str, str]:
    """The three Standard Webhooks headers for `body`, signed with `secret`."""
    from standardwebhooks import Webhook

    when = when or datetime.now(UTC)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, when, body.decode())}


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


async def send_webhook(client: httpx.AsyncClient, url: str, secret: str, msg_id: str,
                       body: bytes, *, allow_private: bool, timeout_s: float) -> Outcome:
    """One signed POST to `url` (module docstring); never raises for the target's faults."""
    try:
        target = await asyncio.to_thread(pin, url, allow_private)
    except UnsafeTargetError as exc:
        return Outcome(False, None, f"refused: {exc}")
    headers = {"content-type": "application/json", "user-agent": "technic-watch/1",
               "host": target.host_header, **sign(secret, msg_id, body)}
    extensions = {"sni_hostname": target.sni} if target.sni else {}
    request = client.build_request("POST", target.url, content=body, headers=headers,
                                   extensions=extensions)
    try:
        return await asyncio.wait_for(_exchange(client, request), timeout_s * 1.5)
    except TimeoutError:
        return Outcome(False, None, f"no complete answer within {timeout_s * 1.5:g} s")
    except httpx.TimeoutException as exc:
        return Outcome(False, None, f"timeout: {type(exc).__name__}")
    except httpx.HTTPError as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {redact_text(str(exc))}"
                       [:ERROR_CHARS])


async def _exchange(client: httpx.AsyncClient, request: httpx.Request) -> Outcome:
    response = await client.send(request, stream=True, follow_redirects=False)
    try:
        seen = bytearray()
        async for chunk in response.aiter_bytes():
            seen += chunk[: RESPONSE_CAP - len(seen)]
            if len(seen) >= RESPONSE_CAP:
                break
    finally:
        await response.aclose()
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(True, status)
    if 300 <= status < 400:
        where = redact_text(response.headers.get("location", "")[:200])
        return Outcome(False, status, f"redirect to {where!r} not followed: point the watch "
                       "at the final URL")
    text = bytes(seen[:ERROR_CHARS]).decode("utf-8", "replace")
    return Outcome(False, status, f"HTTP {status}: {text}".strip(),
                   _retry_after(response.headers.get("retry-after")))


def webhook_client(timeout_s: float) -> httpx.AsyncClient:
    """The client every webhook goes through: no proxies from the environment (they would
    connect by name, bypassing the pinned address), no redirects, bounded waits."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)), trust_env=False,
        follow_redirects=False, limits=httpx.Limits(max_connections=32,
                                                    max_keepalive_connections=8))


def summary(watch: str, session: str, events: list[dict[str, Any]]) -> tuple[str, str]:
    """(title, body) of the one message an apprise target gets per watch and session (a
    `truncated` event's count is in the title's numbers and the "more" line)."""
    listed = [e for e in events if e["kind"] != "truncated"]
    left_out = [e for e in events if e["kind"] == "truncated"]
    counts = {k: sum(e["kind"] == k for e in listed) + sum(e.get("kinds", {}).get(k, 0)
                                                            for e in left_out)
              for k in ("entered", "left", "rank_moved", "regime_changed")}
    said = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items() if n)
    title = f"technic watch {watch} — {session}: {said or 'no change'}"
    lines = []
    for e in listed[:SUMMARY_LINES]:
        row = e.get("row") or {}
        if e["kind"] == "entered":
            lines.append(f"+ {e['symbol']} #{e['rank']}  close {_num(row.get('Close'))}  "
                         f"TechRating {_num(row.get('TechRating'))}  {row.get('Signal', '')}")
        elif e["kind"] == "left":
            lines.append(f"- {e['symbol']} (was #{e['previous_rank']})  close "
                         f"{_num(row.get('Close'))}" + ("" if row else "  no data"))
        elif e["kind"] == "regime_changed":
            lines.append(f"market regime {e.get('previous_regime')} -> {e.get('regime')}")
        else:
            lines.append(f"~ {e['symbol']} #{e['previous_rank']} -> #{e['rank']}")
    more = max(0, len(listed) - SUMMARY_LINES) + sum(e.get("count", 0) for e in left_out)
    if more:
        lines.append(f"… and {more} more")
    screen = events[0].get("screen", {}) if events else {}
    lines.append(f"screen {screen.get('name')} v{screen.get('version')} · data "
                 f"{events[0].get('data_version') if events else ''}")
    return title, "\n".join(lines)


def _num(value: Any) -> str:
    return f"{value:,.2f}" if isinstance(value, int | float) else "—"


async def send_apprise(url: str, title: str, body: str, *, allow_private: bool,
                       timeout_s: float) -> Outcome:
    """One apprise notification (module docstring); never raises for the target's faults."""
    try:
        await asyncio.to_thread(check_apprise, url, allow_private)
    except UnsafeTargetError as exc:
        return Outcome(False, None, f"refused: {exc}")
    try:
        ok, log = await asyncio.wait_for(
            asyncio.to_thread(_notify, url, title, body, allow_private), timeout_s * 3)
    except TimeoutError:
        return Outcome(False, None, f"apprise did not finish within {timeout_s * 3:g} s")
    return Outcome(True) if ok else Outcome(False, None, (log or "apprise reported a "
                                                          "failure")[:ERROR_CHARS])


def _notify(url: str, title: str, body: str, allow_private: bool) -> tuple[bool, str]:
    """One apprise message, in this thread, confined, no redirects; (ok, redacted log)."""
    import apprise

    asset = apprise.AppriseAsset(async_mode=False, http_redirects=False)
    sender = apprise.Apprise(asset=asset)
    if not sender.add(url):
        return False, "apprise does not understand this URL"
    for plugin in sender:
        plugin.redirects = False  # whatever the URL's `redirect=` says
    with confined(allow_private), \
            apprise.LogCapture(level=apprise.logging.WARNING) as captured:
        ok = bool(sender.notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT))
        return ok, _scrub(captured.getvalue(), url).strip().replace("\n", " | ")


def _scrub(text: str, url: str) -> str:
    """`text` without the URLs in it nor any longer piece of `url` (a token a plugin may
    print on its own)."""
    text = redact_text(text)
    for piece in sorted(set(re.split(r"[:/?&=@#]+", url.partition("://")[2])), key=len,
                        reverse=True):
        if len(piece) >= 6:
            text = text.replace(piece, "…")
    return text
