"""One request schema: ScanConfig's fields are what HTTP, the CLI and the page offer.

Adding a field to ScanConfig and not to one of the front ends (or the other way round) fails
here; so does an HTTP or CLI check that disagrees with the library's.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from deployments.api.schemas import ScanRequest, ValidateRequest
from technic_v4.cli.scan import scan_command as cli_scan
from technic_v4.data.universe import SECTOR_ALIASES, SYMBOL_PATTERN
from technic_v4.errors import ConfigError
from technic_v4.scan import ScanConfig
from technic_v4.scan.config import options

HTTP_ONLY = {"format", "include_rejections"}
CLI_ONLY = {"fmt", "out", "top", "show_rejections", "data_dir", "at"}  # at: intraday scans
EXPOSED = {name for name, o in options().items() if o.exposed}
PAGE = Path(__file__).resolve().parents[2] / "deployments" / "web" / "index.html"


def test_http_request_fields_are_the_config_fields():
    assert set(ScanRequest.model_fields) == EXPOSED | HTTP_ONLY


def test_cli_options_are_the_config_fields():
    params = set(inspect.signature(cli_scan).parameters)
    assert params == EXPOSED | CLI_ONLY


def test_page_form_fields_are_request_fields():
    """Every named field of the page's form is a ScanRequest field (or its alias), or, in the
    validate fieldset, a ValidateRequest field."""
    html = PAGE.read_text()
    start = html.index('<fieldset id="validate-options">')
    end = html.index("</fieldset>", start)
    field = r'<(?:input|select|textarea)[^>]*\sname="([a-z_]+)"'
    scan, validate = set(re.findall(field, html[:start])), set(re.findall(field, html[start:end]))
    aliases = {o.alias for o in options().values() if o.alias}
    fields = set(ScanRequest.model_fields) | aliases
    assert scan - {"signal", "api-key"} <= fields, scan - fields
    assert validate and validate <= set(ValidateRequest.model_fields), validate


@pytest.mark.parametrize("field, value", [
    ("max_symbols", 0), ("lookback_days", 0), ("lookback_days", 1261), ("min_bars", 0),
    ("max_stale_sessions", -1), ("min_tech_rating", 101.0), ("min_price", -1.0),
    ("sort_by", "Price"), ("signals", ["Buy"]), ("exclude_flags", ["nope"]),
    ("sectors", ["Crypto"]), ("symbols", ["../x"]), ("as_of_date", "yesterday"),
    ("industries", [""]), ("sectors", "Technology")])
def test_http_refuses_what_the_library_refuses(field, value):
    with pytest.raises(ConfigError) as lib:
        ScanConfig(**{field: value}).validate()
    assert lib.value.field == field
    with pytest.raises(ValueError) as http:
        ScanRequest.model_validate({field: value})
    assert field in str(http.value)


def test_normalised_the_same_way():
    raw = {"sectors": ["tech", "Information Technology", "healthcare"],
           "symbols": ["aapl", "AAPL", " msft "], "signals": ["Long", "Strong Long", "Long"]}
    req = ScanRequest.model_validate(raw).to_config()
    lib = ScanConfig(**raw).normalized()
    for name in raw:
        assert getattr(req, name) == getattr(lib, name), name


def test_symbol_pattern_and_aliases_exist_once():
    from deployments.api import schemas

    assert schemas.SYMBOL_REGEX.replace("A-Za-z", "A-Z") == SYMBOL_PATTERN.pattern
    assert set(options()["sectors"].valid) >= set(SECTOR_ALIASES)
