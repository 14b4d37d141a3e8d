"""Every environment variable technic reads, in one place (pydantic-settings).

Read once where a process starts (`technic` CLI, `create_app`, `build_app`) and passed down;
nothing below those reads the environment itself. Names are `TECHNIC_<FIELD>` except
`REDIS_URL`. A malformed value is an error naming the variable at start-up, not a surprise
later.

| variable | default | meaning |
|---|---|---|
| TECHNIC_DATA_DIR | per-user folder | data dir: a path or s3:// gs:// abfs:// file:// URI |
| TECHNIC_MODELS_DIR | shipped models/ | alpha models scans read; `models train` writes there too |
| TECHNIC_API_KEYS | (none: open API) | comma-separated plain keys |
| TECHNIC_API_KEY_HASHES | (none) | comma-separated `sha256:<hex>` keys |
| TECHNIC_RATE_LIMIT | (off) | per key / client, e.g. `20/s`, `100/min` |
| TECHNIC_TRUSTED_PROXIES | (none) | proxies whose X-Forwarded-For is believed |
| TECHNIC_MAX_BODY_BYTES | 65536 | request body limit (413 over it) |
| TECHNIC_CACHE_TTL_S | 300 | shared (Redis) result cache TTL |
| TECHNIC_CACHE_L1_ENTRIES | 16 | in-process entries in front of Redis |
| TECHNIC_CACHE_TIMEOUT_S | 0.1 | Redis call timeout |
| TECHNIC_CACHE_RETRY_S | 5 | wait before retrying Redis after a failure |
| TECHNIC_OBJECT_STORE_MB | 256 | Ray object store size (`deployments.launch`) |
| REDIS_URL | (none: in-process cache) | shared result cache and rate limits |
"""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from technic_v4.data.store_fs import DataRoot, data_root


class Settings(BaseSettings):
    """technic's configuration from the environment (module docstring)."""

    model_config = SettingsConfigDict(env_prefix="TECHNIC_", extra="ignore",
                                      populate_by_name=True)

    data_dir: str | None = None
    models_dir: str | None = None
    api_keys: str = ""
    api_key_hashes: str = ""
    rate_limit: str | None = None
    trusted_proxies: str = ""
    max_body_bytes: int = Field(64 * 1024, ge=1)
    cache_ttl_s: float = 300.0  # checked by RedisStore (a TTL must be > 0)
    cache_l1_entries: int = Field(16, ge=0)
    cache_timeout_s: float = Field(0.1, gt=0)
    cache_retry_s: float = Field(5.0, ge=0)
    object_store_mb: int = Field(256, ge=64)
    redis_url: str = Field("", validation_alias=AliasChoices("REDIS_URL", "redis_url"))

    def data_root(self) -> DataRoot:
        """The data dir (checked), else the per-user data folder (~/.local/share/technic)."""
        if self.data_dir:
            return data_root(self.data_dir)
        return Path(platformdirs.user_data_dir("technic"))

    def models_root(self) -> Path | None:
        """The models dir when set (None: the shipped models/, see alpha/registry.py)."""
        return Path(self.models_dir).expanduser() if self.models_dir else None
