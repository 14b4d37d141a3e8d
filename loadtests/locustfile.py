"""Locust users for technic: what real clients do, and what broken clients send.

    MixedUser     the realistic mix: full scans (mostly cached, some `Cache-Control:
                  no-cache`), sector scans with filters, chart lookups for random symbols,
                  universe/sector listings, and bad requests that must be refused with the
                  documented 4xx (a bad request that gets anything else is a failure)
    FullScanUser  back-to-back full-universe scans, no think time (throughput: scans/s);
                  TECHNIC_LOCUST_NO_CACHE=1 makes every one bypass the result cache
    UncachedScanUser  back-to-back `Cache-Control: no-cache` scans, limits 5, 25 and none in
                  turn, every answer checked: 200, JSON whose meta adds up (attempted = kept +
                  rejected + errors, one row per kept symbol); with TECHNIC_LOCUST_EXPECT=
                  file.json ({"<limit>": {attempted, kept, rejected, errors, symbols}}, limit
                  "0" = none) also equal to it. Anything else is a failed request. Used by
                  tests/test_faults.py while it kills replicas.

Run through loadtests/run_headless.py (starts and stops the server), or by hand:
    locust -f loadtests/locustfile.py --headless -u 16 -r 16 -t 30s \
        --host http://127.0.0.1:8000 MixedUser
Set TECHNIC_API_KEY when the server has TECHNIC_API_KEYS.
"""

import itertools
import json
import os
import random
from pathlib import Path

import gevent
from locust import FastHttpUser, between, events, task
from locust.stats import CSV_STATS_INTERVAL_SEC

API_KEY = os.environ.get("TECHNIC_API_KEY", "")
NO_CACHE = os.environ.get("TECHNIC_LOCUST_NO_CACHE", "") == "1"
EXPECT_PATH = os.environ.get("TECHNIC_LOCUST_EXPECT", "")
SECTORS = ["Technology", "Healthcare", "Energy", "Financials", "Utilities", "Industrials",
           "Consumer Cyclical", "Real Estate", "Materials", "Communication Services"]
BAD_REQUESTS = [  # (method, path, json body, expected status)
    ("POST", "/v1/scan", {"sectors": ["Technologyy"]}, 422),
    ("POST", "/v1/scan", {"sort_by": "Price"}, 422),
    ("POST", "/v1/scan", {"limit": -5}, 422),
    ("POST", "/v1/scan", {"as_of_date": "1990-01-02"}, 422),
    ("POST", "/v1/scan", {"signals": ["Buy now"]}, 422),
    ("GET", "/v1/symbols/ZZZZZZ", None, 404),
    ("GET", "/v1/symbols/A$B", None, 422),
    ("GET", "/v1/symbols/AAPL?days=99999", None, 422),
    ("GET", "/v1/universe?sector=Nowhere", None, 422),
]


class _TechnicUser(FastHttpUser):
    abstract = True

    def on_start(self) -> None:
        self.headers = {"X-API-Key": API_KEY} if API_KEY else {}
        with self.client.get("/v1/universe", headers=self.headers, name="/v1/universe",
                             catch_response=True) as r:
            rows = r.json().get("rows", []) if r.status_code == 200 else []
        self.symbols = [row["symbol"] for row in rows] or ["AAPL"]

    def scan(self, body: dict, name: str, fresh: bool = False) -> None:
        headers = {**self.headers, **({"Cache-Control": "no-cache"} if fresh else {})}
        with self.client.post("/v1/scan", json=body, headers=headers, name=name,
                              catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}: {r.text[:200]}")
            elif b'"rows"' not in (r.content or b""):
                r.failure("no rows in the body")


