"""The factory that picks the provider from the settings."""

from __future__ import annotations

import pytest

from tasks.errors import UserError
from tasks.settings import Settings
from tasks.telephony import make_provider, simulator_path
from tasks.telephony.retell import RetellProvider
from tasks.telephony.simulator import SimulatedProvider


def test_simulator_by_default_beside_the_store(tmp_path):
    settings = Settings(db=tmp_path / "store" / "campaigns.duckdb", simulator_seed=9, provider_concurrency_limit=7)
    provider = make_provider(settings)
    assert isinstance(provider, SimulatedProvider)
    assert (provider.path, provider.seed, provider.concurrency_limit) == (tmp_path / "store" / "simulator.sqlite", 9, 7)


def test_explicit_db_wins_over_settings(tmp_path):
    provider = make_provider(Settings(db=tmp_path / "a.duckdb"), db=tmp_path / "other" / "b.duckdb")
    assert provider.path == tmp_path / "other" / "b.simulator.sqlite"  # b.duckdb keeps its own


def test_configured_simulator_path(tmp_path):
    assert simulator_path(Settings(simulator_path=tmp_path / "x.sqlite")) == tmp_path / "x.sqlite"


def test_the_configured_simulator_path_serves_the_configured_store_when_it_is_passed(tmp_path):
    # the CLI and the flows pass the configured store as `db`: CAMPAIGNS_SIMULATOR_PATH was ignored by every command
    settings = Settings(db=tmp_path / "campaigns.duckdb", simulator_path=tmp_path / "sim" / "x.sqlite")
    assert simulator_path(settings, db=tmp_path / "campaigns.duckdb") == tmp_path / "sim" / "x.sqlite"
    assert simulator_path(settings, db=str(tmp_path / "." / "campaigns.duckdb")) == tmp_path / "sim" / "x.sqlite"
    assert make_provider(settings, db=tmp_path / "campaigns.duckdb").path == tmp_path / "sim" / "x.sqlite"
    # another store keeps its own: two stores number their attempt keys alike
    assert simulator_path(settings, db=tmp_path / "demo.duckdb") == tmp_path / "demo.simulator.sqlite"


def test_settings_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CAMPAIGNS_DB", str(tmp_path / "env.duckdb"))
    monkeypatch.setenv("CAMPAIGNS_PROVIDER_CONCURRENCY_LIMIT", "4")
    provider = make_provider(Settings())
    assert (provider.path, provider.concurrency_limit) == (tmp_path / "env.simulator.sqlite", 4)


def test_retell_needs_the_key_from_the_environment(monkeypatch):
    monkeypatch.delenv("RETELL_API_KEY", raising=False)
    with pytest.raises(UserError, match="RETELL_API_KEY"):
        make_provider(Settings(provider="retell"))


def test_retell_with_key(monkeypatch):
    monkeypatch.setenv("RETELL_API_KEY", "sk-from-env")
    provider = make_provider(Settings(provider="retell", retell_base_url="http://127.0.0.1:9"))
    assert isinstance(provider, RetellProvider) and provider.name == "retell"
    provider.close()
