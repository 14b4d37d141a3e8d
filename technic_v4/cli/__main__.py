"""`python -m technic_v4.cli`: the `technic` command."""

from technic_v4.cli import app

app()
