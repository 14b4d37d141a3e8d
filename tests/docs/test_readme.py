"""The README fits on a screen and points into the docs site: its first block is the two
set-up commands (`.ci/run` runs the second), it is at most 200 lines, and every page it
links to exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_first_block_is_the_two_setup_commands():
    block = README.split("```")[1].strip().splitlines()
    assert block[0] == "bash" and len(block) == 3, block
    assert "technic scan" in block[1] and "pytest" in block[2]


def test_readme_fits_on_a_screen():
    assert len(README.splitlines()) <= 200, len(README.splitlines())


def test_every_local_link_of_the_readme_exists():
    targets = [t for t in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
               if not t.startswith(("http://", "https://"))]
    assert any(t.startswith("docs/") for t in targets), targets
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, missing
