"""Index universes that ship: the constituents of S&P 500, Nasdaq 100, Dow, FTSE 100, DAX, ...
from the `pytickersymbols` package (its data is in the wheel: no network), with GICS sectors.

`index_universe(["sp500", "nasdaq100"])` is one row per store symbol in any of the lists:
    Symbol       the store's symbol: US tickers as the exchange writes them (BRK.B), others
                 with their Yahoo venue suffix (SAP.DE, VOD.L, 7203.T)
    Name         the company name the package gives
    Sector       one of the 11 GICS sectors (sector_map.py decides from the package's words,
                 over every entry of the symbol in every list), or Unknown
    Industry     the package's most frequent industry word for that sector, or Unknown
    Indexes      every supported list the symbol is in (not only the requested ones), as ids
                 joined by "," in INDEXES order: "sp500,sp100,nasdaq100,dow"
    YahooSymbol  the symbol Yahoo Finance serves its bars under (BRK-B, SAP.DE)
    Calendar     the exchange calendar of the symbol's venue (XNYS, XETR, XLON, ...)

Not shipped, though the package has them: EURO STOXX 50 (members on seven venues; a store is
on one calendar), CAC Mid 60 and SDAX (a third of their entries carry no venue symbol).
`membership_source()` says which package version the memberships come from. From the table:
`universe_file` (+ IndexesSource: what `technic data universe --out` writes, ingest reads),
`merge_universe` (a user's own universe file merged in), `store_universe` (the store's
universe columns and manifest meta, for a store written straight from a list).
"""

from __future__ import annotations

import importlib.metadata
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pandas as pd

from technic_v4.data.sector_map import SYMBOL_SECTORS, gics_sector, normal_word, word_sector
from technic_v4.data.universe import GICS_SECTORS, SYMBOL_PATTERN, UNKNOWN
from technic_v4.errors import ConfigError

