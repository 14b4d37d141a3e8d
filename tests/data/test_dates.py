"""Dates as vendors write them (technic_v4/data/dates.py): each format written from known
days with the standard library, then read back, detected and given; ambiguity refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from technic_v4.data.dates import DateFormatError, check_format, parse_dates

DAYS = pd.to_datetime(["2019-01-02", "2019-03-15", "2020-02-29", "2021-12-31", "2024-07-05"])
WRITERS = {  # format name -> how a vendor writes day d
    "iso": lambda d: d.strftime("%Y-%m-%dT16:00:00-05:00"),
    "mdy": lambda d: f"{d.month}/{d.day}/{d.year} 16:00:00",
    "dmy": lambda d: f"{d.day}.{d.month}.{d.year}",
    "yyyymmdd": lambda d: d.strftime("%Y%m%d"),
    "epoch-s": lambda d: str(int(datetime(d.year, d.month, d.day, tzinfo=UTC)
                                 .timestamp())),
    "epoch-ms": lambda d: str(int(datetime(d.year, d.month, d.day, tzinfo=UTC)
                                  .timestamp()) * 1000),
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_each_format_reads_back_detected_and_given(name) -> None:
    text = pd.Index([WRITERS[name](d) for d in DAYS])
    detected, used = parse_dates(text)
    given, _ = parse_dates(text, name)
    assert list(detected) == list(DAYS) == list(given)
    assert sum(used.values()) == len(DAYS)


def test_formats_mix_by_value_and_a_bad_value_is_nat() -> None:
    text = pd.Index([WRITERS["iso"](DAYS[0]), WRITERS["mdy"](DAYS[1]), "31/31/2020", "soon"])
    got, used = parse_dates(text)
    assert list(got[:2]) == list(DAYS[:2]) and got[2:].isna().all()
    assert used == {"YYYY-MM-DD": 1, "M/D/YYYY": 1}  # values each format read


def test_an_epoch_off_midnight_takes_the_exchange_s_local_date() -> None:
    midnight_seoul = int(datetime(2020, 1, 2, tzinfo=UTC).timestamp()) - 9 * 3600
    got, _ = parse_dates(pd.Index([str(midnight_seoul)]), tz="Asia/Seoul")
    assert list(got) == [pd.Timestamp("2020-01-02")]


def test_ambiguous_or_contradictory_day_month_order_is_refused() -> None:
    with pytest.raises(DateFormatError, match="ambiguous"):
        parse_dates(pd.Index(["01/02/2020", "03/04/2020"]))
    with pytest.raises(DateFormatError, match="both day-first"):
        parse_dates(pd.Index(["13/02/2020", "02/13/2020"]))
    got, _ = parse_dates(pd.Index(["05/05/2020"]))  # the same day either way
    assert list(got) == [pd.Timestamp("2020-05-05")]
    with pytest.raises(DateFormatError, match="unknown --date-format"):
        check_format("ddmmyy")
    got, _ = parse_dates(pd.Index(["02-Jan-2020"]), "%d-%b-%Y")
    assert list(got) == [pd.Timestamp("2020-01-02")]
