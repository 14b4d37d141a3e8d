"""`technic live` in-process: a replayed session file and Alpaca's stream (a local server)
printed a line per batch with the status; wrong input is one `error:` line, exit status 2."""

from __future__ import annotations

import asyncio
import threading

import pandas as pd
import pytest
from alpaca_stub import KEY, SECRET, AlpacaStream, bar_msg
from technic_cli import technic

OPEN = pd.Timestamp("2026-10-30 13:30", tz="UTC")


@pytest.fixture
def session_file(tmp_path):
    rows = [{"ts": OPEN + pd.Timedelta(minutes=k), "symbol": s, "open": 10.0 + k,
             "high": 11.0 + k, "low": 9.0 + k, "close": 10.5 + k, "volume": 100.0}
            for k in range(3) for s in ("AAA", "BBB", "CCC", "DDD")]
    path = tmp_path / "session.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


def test_a_replayed_file_prints_a_line_per_minute_and_the_status(session_file, capsys):
    assert technic("live", "--from-file", str(session_file), "--speed", "max") == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split()[1] for line in lines] == ["13:30Z", "13:31Z", "13:32Z"]
    assert "4 bars" in lines[0] and "AAA 10.5, BBB 10.5, CCC 10.5, +1" in lines[0]
    assert "replay:session.parquet: done, 12 bars in 3 batches" in err


def test_symbols_filter_a_replay_and_max_batches_stops_it(session_file, capsys):
    assert technic("live", "--from-file", str(session_file), "--speed", "max",
                   "--symbol", "bbb,DDD", "--max-batches", "2") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("2 bars  BBB" in line for line in lines)


@pytest.mark.parametrize("args, message", [
    ((), "choose one source"),
    (("--alpaca", "--replay", "2026-10-30"), "choose one source"),
    (("--replay", "30/10/2026"), "not a date"),
    (("--from-file", "missing.parquet"), "missing.parquet"),
    (("--alpaca",), "needs the symbols"),
    (("--alpaca", "--symbol", "AAA"), "ALPACA_API_KEY_ID"),
])
def test_wrong_input_is_one_error_line(args, message, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("ALPACA_API_KEY_ID", "APCA_API_KEY_ID", "ALPACA_API_SECRET_KEY",
                 "APCA_API_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert technic("live", *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and err.count("\n") == 1


def test_symbols_with_no_bar_in_the_session_are_named(session_file, capsys):
    assert technic("live", "--from-file", str(session_file), "--symbol", "ZZZ,YYY") == 2
    assert "none of YYY, ZZZ has a bar in replay:session.parquet" in capsys.readouterr().err


def test_a_bad_speed_is_named(session_file, capsys):
    assert technic("live", "--from-file", str(session_file), "--speed", "fast") == 2
    assert "speed 'fast'" in capsys.readouterr().err


class StreamThread:
    """The Alpaca stream stub on a loop of its own, so the command's loop can connect."""

    def __init__(self, scripts):
        self.stub = AlpacaStream(scripts)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> AlpacaStream:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.stub.__aenter__(), self.loop).result(30)
        return self.stub

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.stub.__aexit__(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


def test_alpaca_bars_are_printed_as_they_arrive(capsys, monkeypatch):
    steps = [("send", [bar_msg(s, OPEN + pd.Timedelta(minutes=k), 5.0 + k)
                       for s in ("AAA", "BBB")]) for k in range(3)] + [("hold",)]
    with StreamThread([{"steps": steps}]) as stream:
        monkeypatch.setenv("ALPACA_API_KEY_ID", KEY)
        monkeypatch.setenv("ALPACA_API_SECRET_KEY", SECRET)
        monkeypatch.setenv("TECHNIC_ALPACA_STREAM_URL", stream.url)
        code = technic("live", "--alpaca", "--symbol", "AAA,BBB", "--max-batches", "2")
    out, err = capsys.readouterr()
    assert code == 0, err
    assert [line.split()[1] for line in out.splitlines()] == ["13:30Z", "13:31Z"]
    assert "alpaca:iex: streaming" in err and "alpaca:iex: done," in err
    assert "in 2 batches, last 13:32Z" in err  # 13:32's first bar closed 13:31


def test_a_refused_alpaca_key_fails_with_the_status(capsys, monkeypatch):
    with StreamThread([{"steps": []}]) as stream:
        monkeypatch.setenv("ALPACA_API_KEY_ID", "wrong")
        monkeypatch.setenv("ALPACA_API_SECRET_KEY", SECRET)
        monkeypatch.setenv("TECHNIC_ALPACA_STREAM_URL", stream.url)
        code = technic("live", "--alpaca", "--symbol", "AAA")
    err = capsys.readouterr().err
    assert code == 2 and "failed" in err and "error: alpaca stream error 402" in err