PACKAGE = "pytickersymbols"
COLUMNS = ("Symbol", "Name", "Sector", "Industry", "Indexes", "YahooSymbol", "Calendar")
SOURCE_COLUMN = "IndexesSource"  # in a universe file: where its row's Indexes come from
META_KEY = "memberships"  # store manifest meta: where the universe's memberships came from
# A membership id in a store (the shipped ids, or your own list names in a universe file)
MEMBERSHIP_ID = re.compile(r"^[a-z0-9][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class IndexInfo:
    """A supported list: its id, display name, exchange calendar and the package's key."""

    id: str
    name: str
    calendar: str
    package_key: str
    suffix: str  # Yahoo venue suffix of its members ("" on US exchanges)


INDEXES: dict[str, IndexInfo] = {i.id: i for i in (
    IndexInfo("sp500", "S&P 500", "XNYS", "S&P 500", ""),
    IndexInfo("sp100", "S&P 100", "XNYS", "S&P 100", ""),
    IndexInfo("sp600", "S&P SmallCap 600", "XNYS", "S&P 600", ""),
    IndexInfo("nasdaq100", "Nasdaq-100", "XNYS", "NASDAQ 100", ""),
    IndexInfo("dow", "Dow Jones Industrial Average", "XNYS", "DOW JONES", ""),
    IndexInfo("ftse100", "FTSE 100", "XLON", "FTSE 100", ".L"),
    IndexInfo("dax", "DAX", "XETR", "DAX", ".DE"),
    IndexInfo("mdax", "MDAX", "XETR", "MDAX", ".DE"),
    IndexInfo("tecdax", "TecDAX", "XETR", "TecDAX", ".DE"),
    IndexInfo("cac40", "CAC 40", "XPAR", "CAC_40", ".PA"),
    IndexInfo("aex", "AEX", "XAMS", "AEX", ".AS"),
    IndexInfo("bel20", "BEL 20", "XBRU", "BEL 20", ".BR"),
    IndexInfo("ibex35", "IBEX 35", "XMAD", "IBEX 35", ".MC"),
    IndexInfo("omxh25", "OMX Helsinki 25", "XHEL", "OMX Helsinki 25", ".HE"),
    IndexInfo("omxs30", "OMX Stockholm 30", "XSTO", "OMX Stockholm 30", ".ST"),
    IndexInfo("smi", "Swiss Market Index (SMI)", "XSWX", "Switzerland 20", ".SW"),
    IndexInfo("nikkei225", "Nikkei 225", "XTKS", "NIKKEI 225", ".T"),
)}

# Yahoo venue suffix -> exchange calendar (a member listed on another venue than its index's,
# like ArcelorMittal's MT.AS in the CAC 40, keeps its own venue's calendar)
SUFFIX_CALENDAR = {"": "XNYS", ".L": "XLON", ".DE": "XETR", ".PA": "XPAR", ".AS": "XAMS",
                   ".BR": "XBRU", ".MC": "XMAD", ".MI": "XMIL", ".HE": "XHEL", ".ST": "XSTO",
                   ".SW": "XSWX", ".T": "XTKS"}


class UnknownIndexError(ConfigError):
    """An index name that is not one of INDEXES."""

    def __init__(self, message: str):
        super().__init__("indexes", message, list(INDEXES))


def index_id(name: str) -> str:
    """The id of a supported list (case and surrounding space ignored), or UnknownIndexError
    naming the known ones."""
    key = str(name).strip().lower()
    if key in INDEXES:
        return key
    raise UnknownIndexError(f"unknown index {str(name)[:40]!r}; known indexes: "
                            f"{', '.join(INDEXES)}")


def index_universe(names: Sequence[str]) -> pd.DataFrame:
    """The union of the named lists, one row per symbol, columns COLUMNS (module docstring),
    sorted by Symbol. An unknown name is UnknownIndexError; no name is a ConfigError."""
    if isinstance(names, str):
        names = [names]
    ids = list(dict.fromkeys(index_id(n) for n in names))
    if not ids:
        raise ConfigError("indexes", "name at least one index", list(INDEXES))
    table = _all_members()
    keep = table["Indexes"].map(lambda s: any(i in s.split(",") for i in ids))
    return table[keep].reset_index(drop=True)


def membership_source() -> dict[str, Any]:
    """Where the memberships come from: the package, its version, and the date of its lists
    (None: the package records none, and its wheel's file dates are fixed at 2016-01-01)."""
    return {"package": PACKAGE, "version": importlib.metadata.version(PACKAGE),
            "lists_date": None, "url": "https://pypi.org/project/pytickersymbols/"}


def universe_file(table: pd.DataFrame) -> pd.DataFrame:
    """`table` (COLUMNS) as a universe file ingest reads: COLUMNS then SOURCE_COLUMN, which
    says where each row's Indexes come from (the package for the shipped lists)."""
    out = table.loc[:, list(COLUMNS)].copy()
    if SOURCE_COLUMN in table:
        out[SOURCE_COLUMN] = table[SOURCE_COLUMN].fillna("")
    else:
        out[SOURCE_COLUMN] = describe_source(membership_source())
    out.loc[out["Indexes"] == "", SOURCE_COLUMN] = ""
    return out


def store_universe(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """`table` (index_universe's or merge_universe's) as a store's universe (symbol, name,
    sector, industry, indexes) and the manifest meta naming where the memberships came from
    ({META_KEY: [...]}), for a store written straight from a list (`data init`)."""
    uni = pd.DataFrame({"symbol": table["Symbol"], "name": table["Name"],
                        "sector": table["Sector"], "industry": table["Industry"],
                        "indexes": table["Indexes"].fillna("")}).reset_index(drop=True)
    sources = universe_file(table)[SOURCE_COLUMN]
    return uni, {META_KEY: sorted(set(sources[sources != ""]))}


def merge_universe(table: pd.DataFrame, own: pd.DataFrame, name: str) -> pd.DataFrame:
    """`table` (index_universe's) with a user's universe file `own` (symbol, sector[, name,
    industry, indexes]: ingest's reading of it) merged in: their symbols added, their name,
    sector and industry taking precedence where given, their index ids joined to the
    memberships. ConfigError naming the row for an invalid symbol, sector or index id."""
    from technic_v4.data.universe import UnknownSectorError, normalize_sector, validate_symbol

    rows = {r["Symbol"]: r for r in universe_file(table).to_dict("records")}
    for d in own.to_dict("records"):
        try:
            sym = validate_symbol(d["symbol"])
            sector = normalize_sector(d["sector"]) if d["sector"] not in ("", UNKNOWN) else ""
        except (ConfigError, UnknownSectorError) as exc:
            raise ConfigError("add", f"{name}: {exc}") from None
        ids, bad = parse_memberships(d.get("indexes", ""))
        if bad:
            raise ConfigError("add", f"{name}: {sym}: {bad} are not index ids (lower-case "
                              "letters, digits and '_', like sp500 or my_list)")
        if sym not in rows:
            suffix = "." + sym.rpartition(".")[2] if "." in sym else ""
            cal = SUFFIX_CALENDAR.get(suffix, "XNYS")
            rows[sym] = {"Symbol": sym, "Name": sym, "Sector": UNKNOWN, "Industry": UNKNOWN,
                         "Indexes": "", "YahooSymbol": sym.replace(".", "-") if cal == "XNYS"
                         else sym, "Calendar": cal, SOURCE_COLUMN: ""}
        row = rows[sym]
        for col, value in (("Name", d.get("name", "")), ("Sector", sector),
                           ("Industry", d.get("industry", ""))):
            if value:
                row[col] = value
        if ids:
            old = [i for i in row["Indexes"].split(",") if i]
            row["Indexes"] = ",".join(dict.fromkeys([*old, *ids.split(",")]))
            row[SOURCE_COLUMN] = "; ".join(s for s in dict.fromkeys(
                [row[SOURCE_COLUMN], f"universe file {name}"]) if s)
    out = pd.DataFrame([rows[s] for s in sorted(rows)], columns=[*COLUMNS, SOURCE_COLUMN])
    return out.reset_index(drop=True)


def describe_source(source: dict[str, Any]) -> str:
    """One line for `data info`: "pytickersymbols 1.17.10 (lists undated)"."""
    when = source.get("lists_date")
    return (f"{source.get('package')} {source.get('version')} "
            f"({'lists of ' + str(when) if when else 'lists undated'})")


def parse_memberships(text: object) -> tuple[str, list[str]]:
    """A universe file's Indexes cell as the store keeps it (ids lower-cased, split on ',',
    ';' or spaces, each once, joined by ","), and the tokens that are not ids (dropped)."""
    if text is None or (isinstance(text, float) and text != text):
        return "", []
    tokens = [t for t in re.split(r"[,;\s]+", str(text).strip().lower()) if t]
    good = [t for t in dict.fromkeys(tokens) if MEMBERSHIP_ID.fullmatch(t)]
    return ",".join(good), [t for t in tokens if not MEMBERSHIP_ID.fullmatch(t)]


# ---------------------------------------------------------------------------- the package


def _store_symbol(company: dict[str, Any], info: IndexInfo) -> str | None:
    """The store symbol of one package entry on its index's venue (None: it has none).

    US entries: the package's ticker (BRK.B). Others: the package's Yahoo ticker when it has
    a known venue suffix (SAP.DE, MT.AS), else its first part with the index's suffix
    (the package's 'AIR.PA.DE' in the DAX is Xetra's AIR.DE)."""
    raw = str(company.get("symbol") or "").strip().upper()
    if not raw:
        return None
    if info.suffix:
        base, _, suffix = raw.partition(".")
        if not suffix:
            return None
        sym = raw if "." + suffix in SUFFIX_CALENDAR else base + info.suffix
    else:
        sym = raw
    return sym if SYMBOL_PATTERN.fullmatch(sym) else None


def _venue(symbol: str, info: IndexInfo) -> tuple[str, str]:
    """(Yahoo symbol, calendar) of a store symbol found in list `info`: US share classes with
    '-' on Yahoo (BRK-B); a suffixed symbol is Yahoo's own, on its suffix's venue."""
    if not info.suffix:
        return symbol.replace(".", "-"), "XNYS"
    return symbol, SUFFIX_CALENDAR["." + symbol.rpartition(".")[2]]


def _industry(words: list[str], sector: str) -> str:
    """The most frequent word voting for `sector` that is not a sector name itself (ties: the
    shorter, then alphabetical), or Unknown."""
    sector_words = {normal_word(s) for s in GICS_SECTORS} | {
        "technology", "healthcare", "consumer cyclicals", "consumer non-cyclicals",
        "basic materials", "consumer defensive", "financial services", "information technology"}
    counts = Counter(w.strip() for w in words
                     if normal_word(w) not in sector_words and word_sector(w) == sector)
    if not counts:
        return UNKNOWN
    return min(counts, key=lambda w: (-counts[w], len(w), w))


@lru_cache(maxsize=1)
def _all_members() -> pd.DataFrame:
    """Every supported list's members, one row per store symbol, built once per process."""
    from pytickersymbols.indices_data import INDICES  # the package's data (imports in ~0.2 s)

    names: dict[str, str] = {}
    venue: dict[str, tuple[str, str]] = {}
    words: dict[str, list[str]] = defaultdict(list)
    member: dict[str, list[str]] = defaultdict(list)
    for info in INDEXES.values():
        for company in INDICES[info.package_key]["companies"]:
            sym = _store_symbol(company, info)
            if sym is None:
                continue
            names.setdefault(sym, str(company.get("name") or sym).strip())
            venue.setdefault(sym, _venue(sym, info))
            words[sym].extend(str(w) for w in company.get("industries") or [])
            if info.id not in member[sym]:
                member[sym].append(info.id)
    # the lists not shipped still describe companies that are in shipped ones (ENR.DE)
    shipped = {i.package_key for i in INDEXES.values()}
    for key, data in INDICES.items():
        for company in data["companies"] if key not in shipped else ():
            sym = str(company.get("symbol") or "").strip().upper()
            if sym in names:
                words[sym].extend(str(w) for w in company.get("industries") or [])
    rows = []
    for sym in sorted(names):
        sector = SYMBOL_SECTORS.get(sym) or gics_sector(words[sym])
        rows.append((sym, names[sym], sector, _industry(words[sym], sector),
                     ",".join(member[sym]), *venue[sym]))
    return pd.DataFrame(rows, columns=list(COLUMNS))
