"""Locust users for technic: what real clients do, and what broken clients send.

    MixedUser     the realistic mix: full scans (mostly cached, some `Cache-Control:
                  no-cache`), sector scans with filters, chart lookups for random symbols,
                  universe/sector listings, and bad requests that must be refused with the
                  documented 4xx (a bad request that gets anything else is a failure)
    FullScanUser  back-to-back full-universe scans, no think time (throughput: scans/s);
                  TECHNIC_LOCUST_NO_CACHE=1 makes every one bypass the result cache

Run through loadtests/run_headless.py (starts and stops the server), or by hand:
    locust -f loadtests/locustfile.py --headless -u 16 -r 16 -t 30s \
        --host http://127.0.0.1:8000 MixedUser
Set TECHNIC_API_KEY when the server has TECHNIC_API_KEYS.
"""

import os
import random

from locust import FastHttpUser, between, task

API_KEY = os.environ.get("TECHNIC_API_KEY", "")
NO_CACHE = os.environ.get("TECHNIC_LOCUST_NO_CACHE", "") == "1"
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
