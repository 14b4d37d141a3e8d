"""The suite runs the same whatever the user's shell holds: conftest.py drops every
`TECHNIC_*` variable and points the per-user folders into the run's own temporary home,
for the tests and for the processes they start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json, os
from technic_v4.settings import Settings
s = Settings()
print(json.dumps({"technic": sorted(k for k in os.environ if k.startswith("TECHNIC_")),
                  "data": str(s.data_root()), "state": str(s.state_root()),
                  "models": s.models_root() and str(s.models_root())}))
"""


def test_a_started_process_sees_none_of_the_users_settings_or_folders():
    home = Path(os.environ["PYTEST_TECHNIC_HOME"]).resolve()
    assert not [k for k in os.environ if k.startswith("TECHNIC_")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout)
    assert seen["technic"] == [] and seen["models"] is None, seen
    for key in ("data", "state"):
        assert Path(seen[key]).resolve().is_relative_to(home), (key, seen[key], home)
    assert not Path(seen["data"]).resolve().is_relative_to(Path.home() / ".local"), seen