class MixedUser(_TechnicUser):
    wait_time = between(0.05, 0.5)

    @task(4)
    def full_scan(self) -> None:
        self.scan({}, "/v1/scan [full]")

    @task(1)
    def full_scan_uncached(self) -> None:
        self.scan({"limit": random.choice([50, 100, 500])}, "/v1/scan [full, no-cache]",
                  fresh=True)

    @task(4)
    def sector_scan(self) -> None:
        body = {"sectors": random.sample(SECTORS, random.choice([1, 2])),
                "min_tech_rating": random.choice([None, 0, 20]), "limit": 50}
        self.scan({k: v for k, v in body.items() if v is not None}, "/v1/scan [sector]")

    @task(4)
    def symbol_lookup(self) -> None:
        sym = random.choice(self.symbols)
        days = random.choice([21, 63, 252, 1260])
        self.client.get(f"/v1/symbols/{sym}?days={days}", headers=self.headers,
                        name="/v1/symbols/[symbol]")

    @task(1)
    def listings(self) -> None:
        self.client.get("/v1/sectors", headers=self.headers, name="/v1/sectors")

    @task(2)
    def bad_request(self) -> None:
        method, path, body, expected = random.choice(BAD_REQUESTS)
        with self.client.request(method, path, json=body, headers=self.headers,
                                 name=f"bad {method} {path.split('?')[0][:24]}",
                                 catch_response=True) as r:
            if r.status_code == expected:
                r.success()
            else:
                r.failure(f"expected {expected}, got {r.status_code}: {r.text[:200]}")


class FullScanUser(_TechnicUser):
    wait_time = between(0, 0)

    @task
    def full_scan(self) -> None:
        self.scan({}, "/v1/scan [full]", fresh=NO_CACHE)


class UncachedScanUser(_TechnicUser):
    """Uncached scans back to back; a wrong or incomplete answer is a failure, not a success."""

    wait_time = between(0, 0)
    expected: dict[int, dict] = ({int(k): v for k, v in
                                  json.loads(Path(EXPECT_PATH).read_text()).items()}
                                 if EXPECT_PATH else {})

    def on_start(self) -> None:  # no universe lookup: only scans count in this run
        self.headers = {"X-API-Key": API_KEY} if API_KEY else {}
        limits = sorted(self.expected) or [5, 25, 0]
        self.limits = itertools.islice(itertools.cycle(limits), random.randrange(len(limits)),
                                       None)

    @task
    def uncached_scan(self) -> None:
        limit = next(self.limits)
        body = {"limit": limit} if limit else {}
        with self.client.post("/v1/scan", json=body, catch_response=True,
                              headers={**self.headers, "Cache-Control": "no-cache"},
                              name=f"/v1/scan [no-cache, limit {limit or 'none'}]") as r:
            problem = (f"{r.status_code}: {(r.text or '')[:200]}" if r.status_code != 200
                       else answer_problem(r.content, self.expected.get(limit)))
            if problem:
                r.failure(problem)
            else:
                r.success()


def answer_problem(content: bytes | None, want: dict | None) -> str:
    """Why a scan's JSON answer is incomplete or not the expected one; "" when it is right."""
    try:
        out = json.loads(content or b"")
        meta, rows = out["meta"], out["rows"]
        counts = [int(meta[k]) for k in ("attempted", "kept", "rejected", "errors")]
    except (ValueError, KeyError, TypeError) as exc:
        return f"not a scan answer: {exc!r}"
    attempted, kept, rejected, errors = counts
    if attempted != kept + rejected + errors:
        return f"meta does not add up: {meta}"
    if len(rows) != kept:
        return f"{len(rows)} rows for {kept} kept symbols"
    if want is None:
        return ""
    wanted = [want[k] for k in ("attempted", "kept", "rejected", "errors")]
    if counts != wanted:
        return f"counts {counts} != expected {wanted} (attempted, kept, rejected, errors)"
    symbols = [row.get("symbol", row.get("Symbol")) for row in rows]
    return "" if symbols == want["symbols"] else "symbols differ from the expected answer"


@events.quitting.add_listener
def _complete_report(environment, **_) -> None:
    """Make what Locust reports at exit complete, however the run ends. On SIGTERM Locust
    fires `quitting`, then computes its exit code, then stops the users: stop them here first
    (gracefully: a task in flight gets --stop-timeout to end), so scans in flight count in the
    exit code and the summary; after --run-time they are already stopped and this is a no-op.
    Locust rewrites its --csv files every CSV_STATS_INTERVAL_SEC and not again at exit: one
    more interval lets it write the final counts."""
    if environment.runner is not None:
        environment.runner.stop()
    gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.5)
