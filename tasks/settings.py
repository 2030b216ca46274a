"""The one object that reads the environment: database, provider, keys, rates, timeouts."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"


class Settings(BaseSettings):
    """Runtime configuration; every field can be set as CAMPAIGNS_<FIELD> in the environment."""

    model_config = SettingsConfigDict(env_prefix="CAMPAIGNS_", extra="ignore")

    db: Path = Field(default=DATA_DIR / "campaigns.duckdb", description="DuckDB system-of-record file")
    analytics_db: Path | None = Field(
        default=None, description="read-only analyst snapshot; default analytics.duckdb beside db"
    )
    lock_timeout_seconds: float = Field(default=30.0, ge=0, description="how long to wait for a DuckDB file lock")
    provider: str = Field(default="simulator", pattern="^(simulator|retell)$")
    simulator_seed: int = 42
    retell_base_url: str = "https://api.retellai.com"
    # The key is only ever read from the environment (RETELL_API_KEY), never stored.
    retell_api_key: SecretStr | None = Field(default=None, validation_alias="RETELL_API_KEY")
    dial_pace_seconds: float = Field(default=3.0, ge=0, description="pause between calls of a batch")
    provider_concurrency_limit: int = Field(default=20, ge=1)
    simulator_path: Path | None = Field(default=None, description="simulator state; default simulator.sqlite beside db")
    simulator_rate_limit_per_second: float | None = Field(default=None, gt=0)
    retell_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    retell_read_timeout_seconds: float = Field(default=15.0, gt=0)
    retell_max_tries: int = Field(default=4, ge=1, description="tries per Retell request (429/5xx/timeouts)")
    retell_backoff_seconds: float = Field(default=0.5, ge=0, description="first retry delay; doubles, jittered")
    retell_lookup_hours: float = Field(default=48.0, gt=0, description="how far back find_by_attempt_key lists calls")
    run_lease_seconds: float = Field(default=120.0, gt=0, description="a remote dial run without heartbeat for this long is dead")
    reconcile_grace_seconds: float = Field(default=300.0, ge=0, description="wait before closing an unconfirmed placement as not placed")
    stuck_call_minutes: float = Field(default=30.0, gt=0)
    # A call the provider still reports in flight is believed this long (Retell's longest call is 1 h by
    # default): closing it earlier would release the contact for a redial while they may be on the line.
    max_call_minutes: float = Field(default=120.0, gt=0, description="a call reported in flight is closed as stuck only after this")
    credits_per_answered_minute: int = 333
    credits_per_voicemail: int = 75
    do_not_call_key: str = "do_not_call"
    dashboard_password: SecretStr | None = None
    dashboard_idle_hours: float = Field(default=12.0, gt=0, description="a password sign-in ends after this long idle")
    prefect_deployments: bool = Field(default=False, description="Run button triggers a deployment")
    dashboard_lock_timeout_seconds: float = Field(default=5.0, ge=0, description="how long a dashboard read waits for a lock")
    # Smart dialing: a number crossing these in 24 h is taken out of rotation (tasks/number_health.py).
    number_max_spam_marks: int = Field(default=3, ge=1, description="spam marks in 24 h that pause a number")
    number_max_spam_share: float = Field(default=0.02, ge=0, le=1, description="...when also this share of its calls")
    number_min_connection_rate: float = Field(default=0.05, ge=0, le=1, description="lowest 24 h connection rate")
    number_health_min_calls: int = Field(default=50, ge=1, description="calls in 24 h before the rate is judged")

    # Scale-out (flows/cluster.py, flows/serve_cluster.py): the local PostgreSQL and the global call limit.
    pg_bin_dir: Path | None = Field(default=None, description="PostgreSQL server programs; default /usr/lib/postgresql/<newest>/bin")
    call_slots_limit_name: str = Field(default="provider-calls", description="Prefect global concurrency limit of calls in flight")
    call_slot_lease_seconds: float = Field(default=1200.0, gt=0, description="a held call slot expires after this (a dead worker's calls)")
    # The store backend (tasks/store.py): the embedded DuckDB file, or PostgreSQL tables shared by many workers.
    store: str = Field(default="duckdb-file", pattern="^(duckdb-file|postgres)$",
                       description="duckdb-file (one writer process) or postgres (many workers, CAMPAIGNS_STORE_URL)")
    # A libpq URL or key=value string; it may carry a password, so it is only ever read from the environment.
    store_url: SecretStr | None = Field(default=None, description="shared store, e.g. postgresql://user@host:5432/campaigns")

    def analytics_path(self) -> Path:
        return self.analytics_db or self.db.with_name("analytics.duckdb")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment)."""
    get_settings.cache_clear()
