"""pytickersymbols' industry words onto the 11 GICS sectors: the mapping table and its rule.

The package describes each company by a list of words from several sources: Wikipedia's GICS
sector column (S&P lists), Refinitiv (TRBC) sectors and industries ("Consumer Cyclicals",
"Software & IT Services"), and free text ("Consumer electronics Software services"). A
company's sector is decided from all the words its entries carry, in every list it is in:

1. Words that are a GICS sector name, exactly as GICS spells it: the most frequent wins, a
   tie goes to the earlier sector in TIE_ORDER (e.g. "Energy" and "Utilities" both on a power
   company: Utilities; "Financials" and "Real Estate" on a REIT, listed before 2016: Real
   Estate).
2. Otherwise each word votes for the sector WORDS gives it (a word mapped to None carries no
   sector, e.g. "Conglomerate"), or, for a word not in WORDS, the first KEYWORDS pattern it
   contains; most votes win, ties by TIE_ORDER.
   A few companies whose words point elsewhere are named in SYMBOL_SECTORS.
3. No vote: "Unknown" (never for S&P 500, Nasdaq 100 or Dow members: tests/data/test_indexes.py
   fails, naming the word, when the package brings a word neither table covers).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from technic_v4.data.universe import GICS_SECTORS, UNKNOWN

CS, CD, CST, EN, FIN, HC, IND, IT, MAT, RE, UT = GICS_SECTORS

TIE_ORDER = (RE, UT, CS, HC, IT, CST, EN, MAT, CD, FIN, IND)

# Keyword patterns (searched in the lower-cased word, in this order; the first match decides).
# Narrow before broad: "food retail" is Consumer Staples before "retail" is Discretionary.
KEYWORDS: tuple[tuple[str, str], ...] = (
    (r"food (& drug )?retail|drug retail|food & drug|grocery|supermarket|hypermarket", CST),
    (r"\breit|real estate|property|properties|apartment", RE),
    (r"utilit|electricity|water (and|&) wastewater|power generation|\bipps?\b", UT),
    (r"health ?care (reit|facilit)|hospital|clinic", HC),
    (r"pharma|biotech|biopharm|medical|health ?care|healthcare|life science|diagnostic"
     r"|dental|drug|therapeut|medicine|genomic|orthodont", HC),
    (r"telecom|wireless|broadcast|media|cable|satellite|entertainment|advertising|publishing"
     r"|video game|social network|interactive|internet content|movies|search engine", CS),
    (r"semiconductor|software|\bsaas\b|cloud|computer|information technology|it services"
     r"|it consulting|\bit\b|cyber|network security|internet security|data (processing|storage)"
     r"|electronic (component|equipment|instrument)|electronics manufactur"
     r"|communications equipment|networking|technology equipment|payment|fintech"
     r"|financial technology|transaction", IT),
    (r"discount store|food"
     r"|beverage|drink|brewer|soft drink|tobacco|household product|personal product"
     r"|personal care|cosmetic|non-cyclical|consumer staples|consumer defensive", CST),
    (r"oil|\bgas\b|petroleum|coal|fossil|refin|pipeline|drilling|hydrocarbon", EN),
    (r"chemical|mining|\bmetals?\b|steel|alumin|gold|mineral|packaging|container|paper"
     r"|forest|construction materials|building materials|glass|fertili[sz]|basic materials", MAT),
    (r"bank|insur|financ|invest|asset management|brokerage|capital markets|exchange"
     r"|lending|credit|mortgage|private equity|wealth|fund", FIN),
    (r"\bauto\b|motor vehicle|retail|restaurant|hotel|resort|casino|gaming|leisure|apparel"
     r"|clothing|footwear|fashion|luxury|automo|auto parts|car dealer|homebuild"
     r"|home construction|furniture"
     r"|e-commerce|consumer cyclical|cyclical consumer|toys|education|travel|tourism"
     r"|hospitality|lodging|cruise|department store|specialty store", CD),
    (r"aerospace|defen[cs]e|machinery|industrial|airline|air freight|freight|logistic"
     r"|transport|rail|trucking|shipping|construction|engineering|electrical|building products"
     r"|commercial services|professional services|staffing|employment|waste|environmental"
     r"|conglomerate|heavy equipment|courier|security services|aviation|trading compan"
     r"|general trading|sogo shosha|printing|inspection|certification|energy technology"
     r"|energy development", IND),
    (r"rubber", CD),
    (r"precision instruments", HC),
    # German words of the TecDAX / MDAX entries
    (r"halbleiter|rechnertechnologie", IT),
    (r"telekommunikation", CS),
    (r"medizintechnik", HC),
    (r"windenergie", UT),
)

# Exact words (lower-cased, spaces collapsed) the patterns get wrong or do not cover; None:
# the word names no sector (too broad, or several at once).
WORDS: dict[str, str | None] = {
    # TRBC / common sector names that are not GICS names
    "technology": IT,
    "healthcare": HC,
    "consumer cyclicals": CD,
    "consumer non-cyclicals": CST,
    "basic materials": MAT,
    "consumer defensive": CST,
    "consumer services": CD,
    "financial services": FIN,
    "communication services": CS,
    "communications services": CS,
    "communications": CS,
    "information technology": IT,
    "health care": HC,
    # words too broad to name one sector
    "conglomerate": None,
    "manufacturing": None,
    "service": None,
    "distribution": None,
    "wholesale": None,
    "high tech": IT,
    "accessories": CD,
    "adhesives coatings sealants": MAT,
    "advanced technologies": IT,
    "advanced specialty materials": MAT,
    "agriculture": CST,
    "aircraft leasing": IND,
    "alternative carriers": CS,
    "amusement parks": CD,
    "animal health and nutrition": HC,
    "applied resources": MAT,
    "arms industry shipbuilding": IND,
    "business support services": IND,
    "business process outsourcing human capital management": IND,
    "business services": IND,
    "car rental and leasing": IND,
    "catalog/specialty distribution": CD,
    "colors, flavors and fragrance": MAT,
    "confectionery": CST,
    "consumer electronics": CD,
    "consumer goods": None,
    "consumer products": None,
    "cryptocurrency": FIN,
    "customer experience management": IT,
    "data analytics": IT,
    "data analytics and risk assessment": IND,
    "data connectivity, data onboarding , identity resolution": IT,
    "diversified support services": IND,
    "edp services": IT,
    "electric power industry energy development renewable energy": UT,
    "electronic manufacturing services": IT,
    "electronics": IT,
    "electronics industry": IT,
    "energy industry": EN,
    "equipment manufacturing": IND,
    "facility services": IND,
    "fast-moving consumer goods": CST,
    "flooring manufacturing": CD,
    "franchising": CD,
    "freelance marketplace": IND,
    "hvac": IND,
    "health technology": HC,
    "home improvement": CD,
    "home appliances": CD,
    "iot": IT,
    "identity verification": IT,
    "information security": IT,
    "information storage enterprise information management": IT,
    "internet": CS,
    "internet agriculture": None,
    "internet services": CS,
    "internet services & infrastructure": IT,
    "manufactured and modular home building": CD,
    "manufacturing, agriculture": IND,
    "military, government, technical": IND,
    "miscellaneous amusement & recreation services": CD,
    "mobile technology": IT,
    "office services & supplies": IND,
    "online dating": CS,
    "online dating service": CS,
    "online legal services legal technology": IND,
    "ordnance & accessories": IND,
    "plm": IT,
    "phones & handheld devices": IT,
    "photovoltaics": IT,
    "private prisons": RE,
    "processed & packaged goods": CST,
    "professional information services": IND,
    "public safety": IND,
    "rfid": IT,
    "renewable energy": UT,
    "residential & commercial retis": RE,
    "scientific instruments": HC,
    "security": IND,
    "security , access control": IND,
    "security systems remote monitoring home automation energy management": IND,
    "solar energy": IT,
    "specialized consumer services": CD,
    "sports equipment": CD,
    "sports equipment , textile": CD,
    "stock photography , stock footage , stock music": CS,
    "surveillance cameras": IT,
    "swimming pools": CD,
    "system monitoring": IT,
    "technology , pay television , consumer electronics": CS,
    "technology distributors": IT,
    "test & automation": IT,
    "textile , sports equipment": CD,
    "textile industry": CD,
    "trading companies & distributors": IND,
    "virtual reality": IT,
    "water & fluid solutions valves & controls technical solutions water treatment solutions":
        IND,
    "water industry": UT,
    "water infrastructure": IND,
    "water technology": IND,
}

# Companies whose package words point away from their GICS sector (store symbol -> sector).
SYMBOL_SECTORS: dict[str, str] = {
    "PDD": CD,  # words "EDP Services", "Internet": GICS Broadline Retail
    "TRI": IND,  # words "Computer Software", "Mass media": GICS Research & Consulting
}

_COMPILED = tuple((re.compile(p), s) for p, s in KEYWORDS)
_GICS = frozenset(GICS_SECTORS)


def normal_word(word: str) -> str:
    return " ".join(str(word).split()).lower()


def word_sector(word: str) -> str | None:
    """The sector one word votes for (None: none), from WORDS, else the first KEYWORDS match."""
    key = normal_word(word)
    if key in WORDS:
        return WORDS[key]
    for pattern, sector in _COMPILED:
        if pattern.search(key):
            return sector
    return None


def covered(word: str) -> bool:
    """Whether the tables decide this word (a sector or an explicit None)."""
    key = normal_word(word)
    return key in WORDS or word.strip() in _GICS or any(p.search(key) for p, _ in _COMPILED)


def _winner(votes: Counter[str]) -> str:
    return max(votes, key=lambda s: (votes[s], -TIE_ORDER.index(s)))


def gics_sector(words: Iterable[str]) -> str:
    """The GICS sector of a company described by `words` (module docstring), or Unknown."""
    words = list(words)
    exact = Counter(w.strip() for w in words if w.strip() in _GICS)
    if exact:
        return _winner(exact)
    votes = Counter(s for w in words if (s := word_sector(w)) is not None)
    return _winner(votes) if votes else UNKNOWN
