"""The one exception every bad screen raises: `ScreenError`, with a place and a hint.

`str(err)` reads `unknown column 'RSII' at 1:1 — did you mean RSI?`: the message, the line and
column (1-based, as an editor counts them), then the hint when there is one. Callers (the CLI,
the API) show `str(err)` as is, or the fields for a structured response.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ScreenError(ValueError):
    """A screen that cannot be compiled: where (line, column) and why (message, hint).

    `suggestions` holds the names offered in the hint ("did you mean ..."), for a UI that wants
    to offer them as buttons; it is empty when there is nothing to suggest.
    """

    def __init__(
        self,
        message: str,
        line: int = 1,
        column: int = 1,
        hint: str = "",
        suggestions: Iterable[str] = (),
    ) -> None:
        self.message = message
        self.line = int(line)
        self.column = int(column)
        self.hint = hint
        self.suggestions = list(suggestions)
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.message} at {self.line}:{self.column}"
        return f"{where} — {self.hint}" if self.hint else where

    def __reduce__(self):  # picklable across processes (Ray, multiprocessing)
        return (
            type(self),
            (self.message, self.line, self.column, self.hint, tuple(self.suggestions)),
        )

    def to_dict(self) -> dict[str, object]:
        """The fields as JSON-ready data (the API's 400 body)."""
        return {
            "message": self.message,
            "line": self.line,
            "column": self.column,
            "hint": self.hint,
            "suggestions": list(self.suggestions),
            "error": str(self),
        }


def suggest(name: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """Names close to `name`: a case-insensitive exact match first, then difflib's closest."""
    pool = sorted(set(candidates))
    exact = [c for c in pool if c.lower() == name.lower() and c != name]
    lowered = {c.lower(): c for c in pool}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=limit, cutoff=0.6)
    out = exact + [lowered[c] for c in close if lowered[c] not in exact and lowered[c] != name]
    return out[:limit]


def did_you_mean(names: list[str]) -> str:
    """'did you mean A?' / 'did you mean A or B?' / '' for no names."""
    if not names:
        return ""
    if len(names) == 1:
        return f"did you mean {names[0]}?"
    return f"did you mean {', '.join(names[:-1])} or {names[-1]}?"
