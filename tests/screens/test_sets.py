"""Text columns holding a set of ids (Indexes: "sp500,dow"): `in` / `not in` test membership,
`==` / `!=` are refused with the membership test as the hint."""

from __future__ import annotations

import numpy as np
import pytest

from technic_v4.screens import ScreenError, compile_screen

SCHEMA = {"Indexes": "text", "Sector": "text", "RSI": "number"}


class Env:
    n_rows = 4
    universe = np.ones(4, dtype=bool)

    def text(self, name: str) -> np.ndarray:
        return np.array(["sp500,dow", "nasdaq100", "", None], dtype=object)

    def number(self, name: str, width: int, timeframe: str = "D") -> np.ndarray:
        return np.zeros((4, width))


@pytest.mark.parametrize(("text", "hits"), [
    ('Indexes in ("dow")', [True, False, False, False]),
    ('Indexes in ("sp500", "nasdaq100")', [True, True, False, False]),
    ('Indexes not in ("dow")', [False, True, True, False]),
    ('Indexes in ("sp5")', [False, False, False, False]),  # ids, not substrings
])
def test_in_is_membership_for_a_set_column(text, hits):
    screen = compile_screen(text, SCHEMA, sets=("Indexes",))
    assert screen.evaluate(Env(), 1)[:, -1].tolist() == hits


def test_without_sets_in_compares_the_whole_value():
    screen = compile_screen('Indexes in ("dow")', SCHEMA)
    assert not screen.evaluate(Env(), 1)[:, -1].any()


def test_equality_with_a_set_column_is_refused_with_a_hint():
    with pytest.raises(ScreenError) as err:
        compile_screen('Indexes == "dow"', SCHEMA, sets=("Indexes",))
    assert "Indexes in" in err.value.hint
