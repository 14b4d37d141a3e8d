"""The README says what is true: its first block is the two set-up commands, every setting
is in its Configuration table, and every HTTP route is in its route table."""

from __future__ import annotations

import re
from pathlib import Path

from deployments.api.main import create_app
from technic_v4.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _env_name(name: str) -> str:
    field = Settings.model_fields[name]
    alias = field.validation_alias
    choices = getattr(alias, "choices", None)
    return str(choices[0]) if choices else f"TECHNIC_{name.upper()}"


def test_first_block_is_the_two_setup_commands():
    block = README.split("```")[1].strip().splitlines()
    assert block[0] == "bash" and len(block) == 3, block
    assert "technic scan" in block[1] and "pytest" in block[2]


def test_every_setting_is_documented():
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| ([A-Z0-9_]+) \|", section, re.M))
    names = {_env_name(n) for n in Settings.model_fields}
    assert names <= documented, sorted(names - documented)


def test_every_route_is_in_the_route_table(warm):
    app = create_app(warm, api_keys=())
    paths = {path for path in app.openapi()["paths"] if path.startswith("/v1")}
    shown = set(re.findall(r"`(?:GET|POST|PUT|DELETE)[^`]*?(/v1/[^` ?]*)", README))
    shown |= set(re.findall(r"`(/v1/[^` ?]*)`", README))
    assert paths <= shown, sorted(paths - shown)
