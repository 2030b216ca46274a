"""A contacts file uploaded in the Contact List tab is kept where only this dashboard's user can read it."""

from __future__ import annotations

import stat
import tempfile

from tasks.store import connect
from tests.dashboards.tabs_fixture import make_tabs_db
from tests.dashboards.test_app_tabs import rerun, run_tab


def test_an_uploaded_contact_list_is_kept_in_a_private_folder_and_imports(db_kept_open, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the machine's shared temporary folder, here
    ids = make_tabs_db(db_kept_open)
    cid = ids["campaign_id"]
    at = run_tab("contact_list", cid)
    at.file_uploader(key=f"contacts_{cid}_upload").set_value(
        ("people.csv", b"Name,Phone\nAna,+16025550111\n", "text/csv"))
    rerun(at)
    kept = [p for p in tmp_path.rglob("*.csv")]
    assert len(kept) == 1
    # a folder other users of the machine cannot list or write: before, one shared /tmp/vc-dashboard-imports
    # (0755, files 0644) let them read every uploaded phone list, or swap a file before Import was clicked
    assert stat.S_IMODE(kept[0].parent.stat().st_mode) == 0o700
    at.button(key=f"contacts_{cid}_import").click()
    rerun(at)
    with connect() as conn:
        assert conn.execute("select count(*) from contacts where phone_e164 = '+16025550111'").fetchone()[0] == 1
