"""The universe vocabulary: GICS sectors, their common aliases, and what a valid symbol is.

Every sector name a user types goes through `normalize_sector`; an unknown one is an error that
lists the valid names, never an empty result. Every symbol a user types goes through
`validate_symbol`, so nothing like `../etc` or an encoded slash ever reaches a path or a query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from technic_v4.errors import ConfigError

GICS_SECTORS = (
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Information Technology",
    "Materials",
    "Real Estate",
    "Utilities",
)

SECTOR_ALIASES = {
    "technology": "Information Technology",
    "tech": "Information Technology",
    "it": "Information Technology",
    "healthcare": "Health Care",
    "financial services": "Financials",
    "financial": "Financials",
    "consumer cyclical": "Consumer Discretionary",
    "consumer defensive": "Consumer Staples",
    "basic materials": "Materials",
    "communications": "Communication Services",
    "telecommunication services": "Communication Services",
}

UNKNOWN = "Unknown"

_CANON = {s.lower(): s for s in GICS_SECTORS} | SECTOR_ALIASES
# 1-10 chars: letters first, then letters/digits, with at most one class suffix (BRK.B, BF-B).
SYMBOL_PATTERN = re.compile(r"^[A-Z][A-Z0-9]{0,9}(?:[.\-][A-Z0-9]{1,3})?$")


SECTOR_NAMES = [*GICS_SECTORS, *sorted(SECTOR_ALIASES)]  # what a sector filter accepts


class UnknownSectorError(ConfigError):
    """A sector filter names no GICS sector or alias."""

    def __init__(self, message: str):
        super().__init__("sectors", message, SECTOR_NAMES)


class InvalidSymbolError(ConfigError):
    """A symbol is not of the accepted shape (see SYMBOL_PATTERN)."""

    def __init__(self, message: str):
        super().__init__("symbols", message)


def normalize_sector(name: str) -> str:
    """The canonical GICS name for a sector or alias, case-insensitive."""
    key = " ".join(str(name).split()).lower()
    if key in _CANON:
        return _CANON[key]
    raise UnknownSectorError(
        f"unknown sector {name!r}; valid sectors: {', '.join(GICS_SECTORS)} (aliases, any "
        f"case: {alias_list()})"
    )


def alias_list() -> str:
    """Every accepted alias with the sector it stands for, for messages and --help."""
    return ", ".join(f"{a} = {s}" for a, s in sorted(SECTOR_ALIASES.items()))


def normalize_sectors(names: Iterable[str]) -> list[str]:
    return sorted({normalize_sector(n) for n in names})


def validate_symbol(symbol: str) -> str:
    """The upper-cased symbol, or InvalidSymbolError naming what is wrong with it."""
    if not isinstance(symbol, str):
        raise InvalidSymbolError(f"symbol must be a string, got {type(symbol).__name__}")
    sym = symbol.strip().upper()
    if not SYMBOL_PATTERN.fullmatch(sym):
        raise InvalidSymbolError(
            f"invalid symbol {symbol!r}: expected 1-10 letters/digits starting with a letter, "
            "optionally a class suffix like BRK.B or BF-B"
        )
    return sym
