"""The demo market's universe: GICS sectors and industries, their risk levels, names and tickers.

`SECTORS` is the one table of what differs between sectors in the synthetic market: how many
names a sector has (`weight`, close to the count shares of US-listed common stock), how much it
moves with the market (`beta`), how loud its own factor is (`factor_vol`, daily) and, per GICS
industry, the idiosyncratic volatility (`idio_vol`, annualised) and the words its company names
are built from. Utilities are calm; Energy, Biotechnology and Metals & Mining are wild.

`build_universe` draws sectors (exact proportions, then shuffled), industries, company names
("Northwind Semiconductor Corp") and tickers derived from the names the way real ones are
(NWSC, NORT, NSEM, ...), unique and of 1-5 capital letters; a handful get a class suffix (".B").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Industry:
    name: str
    weight: float
    idio_vol: float  # annualised idiosyncratic volatility of a typical member
    words: tuple[str, ...]  # what its company names are made of


@dataclass(frozen=True)
class Sector:
    name: str
    weight: float  # share of listed names
    beta: float  # typical market beta
    factor_vol: float  # daily volatility of the sector factor
    industries: tuple[Industry, ...]


def _ind(name: str, weight: float, vol: float, words: str) -> Industry:
    return Industry(name, weight, vol, tuple(words.split(",")))


SECTORS: tuple[Sector, ...] = (
    Sector("Communication Services", 0.04, 1.00, 0.007, (
        _ind("Diversified Telecommunication Services", 2, 0.26, "Telecom,Communications,Networks"),
        _ind("Wireless Telecommunication Services", 1, 0.30, "Wireless,Mobile,Cellular"),
        _ind("Media", 3, 0.38, "Media,Broadcasting,Publishing"),
        _ind("Entertainment", 2, 0.42, "Entertainment,Studios,Pictures,Games"),
        _ind("Interactive Media & Services", 2, 0.48, "Interactive,Digital,Social"),
    )),
    Sector("Consumer Discretionary", 0.11, 1.15, 0.007, (
        _ind("Automobile Components", 2, 0.40, "Automotive,Components,Drivetrain"),
        _ind("Automobiles", 1, 0.55, "Motors,Automotive,Electric Vehicles"),
        _ind("Household Durables", 2, 0.36, "Homes,Furnishings,Appliances"),
        _ind("Textiles, Apparel & Luxury Goods", 2, 0.38, "Apparel,Brands,Footwear"),
        _ind("Hotels, Restaurants & Leisure", 4, 0.36, "Restaurants,Hospitality,Resorts,Leisure"),
        _ind("Specialty Retail", 4, 0.40, "Stores,Retail,Outfitters"),
        _ind("Broadline Retail", 1, 0.45, "Commerce,Marketplace,Direct"),
        _ind("Diversified Consumer Services", 1, 0.40, "Education,Services,Learning"),
    )),
    Sector("Consumer Staples", 0.05, 0.60, 0.005, (
        _ind("Beverages", 2, 0.24, "Beverage,Brewing,Bottling"),
        _ind("Food Products", 4, 0.26, "Foods,Farms,Provisions"),
        _ind("Household Products", 1, 0.22, "Household,Home Products"),
        _ind("Personal Care Products", 2, 0.32, "Personal Care,Beauty,Cosmetics"),
        _ind("Tobacco", 1, 0.24, "Tobacco,Leaf"),
        _ind("Consumer Staples Distribution & Retail", 2, 0.28, "Markets,Grocers,Wholesale"),
    )),
    Sector("Energy", 0.05, 1.10, 0.013, (
        _ind("Oil & Gas Exploration & Production", 4, 0.50, "Petroleum,Resources,Energy,Oil"),
        _ind("Oil & Gas Equipment & Services", 3, 0.52, "Drilling,Oilfield Services,Energy"),
        _ind("Oil & Gas Refining & Marketing", 1, 0.40, "Refining,Fuels"),
        _ind("Oil & Gas Storage & Transportation", 2, 0.32, "Midstream,Pipeline,Partners"),
        _ind("Integrated Oil & Gas", 1, 0.30, "Energy,Petroleum"),
        _ind("Coal & Consumable Fuels", 1, 0.58, "Coal,Uranium,Fuels"),
    )),
    Sector("Financials", 0.16, 1.05, 0.008, (
        _ind("Banks", 8, 0.28, "Bancorp,Bancshares,Financial,Bank"),
        _ind("Capital Markets", 3, 0.32, "Capital,Asset Management,Securities,Partners"),
        _ind("Insurance", 3, 0.26, "Insurance,Assurance,Indemnity"),
        _ind("Consumer Finance", 1, 0.42, "Credit,Lending,Finance"),
        _ind("Financial Services", 2, 0.36, "Payments,Financial,Fintech"),
        _ind("Mortgage Real Estate Investment Trusts (REITs)", 1, 0.30, "Mortgage,Capital"),
    )),
    Sector("Health Care", 0.17, 0.90, 0.008, (
        _ind("Biotechnology", 9, 0.75, "Therapeutics,Biosciences,Bio,Genomics,Biopharma"),
        _ind("Pharmaceuticals", 2, 0.45, "Pharmaceuticals,Pharma,Laboratories"),
        _ind("Health Care Equipment & Supplies", 3, 0.42, "Medical,Surgical,Diagnostics,Devices"),
        _ind("Health Care Providers & Services", 2, 0.34, "Health,Care,Clinics,Healthcare"),
        _ind("Life Sciences Tools & Services", 1, 0.38, "Scientific,Instruments,Analytics"),
        _ind("Health Care Technology", 1, 0.52, "Health Systems,Medical Informatics"),
    )),
    Sector("Industrials", 0.14, 1.10, 0.007, (
        _ind("Aerospace & Defense", 2, 0.34, "Aerospace,Defense,Aviation"),
        _ind("Machinery", 3, 0.32, "Machinery,Industries,Equipment,Tools"),
        _ind("Building Products", 1, 0.32, "Building Products,Windows,Doors"),
        _ind("Electrical Equipment", 2, 0.42, "Electric,Power Systems,Controls"),
        _ind("Construction & Engineering", 1, 0.34, "Construction,Engineering,Builders"),
        _ind("Commercial Services & Supplies", 2, 0.30, "Services,Environmental,Facilities"),
        _ind("Professional Services", 2, 0.30, "Consulting,Staffing,Solutions"),
        _ind("Ground Transportation", 1, 0.32, "Freight,Logistics,Trucking,Rail"),
    )),
    Sector("Information Technology", 0.13, 1.25, 0.009, (
        _ind("Software", 5, 0.46, "Software,Systems,Cloud,Technologies,Data"),
        _ind("Semiconductors & Semiconductor Equipment", 3, 0.50, "Semiconductor,Micro,Silicon"),
        _ind("IT Services", 2, 0.34, "Technologies,Digital,Solutions"),
        _ind("Communications Equipment", 1, 0.40, "Networks,Communications,Optical"),
        _ind("Technology Hardware, Storage & Peripherals", 1, 0.40, "Computing,Storage,Devices"),
        _ind("Electronic Equipment, Instruments & Components", 2, 0.36, "Electronics,Sensors"),
    )),
    Sector("Materials", 0.05, 1.05, 0.009, (
        _ind("Chemicals", 4, 0.32, "Chemical,Materials,Specialty Chemicals"),
        _ind("Metals & Mining", 3, 0.58, "Mining,Metals,Gold,Minerals,Steel"),
        _ind("Construction Materials", 1, 0.30, "Aggregates,Cement,Materials"),
        _ind("Containers & Packaging", 1, 0.26, "Packaging,Containers"),
        _ind("Paper & Forest Products", 1, 0.36, "Timber,Paper,Forest Products"),
    )),
    Sector("Real Estate", 0.07, 0.85, 0.008, (
        _ind("Residential REITs", 2, 0.24, "Residential,Apartments,Communities"),
        _ind("Retail REITs", 2, 0.28, "Retail Properties,Shopping Centers,Realty"),
        _ind("Office REITs", 1, 0.32, "Office Properties,Realty"),
        _ind("Industrial REITs", 1, 0.24, "Industrial Realty,Logistics Properties"),
        _ind("Health Care REITs", 1, 0.26, "Healthcare Properties,Senior Living"),
        _ind("Specialized REITs", 2, 0.26, "Storage,Towers,Data Centers"),
        _ind("Real Estate Management & Development", 2, 0.38, "Realty,Properties,Land"),
    )),
    Sector("Utilities", 0.03, 0.50, 0.005, (
        _ind("Electric Utilities", 3, 0.17, "Electric,Power,Light"),
        _ind("Gas Utilities", 1, 0.18, "Gas,Natural Gas"),
        _ind("Multi-Utilities", 2, 0.16, "Energy,Utilities"),
        _ind("Water Utilities", 1, 0.18, "Water"),
        _ind("Independent Power and Renewable Electricity Producers", 1, 0.40, "Renewables,Solar"),
    )),
)

_PREFIXES = (
    "Northwind Summit Cascade Pinnacle Harbor Redwood Granite Meridian Atlas Beacon Crestview "
    "Evergreen Frontier Ironwood Keystone Lakeshore Liberty Magnolia Neptune Orion Pioneer "
    "Riverside Sagebrush Sterling Tidewater Bluestone Cobalt Driftwood Elmhurst Foxglove Glacier "
    "Highland Juniper Kestrel Lodestar Marlin Northgate Oakridge Palisade Quarry Ridgeline "
    "Sandpiper Timberline Umbra Valence Westbrook Yellowtail Zenith Alder Bramble Cedar Dover "
    "Everett Falcon Greystone Hawthorne Ivory Jasper Kingfisher Larkspur Mosaic Nimbus Osprey "
    "Paragon Quill Rainier Saratoga Thornbury Unity Vireo Wexford Arbor Brightwater Clearwater "
    "Delmar Eastfield Fairhaven Goldcrest Halcyon Ironbridge Kinsley Lumen Mariner Norcross "
    "Oxbow Prairie Redstone Silverline Tamarack Upland Vantage Willowbrook Aspen Bayside "
    "Coronado Dunmore Emberly Fenwick Gilded Hollis Inland Kenmore Linden Monarch Newport "
    "Oakmont Peregrine Quest Rockport Seaview Tallgrass Vesper Whitfield Acorn Birchwood Copper "
    "Durango Echo Ferris Garnet Heron Ingram Larch Madrona Nova Orchard Pembrook Ranger Solstice"
).split()
_GEO = ("North American", "Pacific", "Atlantic", "Continental", "United", "First", "National",
        "Western", "Southern", "Global", "American", "Great Lakes", "Mid-Atlantic", "Coastal")
_SUFFIXES = ("Inc", "Corp", "Holdings", "Group", "Co", "Ltd", "Inc", "Corp")
CLASS_SUFFIX_SHARE = 1 / 1500  # BRK.B-style class shares: a handful per universe
_LETTERS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))


def build_universe(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """`n` listed companies, sorted by symbol: symbol, name, sector, industry (+ table indices)."""
    weights = np.array([s.weight for s in SECTORS])
    counts = _largest_remainder(weights / weights.sum(), n)
    sector_idx = rng.permutation(np.repeat(np.arange(len(SECTORS)), counts))
    industry_idx = np.empty(n, dtype=np.int64)
    for k, sector in enumerate(SECTORS):
        rows = np.flatnonzero(sector_idx == k)
        w = np.array([i.weight for i in sector.industries], dtype=float)
        industry_idx[rows] = rng.choice(len(w), size=len(rows), p=w / w.sum())

    prefix = rng.integers(0, len(_PREFIXES), n)
    word_u, suffix_u, geo_u = rng.random(n), rng.integers(0, len(_SUFFIXES), n), rng.random(n)
    length = rng.choice([1, 2, 3, 4, 5], size=n, p=[0.002, 0.02, 0.30, 0.61, 0.068])
    fallback = rng.integers(0, 26, (n, 8))
    names, symbols = [], []
    used_names: set[str] = set()
    used_syms: set[str] = set()
    for i in range(n):
        ind = SECTORS[sector_idx[i]].industries[industry_idx[i]]
        core = ind.words[int(word_u[i] * len(ind.words))]
        name = f"{_PREFIXES[prefix[i]]} {core} {_SUFFIXES[suffix_u[i]]}"
        if name in used_names:
            name = f"{_GEO[int(geo_u[i] * len(_GEO))]} {name}"
        base, k = name, 2
        while name in used_names:
            name, k = f"{base} {'I' * k}", k + 1
        used_names.add(name)
        symbol = _ticker(name, int(length[i]), fallback[i], used_syms)
        used_syms.add(symbol)
        names.append(name)
        symbols.append(symbol)

    n_class = int(round(n * CLASS_SUFFIX_SHARE))
    for i in rng.choice(n, size=n_class, replace=False) if n_class else []:
        if len(symbols[i]) <= 4:
            symbols[i] = f"{symbols[i]}.B"
    uni = pd.DataFrame({
        "symbol": symbols,
        "name": names,
        "sector": [SECTORS[k].name for k in sector_idx],
        "industry": [SECTORS[k].industries[j].name for k, j in zip(sector_idx, industry_idx,
                                                                     strict=True)],
        "sector_idx": sector_idx,
        "industry_idx": industry_idx,
    })
    return uni.sort_values("symbol", kind="stable").reset_index(drop=True)


def _ticker(name: str, length: int, fallback: np.ndarray, used: set[str]) -> str:
    """A ticker derived from the name (initials, then leading letters), else partly random."""
    words = [re.sub("[^A-Z]", "", w.upper()) for w in name.split()[:-1]]
    words = [w for w in words if w] or ["X"]
    a, b = words[0], "".join(words[1:]) or words[0]
    initials = "".join(w[0] for w in words)
    candidates = [initials[:length], a[:length], a[0] + b[: length - 1], a[:2] + b[: length - 2],
                  a[: length - 1] + b[0], initials + a[1 : 1 + length - len(initials)]]
    for c in candidates:
        if len(c) == length and c not in used:
            return c
    for size in range(length, 6):  # partly random; one letter longer if a size is crowded
        head = a[0] if size > 1 else ""
        for shift in range(26):
            c = head + "".join(_LETTERS[(fallback[: size - len(head)] + shift) % 26])
            if c not in used:
                return c
    raise RuntimeError(f"no free ticker for {name!r}")


def _largest_remainder(shares: np.ndarray, n: int) -> np.ndarray:
    """Integer counts summing to n, as close to shares * n as possible."""
    raw = shares * n
    counts = np.floor(raw).astype(np.int64)
    counts[np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]] += 1
    return counts
