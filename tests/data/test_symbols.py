"""What a symbol is (universe.SYMBOL_PATTERN, the one definition): the tickers real venues use
are accepted, anything that could reach a path or a query as something else is refused, in
`validate_symbol` (requests), `valid_symbols` (files) and the HTTP schema's pattern alike."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from technic_v4.data.ingest_yahoo import ingest_csv_folder
from technic_v4.data.store import load_panel
from technic_v4.data.universe import (
    SYMBOL_PATTERN,
    InvalidSymbolError,
    valid_symbols,
    validate_symbol,
)

REAL = [
    "AAPL", "A", "F", "BRK.B", "BRK-B", "BF-B", "BF.B", "RDS-A", "2GO", "7203", "0700", "9984",
    "7203.T", "0700.HK", "005930.KS", "VOD.L", "SHOP.TO", "ASML.AS", "SAP.DE", "NESN.SW",
    "BHP.AX", "RELIANCE.NS", "TEL", "GOOGL", "BRK-B.L", "PETR4.SA", "1AB",
]
HOSTILE = [
    "../etc", "..", ".", "A..B", "A/B", "/etc/passwd", "A\\B", "..%2F..%2Fetc", "%2F", "%2e%2e",
    "AAPL\x00", "\x00", "", "   ", "A B", "AA PL", "A\tB", "A\nB", "A\rB", "A" * 11,
    "A" * 20, "AAPL.ABCDE", "A.B.C.D", ".A", "A.", "-A", "A-", "A.-B", "A_B", "A:B", "A;B",
    "A*", "A?", "$AAPL", "^GSPC", "<script>", "A'B", 'A"B', "A%00", "AAPL/../MSFT",
    "\u0410APL",      # Cyrillic A
    "\u0131BM",       # dotless i: upper-cases to an ASCII I
    "\ufb01",         # the fi ligature: upper-cases to FI
    "ＡＡＰＬ",        # fullwidth letters
    "AAPL\u200b",     # zero-width space
    "\u202eLPAA",     # right-to-left override
]


@pytest.mark.parametrize("symbol", REAL)
def test_real_venue_symbols_are_accepted(symbol: str) -> None:
    assert validate_symbol(symbol) == symbol.upper()
    assert validate_symbol(f" {symbol.lower()} ") == symbol.upper()  # trimmed, upper-cased
    assert valid_symbols(pd.Index([symbol])).tolist() == [True]


@pytest.mark.parametrize("symbol", HOSTILE)
def test_hostile_symbols_are_refused(symbol: str) -> None:
    with pytest.raises(InvalidSymbolError, match="invalid symbol"):
        validate_symbol(symbol)
    assert valid_symbols(pd.Index([symbol.strip()])).tolist() == [False]


def test_non_strings_are_refused() -> None:
    for value in (None, 7203, b"AAPL", ["AAPL"]):
        with pytest.raises(InvalidSymbolError):
            validate_symbol(value)  # type: ignore[arg-type]


@given(st.text(max_size=24))
def test_whatever_is_accepted_is_plain_ascii_and_pathless(text: str) -> None:
    try:
        sym = validate_symbol(text)
    except InvalidSymbolError:
        assert not valid_symbols(pd.Index([text.strip()])).any()
        return
    assert valid_symbols(pd.Index([text.strip()])).all()
    assert re.fullmatch(r"[A-Z0-9.\-]{1,20}", sym)
    assert ".." not in sym and "/" not in sym and "\\" not in sym and "%" not in sym
    assert sym[0] not in ".-" and sym[-1] not in ".-"


def test_the_http_schema_pattern_is_derived_from_the_one_definition() -> None:
    from deployments.api import schemas

    assert schemas.SYMBOL_REGEX.replace("A-Za-z", "A-Z") == SYMBOL_PATTERN.pattern
    for symbol in REAL:
        assert re.fullmatch(schemas.SYMBOL_REGEX, symbol.lower())
    for symbol in HOSTILE:
        assert not re.fullmatch(schemas.SYMBOL_REGEX, symbol)


def test_a_folder_of_exchange_tickers_ingests(tmp_path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    days = pd.bdate_range("2024-03-04", periods=5).strftime("%Y-%m-%d")
    for name in ("7203.T", "0700.HK", "2go", "brk-b"):
        pd.DataFrame({"Date": days, "Open": 10.0, "High": 11.0, "Low": 9.0, "Close": 10.5,
                      "Volume": 1000}).to_csv(folder / f"{name}.csv", index=False)
    report = ingest_csv_folder(folder, tmp_path / "data", prices="raw")
    assert report.rows_rejected == 0
    assert list(load_panel(tmp_path / "data").symbols) == ["0700.HK", "2GO", "7203.T", "BRK-B"]
