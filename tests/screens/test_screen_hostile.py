"""Hostile and arbitrary text: it compiles or raises ScreenError, nothing else, and runs nothing.

While compile_screen runs, builtins.eval / exec / compile are replaced by recorders and every
import is logged: none may be called, and no module that reaches the system (os, subprocess,
...) may be imported. Strings that would create a sentinel file if they were ever executed
show that nothing was. Whatever compiles is also evaluated, which must not raise either.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import tempfile
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from technic_v4.screens import ArrayEnv, CompiledScreen, ScreenError, compile_screen

SCHEMA = {"RSI": "number", "Close": "number", "x": "number", "Sector": "text"}
SENTINEL = os.path.join(tempfile.gettempdir(), f"technic-screen-sentinel-{os.getpid()}")
TOUCH = f"__import__('os').system('touch {SENTINEL}')"
SUSPICIOUS = {"os", "subprocess", "sys", "shutil", "socket", "ctypes", "importlib", "pty",
              "posix", "builtins", "code", "pickle", "marshal", "runpy"}  # fmt: skip

HOSTILE = [
    TOUCH,
    f"RSI > 1 and {TOUCH}",
    f"open('{SENTINEL}', 'w')",
    f"exec(\"open('{SENTINEL}', 'w')\")",
    "eval('1') > 0",
    "().__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "RSI.__class__",
    "W.__class__ > 1",
    "W.__import__ > 1",
    "W.W.RSI > 1",
    "__builtins__",
    "globals()",
    "getattr(RSI, 'x')",
    "lambda: 1",
    "(lambda x: x)(1) > 0",
    "[x for x in (1, 2)]",
    "{x: 1 for x in RSI}",
    "(x for x in RSI)",
    "RSI if 1 else 2",
    "(RSI := 3)",
    f"f'{{{TOUCH}}}'",
    "b'x' == Sector",
    "r'x' == Sector",
    "RSI; import os",
    "RSI > 1\nimport os",
    "RSI[1:2] > 1",
    "RSI[::-1] > 1",
    "*RSI",
    "RSI @ RSI > 1",
    "RSI ** 2 > 1",
    "`RSI` > 1",
    "$RSI > 1",
    "RSI > 1 \\",
    "'\\x41' == Sector",
    "Sector in ()",
    "Sector in (RSI)",
    "0x10 > RSI",
    "1_000 > RSI",
    "1j > RSI",
    "9" * 5000,
    "9" * 1999,
    "RSI > " + "9" * 1990,
    "1e999999 > RSI",
    "1e-999999 < RSI",
    "RSI > 1e308 * 10",
    "(" * 10_000 + ")" * 10_000,
    "(" * 999 + ")" * 999,
    "[" * 999 + "]" * 999,
    "-" * 1990 + "RSI > 1",
    "not " * 499 + "RSI",
    "a" * 1999,
    "RSI\x00 > 1",
    "\x00",
    "RSI\x1b[31m > 1",
    "RSI\r\n> 1",
    "RSI\t>\t1",
    "RSI\u200b > 1",
    "\ufeffRSI > 1",
    "RSI \u202e> 1",
    "\uff32\uff33\uff29 > 1",  # fullwidth RSI
    "R\u0405I > 1",  # Cyrillic S
    "RSI > \u0661",  # Arabic-Indic digit one
    "RSI > 1\u0301",
    "\ud7ff",
    "RSI > 1 \ud800",  # a lone surrogate
    "W.",
    "and",
    "not",
    "RSI[1][2] > RSI",  # a lag of a lag: valid
    "sma(RSI, n=3, x=Close) > 1",
    "crosses_above(RSI, 30, within=3) and Sector in ('A', 'B',)",
]

VOCAB = [
    "RSI", "Close", "x", "Sector", "W.RSI", "W.Sector", "W.x", "(", ")", "[", "]", ",", "=",
    "==", "<", ">", "<=", ">=", "!=", "+", "-", "*", "/", "and", "or", "not", "in", "between",
    "true", "false", "0", "1", "3", "-1", "1260", "1261", "2.5", "1e999", "'Energy'", '"Tech"',
    "abs", "min", "max", "sma", "ema", "highest", "lowest", "change", "crosses_above",
    "crosses_below", "within", "within=2", "pct_rank", "sector_rank", "industry_rank",
    "__import__", "lambda", ":", "for", ".", "__class__", "\x00", "\u2212", "'", '"',
]  # fmt: skip


@contextlib.contextmanager
def guarded() -> Iterator[dict[str, list]]:
    """eval / exec / compile replaced by recorders, imports logged, for the duration."""
    seen: dict[str, list] = {"calls": [], "imports": []}
    saved = {name: getattr(builtins, name) for name in ("eval", "exec", "compile", "__import__")}

    def recorder(name: str):
        def record(*args, **kwargs):
            seen["calls"].append((name, args[:1]))
            raise AssertionError(f"{name} called by the screen compiler")

        return record

    def logging_import(name, *args, **kwargs):
        seen["imports"].append(name)
        return saved["__import__"](name, *args, **kwargs)

    for name in ("eval", "exec", "compile"):
        setattr(builtins, name, recorder(name))
    builtins.__import__ = logging_import
    try:
        yield seen
    finally:
        for name, fn in saved.items():
            setattr(builtins, name, fn)


@pytest.fixture(scope="module")
def env() -> ArrayEnv:
    rng = np.random.default_rng(3)
    daily = {c: rng.normal(50, 10, (7, 30)) for c in ("RSI", "Close", "x")}
    daily["RSI"][0, :20] = np.nan
    return ArrayEnv(
        daily,
        text={"Sector": np.array(["Energy", "Tech", None, "Tech", "A", "B", "Energy"], object)},
        groups={"Sector": np.array([0, 1, -1, 1, 2, 3, 0])},
        weekly={c: rng.normal(50, 10, (7, 6)) for c in ("RSI", "x")},
        week_of=np.repeat(np.arange(6), 5) - 1,
    )


def check(text: str, env: ArrayEnv) -> CompiledScreen | None:
    """Compile under guard; on success evaluate too. Anything but ScreenError fails."""
    screen = None
    with guarded() as seen:
        for kind in ("bool", "number"):
            try:
                screen = compile_screen(text, SCHEMA, kind=kind)
                break
            except ScreenError as err:
                assert err.line >= 1 and err.column >= 1 and err.message and str(err)
    assert seen["calls"] == []
    assert not SUSPICIOUS & set(seen["imports"]), seen["imports"]
    if screen is not None:
        for width in (1, 4):
            out = screen.evaluate(env, width)
            assert out.shape == (7, width)
        assert compile_screen(screen.text, SCHEMA, kind=screen.kind).text == screen.text
    assert not os.path.exists(SENTINEL)
    return screen


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_strings(text, env):
    screen = check(text, env)
    if "__" in text or "lambda" in text or "import" in text or "open(" in text:
        assert screen is None


def test_the_guard_would_notice():
    with pytest.raises(AssertionError), guarded():
        eval("1")  # noqa: S307 - proving the recorder fires
    with guarded() as seen:
        __import__("os")
    assert "os" in seen["imports"]


SET = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@SET
@given(text=st.text(max_size=400))
def test_arbitrary_unicode_text(text, env):
    check(text, env)


@SET
@given(words=st.lists(st.sampled_from(VOCAB), max_size=30), joiner=st.sampled_from([" ", ""]))
def test_token_soup(words, joiner, env):
    check(joiner.join(words), env)


@SET
@given(
    parts=st.lists(
        st.characters(codec="ascii") | st.sampled_from(["W.", "RSI", "and", "(", "sma("]),
        max_size=120,
    )
)
def test_ascii_and_control_characters(parts, env):
    check("".join(parts), env)
