"""Whose saved screens, watches and watch events a caller sees: a `Scope`.

With API keys configured, each saved screen and watch belongs to the key that created it. Its
**owner** is the key's fingerprint, `sha256:<hex>` of the key (the entry
TECHNIC_API_KEY_HASHES takes; never the key itself). Rules, applied by the stores
(technic_v4/screens/saved.py, technic_v4/watch/store.py) so every caller obeys them alike:

  - a caller lists, reads, changes and deletes only its own; another owner's screen or watch
    is *unknown* (404 over HTTP, the same answer as a name nobody uses: its existence is not
    revealed), and an error's list of valid names holds only the caller's own (and presets);
  - names are unique per owner: two keys may each have a screen or a watch called `momentum`;
  - a watch's events are its owner's: the event stream and `events_after` show a caller only
    the events of its own watches; a watch's screen resolves in its owner's namespace;
  - presets are everyone's and read-only;
  - an admin scope (TECHNIC_ADMIN_KEYS) sees every owner's: listings show all, each with its
    owner; a name is looked up in the admin's own namespace first, then among all owners
    (several → `AmbiguousNameError`: name the owner, `?owner=` over HTTP); what an admin
    creates is its own;
  - open mode (an API without keys) and the CLI: `OPEN`, the open namespace (owner "") with
    an admin's view — without keys there is no access control, so what keys made while keys
    were on stays visible and removable rather than hidden yet still delivering. Rows saved
    before owners existed are in the open namespace: with keys turned on, only admins see them.
  - a screen name in a scan, a validation or a watch resolves in the caller's (the watch
    owner's) own namespace, and the presets: `own()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from technic_v4.errors import ConfigError

Row = TypeVar("Row", bound=Sequence[Any])


@dataclass(frozen=True)
class Scope:
    """A caller's namespace (`owner`, "" = open) and whether it sees every owner's."""

    owner: str = ""
    admin: bool = False

    def where(self, column: str = "owner") -> tuple[str, tuple[Any, ...]]:
        """An SQL condition (and its parameters) true for the rows this scope sees."""
        return f"(? OR {column} = ?)", (int(self.admin), self.owner)

    def own(self) -> Scope:
        """The owner's namespace alone (what a watch's screen resolves in)."""
        return Scope(self.owner)


OPEN = Scope("", admin=True)  # no keys, the CLI, the watcher's own view (module docstring)


class AmbiguousNameError(ConfigError):
    """An admin named something several owners have; `valid`: those owners."""

    location = "query"  # where the HTTP answer says the missing part goes (?owner=)

    def __init__(self, noun: str, name: str, owners: Sequence[str]):
        super().__init__("owner", f"{len(owners)} owners have a {noun} named {name!r}: name "
                         "one with `owner` (?owner=)", list(owners))


def pick(rows: Sequence[Row], scope: Scope, noun: str, name: str) -> Row | None:
    """Which of `rows` (all named `name`, visible to `scope`, the owner first in each) the
    scope means: its own, else the only one; None when there is none."""
    if not rows:
        return None
    own = [r for r in rows if r[0] == scope.owner]
    if own or len(rows) == 1:
        return (own or rows)[0]
    raise AmbiguousNameError(noun, name, sorted(str(r[0]) for r in rows))
