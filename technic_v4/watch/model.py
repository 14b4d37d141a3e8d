"""What a watch is, what an event is, and how each is named and shown.

A **watch** = a screen (a saved screen or preset by name, optionally pinned to a version, or
an inline definition) + delivery targets (webhook URLs, apprise URLs) + options
(`rank_moved` threshold, `initial`: announce the first set as `entered`, `regime_changed`:
an event when the market regime (technic_v4/regimes.py) differs from the previous
session's). Its `id` is random and fixed at creation, so a watch removed and added again
under the same name never shares event ids with the old one. Its webhook **secret**
(`whsec_` + base64 of 24 random bytes, the Standard Webhooks format) is made at creation and
shown once; listings show targets redacted (`display`: safety.display_url), since webhook
paths and apprise URLs carry tokens (in the host too, for services such as prowl or tgram).

An **event** id is deterministic: `evt_` + the first 24 hex digits of
sha256(watch id | session | symbol | kind), so evaluating the same session again produces the
same ids, which the outbox's unique constraint turns into no second event.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from technic_v4.errors import ConfigError
from technic_v4.watch.safety import display_url

if TYPE_CHECKING:
    from technic_v4.scan.config import ScanConfig

TargetKind = Literal["webhook", "apprise"]
EventKind = Literal["entered", "left", "rank_moved", "regime_changed"]
KINDS: tuple[EventKind, ...] = ("entered", "left", "rank_moved", "regime_changed")
MAX_TARGETS = 10
MAX_URL = 2000
INLINE = "(inline)"  # the screen name an inline definition's events carry


def check_watch_name(name: object) -> str:
    """`name` if it can name a watch (the screen-name rule), else ConfigError("name", ...)."""
    from technic_v4.scan.config import check_screen_name

    try:
        return check_screen_name(name)
    except ConfigError as exc:
        raise ConfigError("name", str(exc).replace("screen name", "watch name")) from None


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def new_watch_id() -> str:
    return "w_" + secrets.token_hex(8)


def event_id(watch_id: str, session: str, symbol: str, kind: str) -> str:
    digest = hashlib.sha256(f"{watch_id}|{session}|{symbol}|{kind}".encode()).hexdigest()
    return "evt_" + digest[:24]


@dataclass(frozen=True)
class Target:
    """One place a watch's events go. `id` is the store's row id (0 before saving)."""

    kind: TargetKind
    url: str = field(repr=False)
    id: int = 0

    @property
    def display(self) -> str:
        return display_url(self.url)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "url": self.display}


@dataclass(frozen=True)
class WatchSpec:
    """What a user asks for (validated by `check`); the store adds id, secret, created."""

    name: str
    screen: str | None = None
    screen_version: int | None = None
    definition: Mapping[str, Any] | None = None
    webhooks: Sequence[str] = ()
    apprise: Sequence[str] = ()
    rank_moved: int | None = None
    initial: bool = False
    regime_changed: bool = False

    def check(self) -> WatchSpec:
        """ConfigError naming the field for anything malformed; URLs are checked for their
        form here and for where they point by `safety.check_target` (it resolves DNS)."""
        from technic_v4.scan.config import check_screen_name

        check_watch_name(self.name)
        if (self.screen is None) == (self.definition is None):
            raise ConfigError("screen", "a watch needs exactly one of `screen` (a saved screen "
                              "or preset name) or `definition` (scan fields)")
        if self.screen is not None:
            check_screen_name(self.screen)
        if self.screen_version is not None and (self.screen is None or self.screen_version < 1):
            raise ConfigError("screen_version", "screen_version pins a saved screen's version "
                              "(>= 1) and needs `screen`")
        if self.definition is not None:
            from technic_v4.screens.saved import config_of

            cfg = config_of(self.definition)
            if cfg.as_of_date is not None:
                raise ConfigError("as_of_date", "a watch evaluates each new session: leave "
                                  "as_of_date out of its definition")
        if self.rank_moved is not None and not 1 <= self.rank_moved <= 100_000:
            raise ConfigError("rank_moved", "rank_moved is a number of ranks, 1-100000")
        if len(self.webhooks) + len(self.apprise) > MAX_TARGETS:
            raise ConfigError("webhooks", f"at most {MAX_TARGETS} targets per watch")
        for kind, urls in (("webhooks", self.webhooks), ("apprise", self.apprise)):
            for url in urls:
                if not isinstance(url, str) or not url or len(url) > MAX_URL:
                    raise ConfigError(kind, f"{kind} entries are URLs of 1-{MAX_URL} characters")
        return self

    def targets(self) -> list[Target]:
        return ([Target("webhook", u) for u in self.webhooks]
                + [Target("apprise", u) for u in self.apprise])

    def options(self) -> dict[str, Any]:
        """The stored part besides targets (JSON data)."""
        return {"screen": self.screen, "screen_version": self.screen_version,
                "definition": dict(self.definition) if self.definition is not None else None,
                "rank_moved": self.rank_moved, "initial": self.initial,
                "regime_changed": self.regime_changed}


@dataclass(frozen=True)
class Watch:
    """A stored watch. `secret` is read by the deliverer only; `public()` never shows it.
    `owner`: the fingerprint of the API key that created it ("" = the open namespace)."""

    id: str
    name: str
    options: Mapping[str, Any]
    targets: tuple[Target, ...]
    created: str
    secret: str = field(repr=False)
    owner: str = ""

    @property
    def screen(self) -> str | None:
        return self.options.get("screen")

    @property
    def rank_moved(self) -> int | None:
        return self.options.get("rank_moved")

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "id": self.id, "created": self.created,
                **{k: v for k, v in self.options.items()},
                "targets": [t.public() for t in self.targets]}

    def config(self, screens: Any) -> tuple[ScanConfig, dict[str, Any]]:
        """The ScanConfig to evaluate and the screen's ref {name, version, preset}:
        a named screen resolved through `screens` (ScreenStore; pinned version or latest)
        in the watch owner's namespace, an inline definition as INLINE version 1."""
        from technic_v4.screens.saved import config_of

        opts = self.options
        if opts.get("definition") is not None:
            return config_of(opts["definition"]), {"name": INLINE, "version": 1,
                                                   "preset": False}
        from technic_v4.tenancy import Scope

        saved = screens.scoped(Scope(self.owner)).get(opts["screen"], opts.get("screen_version"))
        return config_of(saved.definition), saved.ref()
