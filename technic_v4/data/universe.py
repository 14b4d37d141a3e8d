"""The universe vocabulary: GICS sectors, their common aliases, and what a valid symbol is.

Every sector name a user types goes through `normalize_sector`; an unknown one is an error that
lists the valid names, never an empty result. Every symbol a user types goes through
`validate_symbol` (every symbol a file brings, through `valid_symbols`), so nothing like
`../etc` or an encoded slash ever reaches a path or a query.

What a symbol is (SYMBOL_PATTERN, the one definition; the HTTP schema derives its pattern from
it): 1-10 ASCII letters or digits, leading digits allowed (2GO, 7203, 0700), then at most two
suffixes of 1-4 letters or digits, each after one '.' or '-': share classes and exchange
suffixes as real venues and vendors write them (BRK.B, BF-B, RDS-A, 7203.T, 0700.HK, VOD.L,
SHOP.TO, ASML.AS, BRK-B.L). Lower case is upper-cased. Refused: anything else, in particular
'/', '\\', '..', '%', whitespace or control characters anywhere, a leading or trailing
separator, more than 20 characters, and non-ASCII input (a Cyrillic 'А' or a dotless 'ı' that
upper-cases to 'I' is not a lookalike of a ticker, it is refused).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

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
# 1-10 letters/digits, then up to two '.'/'-' suffixes of 1-4 (module docstring).
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9]{1,10}(?:[.\-][A-Z0-9]{1,4}){0,2}$")
SYMBOL_SHAPE = ("1-10 letters/digits, optionally with up to two suffixes after '.' or '-' "
                "(BRK.B, BF-B, 2GO, 7203.T, 0700.HK, SHOP.TO)")


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
    sym = symbol.strip()
    if not sym.isascii() or not SYMBOL_PATTERN.fullmatch(sym := sym.upper()):
        raise InvalidSymbolError(f"invalid symbol {symbol[:40]!r}: expected {SYMBOL_SHAPE}")
    return sym


def valid_symbols(symbols: pd.Index) -> np.ndarray:
    """Which of `symbols` (text, already stripped) are valid once upper-cased: the check of
    `validate_symbol`, vectorized, for files (ingest, universe files)."""
    text = pd.Index(symbols, dtype=object).astype(str)
    ascii_ = np.fromiter((s.isascii() for s in text), dtype=bool, count=len(text))
    shaped = np.asarray(text.str.upper().str.fullmatch(SYMBOL_PATTERN.pattern), dtype=bool)
    return ascii_ & shaped
