"""Telephony providers: one interface (base), the embedded simulator, the Retell adapter."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tasks.settings import Settings, get_settings
from tasks.telephony.base import TelephonyProvider


def simulator_path(settings: Settings | None = None, *, db: str | Path | None = None) -> Path:
    """Where the simulator keeps its calls: the configured file (CAMPAIGNS_SIMULATOR_PATH) for the configured store,
    else simulator.sqlite beside the store.

    The configured file belongs to the configured store (CAMPAIGNS_DB), which the CLI and the flows pass as `db`:
    another store (the demo's, a forecast's copy, a test's) keeps its own beside it, because the simulator finds calls
    by attempt key and two stores number their attempts alike.
    """
    from tasks.store import companion_path, same_file

    settings = settings or get_settings()
    if settings.simulator_path is not None and (db is None or same_file(Path(db), Path(settings.db))):
        return settings.simulator_path

    return companion_path(db if db is not None else settings.db, "simulator.sqlite")


def make_provider(settings: Settings | None = None, *, db: str | Path | None = None) -> TelephonyProvider:
    """The provider the settings choose (CAMPAIGNS_PROVIDER=simulator|retell), built for flows to receive."""
    settings = settings or get_settings()
    if settings.provider == "retell":
        from tasks.errors import UserError
        from tasks.telephony.retell import RetellProvider

        if settings.retell_api_key is None or not settings.retell_api_key.get_secret_value():
            raise UserError("CAMPAIGNS_PROVIDER=retell needs RETELL_API_KEY in the environment")
        return RetellProvider(
            settings.retell_base_url,
            settings.retell_api_key,
            concurrency_limit=settings.provider_concurrency_limit,
            connect_timeout=settings.retell_connect_timeout_seconds,
            read_timeout=settings.retell_read_timeout_seconds,
            max_tries=settings.retell_max_tries,
            backoff_seconds=settings.retell_backoff_seconds,
            lookup_window=timedelta(hours=settings.retell_lookup_hours),
        )
    from tasks.telephony.simulator import SimulatedProvider

    return SimulatedProvider(
        simulator_path(settings, db=db),
        seed=settings.simulator_seed,
        concurrency_limit=settings.provider_concurrency_limit,
        rate_limit_per_second=settings.simulator_rate_limit_per_second,
    )
