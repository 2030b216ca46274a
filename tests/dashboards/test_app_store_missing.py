"""A store file that is missing or empty: every page shows one error naming it and creates nothing, through AppTest.

The dashboard used to create an empty database at a mistyped CAMPAIGNS_DB on its first read (started with
`streamlit run`, or the file deleted while it ran) and show an empty campaign list.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tasks.errors import StoreError
from tasks.settings import reset_settings
from tests.factories import make_campaign_db

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")
PAGES = [None, "pages/campaigns.py", "pages/wizard.py", "pages/campaign.py"]


@pytest.fixture
def configured(tmp_path, monkeypatch):
    """Point CAMPAIGNS_DB at a path (the test decides what is there)."""

    def point_at(path: Path) -> Path:
        monkeypatch.setenv("CAMPAIGNS_DB", str(path))
        reset_settings()
        return path

    yield point_at
    reset_settings()


def run_app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    if page:
        at.query_params["campaign"] = "1"  # the campaign page reads one
        at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def only_error(at: AppTest) -> str:
    """The one error the page shows, and that nothing else was drawn in the main area."""
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    assert not at.title and not at.dataframe and not at.button, "the page went on after the error"
    return errors[0]


@pytest.mark.parametrize("page", PAGES)
def test_a_missing_store_shows_one_error_and_creates_nothing(configured, tmp_path, page):
    path = configured(tmp_path / "x" / "typo.duckdb")
    at = run_app(page)
    assert only_error(at) == f"The database cannot be used: {path}: no database there (campaigns init creates one)"
    assert not path.parent.exists()  # no file, no folder


@pytest.mark.parametrize("page", PAGES)
def test_an_empty_store_file_shows_one_error_and_is_left_alone(configured, tmp_path, page):
    path = configured(tmp_path / "touched.duckdb")
    path.touch()
    at = run_app(page)
    assert only_error(at) == (f"The database cannot be used: {path}: the file is empty, not a database "
                              "(campaigns init creates one)")
    assert path.stat().st_size == 0
    assert list(tmp_path.iterdir()) == [path]


def test_a_store_deleted_while_the_dashboard_runs_is_not_created_again(db):
    make_campaign_db(db)
    at = run_app()
    assert at.title[0].value == "Campaigns" and not at.error
    db.unlink()
    at.run()
    assert not at.exception, at.exception
    assert only_error(at) == f"The database cannot be used: {db}: no database there (campaigns init creates one)"
    assert not db.exists()


def test_reads_and_writes_refuse_a_missing_store_without_streamlit(configured, tmp_path):
    """The dashboard's connections (fragments rerun alone, without app.py's check) refuse it too."""
    from dashboards import state

    path = configured(tmp_path / "x" / "typo.duckdb")
    for opening in (state.reading, state.writing):
        with pytest.raises(StoreError, match=r"no database there \(campaigns init creates one\)$"):
            with opening():
                pass
    assert not path.parent.exists()
