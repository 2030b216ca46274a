"""The late-commit race on the shared PostgreSQL store: provider records stamp no earlier than the watermark."""

from __future__ import annotations

import pytest

from tasks.settings import reset_settings


@pytest.fixture
def shared_store(pg_server, monkeypatch, tmp_path):
    monkeypatch.setenv("CAMPAIGNS_STORE", "postgres")
    monkeypatch.setenv("CAMPAIGNS_STORE_URL", pg_server.url)
    monkeypatch.setenv("CAMPAIGNS_DIAL_PACE_SECONDS", "0")
    reset_settings()
    from tasks.store import connect

    with connect() as conn:  # a clean store for this test
        for table in ("calls", "dial_runs", "campaign_contacts", "contact_stats", "metrics_daily", "metrics_state",
                      "contacts", "campaigns", "phone_numbers", "agents"):
            conn.execute(f"delete from {table}")
    from tasks.store import shared_store_url

    assert shared_store_url() == pg_server.url
    yield tmp_path / "unused.duckdb"
    reset_settings()


def test_a_pass_that_commits_late_is_aggregated_on_the_shared_store(shared_store):
    from tests.factories import make_campaign_db
    from tests.tasks import test_metrics_watermark as race

    race.test_a_pass_that_commits_late_is_aggregated_by_the_next_run(make_campaign_db(shared_store))
