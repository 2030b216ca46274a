"""An uploaded contact list (personal data) is on disk only while a script run reads or imports it, in a
folder only this dashboard's user can open; nothing of it is left once the run has used it."""

from __future__ import annotations

import os
import stat
import tempfile
import time
from pathlib import Path

import pytest

from dashboards.tabs import contact_list
from dashboards.tabs.contact_list import STALE_UPLOAD_SECONDS, remove_stale_uploads
from flows.import_contacts import PLAIN_STEPS
from tasks import contacts_import as ci
from tasks.errors import UserError
from tasks.store import connect
from tests.dashboards.tabs_fixture import make_tabs_db
from tests.dashboards.test_app_campaigns import start_wizard
from tests.dashboards.test_app_tabs import rerun, run_tab
from tests.factories import make_campaign_db

PEOPLE = ("people.csv", b"Name,Phone\nAna,+16025550111\n", "text/csv")


@pytest.fixture
def temp_folder(tmp_path, monkeypatch) -> Path:
    """The machine's shared temporary folder, here (beside the test database, not holding it)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def reads(monkeypatch) -> list[tuple[bool, int]]:
    """Each read of an uploaded file, by the page or by the import: (the file is there, its folder's mode)."""
    seen = []

    def spy(read):
        def read_and_note(path, *args, **kwargs):
            seen.append((Path(path).is_file(), stat.S_IMODE(Path(path).parent.stat().st_mode)))
            return read(path, *args, **kwargs)
        return read_and_note

    monkeypatch.setattr(ci, "read_contacts_file", spy(ci.read_contacts_file))
    monkeypatch.setitem(PLAIN_STEPS, "read", spy(PLAIN_STEPS["read"]))
    return seen


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_the_contact_list_reads_an_upload_from_a_private_folder_and_keeps_nothing(db_kept_open, temp_folder, reads):
    cid = make_tabs_db(db_kept_open)["campaign_id"]
    at = run_tab("contact_list", cid)
    at.file_uploader(key=f"contacts_{cid}_upload_0").set_value(PEOPLE)
    rerun(at)
    # a folder other users of the machine cannot list or write: a shared /tmp folder (0755, files 0644) let
    # them read every uploaded phone list, or swap a file before Import was clicked
    assert reads == [(True, 0o700)]
    # the mapping shown, the file already gone: before, it stayed in the session's folder for good
    assert leftovers(temp_folder) == []
    at.button(key=f"contacts_{cid}_import").click()
    rerun(at)
    assert reads[-1] == (True, 0o700)  # the import read it again, written anew for that run
    assert leftovers(temp_folder) == []
    with connect() as conn:
        assert conn.execute("select count(*) from contacts where phone_e164 = '+16025550111'").fetchone()[0] == 1


def test_a_failed_import_keeps_no_file(db_kept_open, temp_folder, reads, monkeypatch):
    cid = make_tabs_db(db_kept_open)["campaign_id"]
    imported = []

    def failing_import(campaign_id, path, **kwargs):
        imported.append(Path(path).is_file())
        raise UserError("the store is read-only")

    monkeypatch.setattr(contact_list, "run_import", failing_import)
    at = run_tab("contact_list", cid)
    at.file_uploader(key=f"contacts_{cid}_upload_0").set_value(PEOPLE)
    rerun(at)
    at.button(key=f"contacts_{cid}_import").click()
    rerun(at)
    assert imported == [True]
    assert [e.value for e in at.error] == ["Nothing was imported: the store is read-only"]
    assert leftovers(temp_folder) == []


@pytest.mark.usefixtures("db_kept_open")
def test_the_wizard_reads_an_upload_on_every_run_until_the_import_and_keeps_nothing(db, temp_folder, reads):
    make_campaign_db(db)
    at, cid = start_wizard()
    at.file_uploader(key="wiz_upload_0").set_value(PEOPLE).run()
    assert leftovers(temp_folder) == []
    # another run before the import (the mapping step): the upload is read again from the widget's copy
    at.text_input(key="wiz_default_country").set_value("CA").run()
    assert leftovers(temp_folder) == []
    at.button(key="wiz_import").click().run()
    assert not at.exception
    assert at.success[-1].value == "Imported 1 contact from 1 row: 1 newly enrolled in this campaign, 0 already in it."
    assert reads == [(True, 0o700)] * 4  # upload, country, then the import's run: the page and the import
    assert leftovers(temp_folder) == []


def old_folder(parent: Path, name: str, age_seconds: float, now: float) -> Path:
    folder = parent / name
    folder.mkdir()
    (folder / "people.csv").write_text("Name,Phone\nAna,+16025550111\n")
    os.utime(folder, (now - age_seconds, now - age_seconds))
    return folder


def test_upload_folders_left_by_dead_runs_or_older_dashboards_are_removed(temp_folder, tmp_path):
    now = 1_800_000_000.0
    old_folder(temp_folder, "vc-upload-dead", STALE_UPLOAD_SECONDS + 1, now)
    old_folder(temp_folder, "vc-upload-busy", STALE_UPLOAD_SECONDS - 60, now)  # another run may be reading it
    old_folder(temp_folder, "vc-contacts-other", 10 * STALE_UPLOAD_SECONDS, now)  # not an upload folder
    target = old_folder(tmp_path, "elsewhere", 10 * STALE_UPLOAD_SECONDS, now)
    (temp_folder / "vc-upload-link").symlink_to(target)  # a link is not followed out of the folder
    os.utime(temp_folder / "vc-upload-link", (now - 10 * STALE_UPLOAD_SECONDS,) * 2, follow_symlinks=False)
    remove_stale_uploads(now)
    assert leftovers(temp_folder) == ["vc-contacts-other", "vc-upload-busy", "vc-upload-link"]
    assert (target / "people.csv").is_file()


def test_the_next_upload_removes_a_session_folder_of_an_older_dashboard(db_kept_open, temp_folder):
    # before this version each session kept its uploads in its own folder until the machine was cleaned
    old_folder(temp_folder, "vc-upload-k2j4", 2 * STALE_UPLOAD_SECONDS, time.time())
    cid = make_tabs_db(db_kept_open)["campaign_id"]
    at = run_tab("contact_list", cid)
    at.file_uploader(key=f"contacts_{cid}_upload_0").set_value(PEOPLE)
    rerun(at)
    assert leftovers(temp_folder) == []
