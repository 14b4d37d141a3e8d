"""Every command block of the README and the docs site's pages runs, in a sandbox holding the
demo market, and every output they show is either produced by that run or labelled as an
example."""

from __future__ import annotations

import re

import pytest
from doc_blocks import ROOT, Block, Sandbox, Server, blocks, build_template, not_run_reason, script

pytestmark = pytest.mark.slow

# the README first: its first block is the set-up block; then the site's pages, in order
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SCANNING = ROOT / "docs" / "guides" / "scanning.md"  # the example summary of `technic scan`
SCREENS = ROOT / "docs" / "guides" / "screens.md"  # the preset table
COMMAND_BLOCKS = [b for path in DOCS for b in blocks(path) if b.lang in ("bash", "python")]
# The README's set-up block installs and runs the suite itself; every line of it is in NOT_RUN but
# `technic scan`, which the scan block runs too.
SETUP = COMMAND_BLOCKS[0]


@pytest.fixture(scope="module")
def template(tmp_path_factory):  # type: ignore[no-untyped-def]
    return build_template(tmp_path_factory.mktemp("docs-template"))


@pytest.fixture(scope="module")
def server(template, tmp_path_factory):  # type: ignore[no-untyped-def]
    """One API for the curl lines, over its own sandbox; they run in document order."""
    sandbox = Sandbox(template, tmp_path_factory.mktemp("docs-server"))
    srv = Server(sandbox)
    yield srv
    srv.close()


@pytest.mark.parametrize("block", COMMAND_BLOCKS[1:], ids=lambda b: b.where)
def test_block_runs(block: Block, template, server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sandbox = Sandbox(template, tmp_path)
    if block.lang == "python":
        proc = sandbox.run(block.text, lang="python")
    else:
        proc = sandbox.run(script(block, server.port))
    assert proc.returncode == 0, (
        f"{block.where} failed ({proc.returncode}):\n{script(block, server.port)}\n"
        f"--- stdout (end)\n{proc.stdout[-800:]}\n--- stderr (end)\n{proc.stderr[-1500:]}")


def test_setup_block_is_install_scan_and_tests() -> None:
    lines = SETUP.text.strip().splitlines()
    assert len(lines) == 2
    assert [not_run_reason(line) is not None for line in lines] == [True, True]


def test_every_shown_output_is_labelled_an_example() -> None:
    """An output block (no language) that shows a command's output says it is an example in
    the sentence before it: its numbers come from one run and move with data and machine."""
    for path in DOCS:
        text = path.read_text()
        for block in blocks(path):
            if block.lang or block.text.startswith(("technic_v4/", "{\"meta\"")):
                continue  # a layout or a schema, not an output
            before = "\n".join(text.splitlines()[max(0, block.line - 4): block.line - 1])
            assert re.search(r"\bexample\b", before, re.I), (
                f"{block.where}: an output block not labelled as an example")


def test_the_example_scan_summary_has_the_real_summary_lines(template, tmp_path) -> None:
    """The scanning guide's example summary of `technic scan` has the lines a real scan prints, in
    order, with only the numbers differing."""
    sandbox = Sandbox(template, tmp_path)
    proc = sandbox.run("technic scan --max-symbols 5")
    assert proc.returncode == 0, proc.stderr
    shown = next(b for b in blocks(SCANNING) if not b.lang)

    def shape(line: str) -> str:
        line = re.sub(r"\b[0-9a-f]{12,}\b", "H", line)
        return re.sub(r"[-+]?\d[\d.,:-]*", "N", line).split("(")[0].strip()

    printed = [shape(line) for line in proc.stderr.splitlines() if line.strip()]
    for line in shown.text.strip().splitlines():
        assert shape(line) in printed, (line, proc.stderr)


@pytest.fixture(scope="module")
def demo_market(tmp_path_factory):  # type: ignore[no-untyped-def]
    """The default 5,000-symbol demo market, as `technic scan` builds it on a fresh machine."""
    from technic_v4.data.demo import build_demo_store

    path = tmp_path_factory.mktemp("demo-market")
    build_demo_store(path)
    return path


def test_the_preset_table_counts_what_the_presets_find(demo_market) -> None:
    """The screens guide's preset table: each preset's "found" is what it keeps on the demo
    market."""
    from technic_v4.data.reader import StoreReader
    from technic_v4.scan import ScanConfig, run_scan

    section = SCREENS.read_text().split("**Presets**", 1)[1].split("\n\n**", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9-]+)` \|.*\| (\d+)(?: of (\d+))? \|$", section, re.M)
    assert len(rows) >= 7, section
    reader = StoreReader(demo_market)
    for name, shown, of in rows:
        frame, status = run_scan(ScanConfig(screen=name), loader=reader)
        matched = len(frame) + status.rejected_by_reason.get("beyond max_symbols", 0)
        found = (len(frame), matched) if of else len(frame)
        assert found == ((int(shown), int(of)) if of else int(shown)), (name, found)
