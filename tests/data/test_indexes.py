"""Index universes from pytickersymbols' shipped data (offline): sizes, sectors, the mapping
table's coverage, symbols, merges and errors."""

from __future__ import annotations

import importlib.metadata

import pytest
from pytickersymbols.indices_data import INDICES

from technic_v4.data.indexes import (
    COLUMNS,
    INDEXES,
    UnknownIndexError,
    index_universe,
    membership_source,
)
from technic_v4.data.sector_map import covered, gics_sector
from technic_v4.data.universe import GICS_SECTORS, validate_symbol

US_LISTS = {"sp500": 495, "nasdaq100": 98, "dow": 30}


@pytest.mark.parametrize("name", list(US_LISTS))
def test_us_lists_are_complete_and_every_member_has_a_gics_sector(name):
    uni = index_universe([name])
    assert list(uni.columns) == list(COLUMNS)
    assert len(uni) >= US_LISTS[name]
    off = uni.loc[~uni["Sector"].isin(GICS_SECTORS), ["Symbol", "Sector"]]
    assert off.empty, f"members of {name} outside the 11 GICS sectors:\n{off}"
    assert uni["Symbol"].is_unique
    assert uni["Indexes"].str.split(",").map(lambda ids: name in ids).all()
    assert (uni["Calendar"] == INDEXES[name].calendar).all()


def test_sp500_covers_all_eleven_sectors():
    assert set(index_universe(["sp500"])["Sector"]) == set(GICS_SECTORS)


@pytest.mark.parametrize("name", list(US_LISTS))
def test_every_industry_word_of_the_us_lists_is_in_the_mapping(name):
    """Fails when a package release brings a word sector_map.py neither maps nor ignores."""
    key = INDEXES[name].package_key
    words = sorted({w for c in INDICES[key]["companies"] for w in c.get("industries") or []
                    if not covered(w)})
    assert not words, f"words in {name} not in technic_v4/data/sector_map.py: {words}"


def test_every_symbol_is_one_the_store_accepts():
    uni = index_universe(list(INDEXES))
    assert uni["Symbol"].is_unique
    for sym in uni["Symbol"]:
        assert validate_symbol(sym) == sym


def test_us_share_classes_keep_the_dot_and_yahoo_gets_a_dash():
    uni = index_universe(["sp500"]).set_index("Symbol")
    classes = [s for s in uni.index if "." in s]
    assert classes, "the S&P 500 has share classes (BRK.B, BF.B)"
    for s in classes:
        assert uni.loc[s, "YahooSymbol"] == s.replace(".", "-")


def test_non_us_members_carry_their_venue_suffix_and_calendar():
    uni = index_universe(["dax", "ftse100", "nikkei225"])
    for sym, cal in zip(uni["Symbol"], uni["Calendar"], strict=True):
        suffix = sym.rsplit(".", 1)[1]
        assert {"DE": "XETR", "L": "XLON", "T": "XTKS"}[suffix] == cal
    assert (uni["YahooSymbol"] == uni["Symbol"]).all()


def test_lists_combine_as_a_union_with_merged_memberships():
    dow, ndx = index_universe(["dow"]), index_universe(["nasdaq100"])
    both = index_universe(["dow", "NASDAQ100 ", "dow"])
    assert set(both["Symbol"]) == set(dow["Symbol"]) | set(ndx["Symbol"])
    shared = set(dow["Symbol"]) & set(ndx["Symbol"])
    assert shared, "some Dow members are in the Nasdaq-100"
    row = both.set_index("Symbol").loc[sorted(shared)[0]]
    assert {"dow", "nasdaq100"} <= set(row["Indexes"].split(","))


def test_memberships_do_not_depend_on_the_lists_asked_for():
    alone = index_universe(["dow"]).set_index("Symbol")
    wide = index_universe(["dow", "sp500"]).set_index("Symbol").loc[alone.index]
    assert alone.equals(wide)


def test_an_unknown_index_is_an_error_naming_the_known_ones():
    with pytest.raises(UnknownIndexError) as err:
        index_universe(["sp500", "sp501"])
    assert "'sp501'" in str(err.value)
    assert err.value.valid == list(INDEXES)
    for known in INDEXES:
        assert known in str(err.value)


def test_membership_source_names_the_installed_package():
    src = membership_source()
    assert src["package"] == "pytickersymbols"
    assert src["version"] == importlib.metadata.version("pytickersymbols")


@pytest.mark.parametrize(("words", "sector"), [
    (["Energy", "Utilities"], "Utilities"),  # a tie between GICS names: TIE_ORDER
    (["Financials", "Real Estate", "Commercial REITs"], "Real Estate"),
    (["Information Technology", "Information Technology", "Industrials"],
     "Information Technology"),
    (["Broadcasting", "Consumer Cyclicals", "Media & Publishing"], "Communication Services"),
    (["Food & Drug Retailing", "Retail Wholesaling", "Food Retail & Distribution"],
     "Consumer Staples"),
    (["Conglomerate"], "Unknown"),
])
def test_the_sector_rule(words, sector):
    assert gics_sector(words) == sector


def test_store_universe_has_the_store_columns_and_the_source():
    from technic_v4.data.indexes import META_KEY, describe_source, store_universe
    from technic_v4.data.panel import UNIVERSE_COLUMNS, universe_columns

    table = index_universe(["dow"])
    uni, meta = store_universe(table)
    assert universe_columns(uni) == [*UNIVERSE_COLUMNS, "indexes"]
    assert uni["symbol"].tolist() == table["Symbol"].tolist()
    assert meta == {META_KEY: [describe_source(membership_source())]}
