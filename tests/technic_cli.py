"""`technic(*args)`: the CLI run in this process, as a shell would, returning its exit status
(tests read what it printed with capsys)."""

from __future__ import annotations


def technic(*args: str) -> int:
    from technic_v4.cli import app

    try:
        app(list(args), prog_name="technic")
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
