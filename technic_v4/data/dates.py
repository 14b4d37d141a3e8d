"""Dates as data vendors write them: one parser for ingest and append, which refuses to guess.

Why: a daily-bars file's date column is written by whatever tool exported it: ISO 8601 from
Yahoo and pandas, `M/D/YYYY H:MM:SS` from Excel and US vendors, `D.M.YYYY` from European ones,
`YYYYMMDD` from many databases, Unix epochs from APIs. Reading one of them wrongly is worse than
rejecting it: `01/02/2020` read as 2 January instead of 1 February silently shifts every bar.

How `parse_dates` works, on the *distinct* values of the column (never per row):
 1. With a format (`--date-format`): a name of DATE_FORMATS, or a strftime pattern containing
    `%` (`%d-%b-%Y`); a value that does not fit is NaT (the row is rejected as "unparseable
    date"), never guessed.
 2. Without one, each value is sorted into a family by its shape: year-first (`2020-01-02`,
    `2020/01/02`, any time of day and zone), day-or-month-first (`1/2/2020`, `01.02.2020`,
    `1-2-2020`, optional `H:MM[:SS]` and AM/PM), 8 digits (YYYYMMDD), 9-10 digits (epoch
    seconds), 12-13 digits (epoch milliseconds). Families are parsed on their own, so a folder
    mixing ISO files with one M/D/YYYY file reads both. For the day-or-month-first family the
    order is read off the values: a first field above 12 anywhere means D/M, a second field
    above 12 means M/D; both is an error, and neither (every value could be either, as in a
    short file of `01/02/2020`) is DateFormatError asking for `--date-format mdy` or `dmy`.
 3. A time of day and a zone are dropped, keeping the wall-clock date the file wrote (a bar
    dated `2000-01-04 00:00:00+09:00` is the 4 January session in Seoul). Epochs name an
    instant: when every one is a whole UTC day it is that day; otherwise the date is taken in
    the exchange's own time zone (`tz`), so midnight in Seoul stays on its session.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

DATE_FORMATS = {
    "iso": "YYYY-MM-DD or YYYY/MM/DD, any time of day and zone (ISO 8601)",
    "mdy": "M/D/YYYY, separators / . or -, optional H:MM[:SS] (US vendors, Excel)",
    "dmy": "D/M/YYYY or D.M.YYYY, separators / . or -, optional H:MM[:SS]",
    "yyyymmdd": "8 digits, YYYYMMDD",
    "epoch-s": "seconds since 1970-01-01 UTC",
    "epoch-ms": "milliseconds since 1970-01-01 UTC",
}
FAMILY_TEXT = {"iso": "YYYY-MM-DD", "mdy": "M/D/YYYY", "dmy": "D/M/YYYY",
               "yyyymmdd": "YYYYMMDD", "epoch-s": "epoch seconds", "epoch-ms": "epoch ms"}
_TIME = r"(?:[T ]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[AaPp][Mm])?)?"
_ZONE = r"\s*(?:Z|UTC|GMT|[+-]\d{2}:?\d{2})?"
_YMD = re.compile(rf"^(\d{{4}})[-/.](\d{{1,2}})[-/.](\d{{1,2}}){_TIME}{_ZONE}$")
_XYY = re.compile(rf"^(\d{{1,2}})([-/.])(\d{{1,2}})\2(\d{{4}}){_TIME}{_ZONE}$")
_SHAPES = {"iso": _YMD.pattern, "slashed": _XYY.pattern, "yyyymmdd": r"^\d{8}$",
           "epoch-s": r"^\d{9,10}(?:\.\d+)?$", "epoch-ms": r"^\d{12,13}$"}


class DateFormatError(ValueError):
    """The date column cannot be read without a guess, or `--date-format` is not a format."""


def check_format(date_format: str | None) -> str | None:
    """`date_format` as parse_dates takes it (names lower-cased); DateFormatError if unknown."""
    if date_format is None or "%" in date_format:
        return date_format
    key = date_format.strip().lower()
    if key not in DATE_FORMATS:
        raise DateFormatError(
            f"unknown --date-format {date_format[:40]!r}: use one of "
            + ", ".join(f"{k} ({v})" for k, v in DATE_FORMATS.items())
            + ", or a strftime pattern such as '%d-%b-%Y'")
    return key


def parse_dates(values: pd.Index, date_format: str | None = None, tz: str = "UTC"
                ) -> tuple[pd.DatetimeIndex, dict[str, int]]:
    """Each distinct value's date (tz-naive midnight, NaT where unparseable) and how many
    values each format read (e.g. {"M/D/YYYY": 1511}); see the module docstring."""
    idx = pd.Index(values)
    fmt = check_format(date_format)
    if idx.dtype.kind == "M":
        ts = pd.DatetimeIndex(idx)
        ts = ts.tz_localize(None) if ts.tz is not None else ts
        return ts.normalize(), {"datetime": int(ts.notna().sum())}
    text = _as_text(idx)
    out = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[ns]")
    used: dict[str, int] = {}
    if fmt is not None and "%" in fmt:
        got = pd.DatetimeIndex(pd.to_datetime(text, format=fmt, errors="coerce"))
        got = got.tz_localize(None) if got.tz is not None else got
        used[fmt] = int(got.notna().sum())
        return got.normalize(), used
    family = _families(text)
    wanted = ["iso", "slashed", "yyyymmdd", "epoch-s", "epoch-ms"]
    if fmt is not None:
        wanted = ["slashed" if fmt in ("mdy", "dmy") else fmt]
    for fam in wanted:
        pick = np.flatnonzero(family == fam)
        if pick.size == 0:
            continue
        sub = text[pick]
        name = fam
        if fam == "iso":
            days = _from_fields(sub, _YMD, (1, 2, 3))
        elif fam == "slashed":
            name = fmt or _day_month_order(sub)
            days = _from_fields(sub, _XYY, (4, 1, 3) if name == "mdy" else (4, 3, 1))
        elif fam == "yyyymmdd":
            days = pd.DatetimeIndex(pd.to_datetime(sub, format="%Y%m%d", errors="coerce"))
        else:
            days = _from_epoch(sub.astype(float), 1 if fam == "epoch-s" else 1000, tz)
        out[pick] = days.to_numpy().astype("datetime64[ns]")
        used[FAMILY_TEXT[name]] = int(days.notna().sum())
    return pd.DatetimeIndex(out).normalize(), used


def _as_text(idx: pd.Index) -> pd.Index:
    if idx.dtype.kind == "f":  # 20200102.0 from a float column: the integer's digits
        whole = np.isfinite(idx.to_numpy()) & (np.mod(idx.to_numpy(), 1) == 0)
        return pd.Index(np.where(whole, np.nan_to_num(idx.to_numpy()).astype(np.int64).astype(
            str), ""), dtype=object)
    return idx.astype(str).str.strip()


def _families(text: pd.Index) -> np.ndarray:
    family = np.full(len(text), "", dtype=object)
    for name, pattern in _SHAPES.items():
        hit = np.asarray(text.str.match(pattern), dtype=bool) & (family == "")
        family[hit] = name
    return family


def _day_month_order(text: pd.Index) -> str:
    """'mdy' or 'dmy' for values of the day-or-month-first family, read off the values."""
    parts = text.str.extract(_XYY)
    first = pd.to_numeric(parts[0]).to_numpy()
    second = pd.to_numeric(parts[2]).to_numpy()
    day_only, month_only = (first > 12) & (second <= 12), (second > 12) & (first <= 12)
    day_first, month_first = bool(day_only.any()), bool(month_only.any())
    if day_first and month_first:  # a value with both fields above 12 is no date at all
        a, b = text[day_only][0], text[month_only][0]
        raise DateFormatError(
            f"dates are written both day-first ({a!r}) and month-first ({b!r}): give "
            "--date-format dmy or mdy (rows in the other order are then rejected)")
    if day_first:
        return "dmy"
    if month_first or bool((first == second).all()):
        return "mdy"
    raise DateFormatError(
        f"dates like {text[0]!r} are ambiguous: no value has a day above 12, so "
        f"{text[0]!r} could be month-first or day-first; give --date-format mdy (M/D/YYYY) "
        "or dmy (D/M/YYYY)")


def _from_fields(text: pd.Index, pattern: re.Pattern[str], order: tuple[int, int, int]
                 ) -> pd.DatetimeIndex:
    parts = text.str.extract(pattern)
    y, m, d = (pd.to_numeric(parts[k - 1]) for k in order)
    frame = pd.DataFrame({"year": y, "month": m, "day": d})
    return pd.DatetimeIndex(pd.to_datetime(frame, errors="coerce"))


def _from_epoch(seconds_or_ms: pd.Index, per_second: int, tz: str) -> pd.DatetimeIndex:
    seconds = np.asarray(seconds_or_ms, dtype=np.float64) / per_second
    instants = pd.DatetimeIndex(pd.to_datetime(seconds, unit="s", utc=True, errors="coerce"))
    if bool((np.mod(seconds, 86400) == 0).all()):
        return instants.tz_localize(None).normalize()
    return instants.tz_convert(tz).tz_localize(None).normalize()
