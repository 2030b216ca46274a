"""`campaigns import ... --prefect`: the file is checked before the flow starts and read only once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows import import_contacts as flow_module
from tasks import contacts_import as ci
from tests.flows.cli_run import run as cli


@pytest.fixture
def counted_reads(monkeypatch) -> list[str]:
    """The files read by tasks.contacts_import.read_contacts_file during the test."""
    reads: list[str] = []
    real = ci.read_contacts_file

    def counting(path, sheet=None):
        reads.append(Path(path).name)
        return real(path, sheet)

    monkeypatch.setattr(ci, "read_contacts_file", counting)
    return reads


@pytest.mark.prefect
def test_import_prefect_reads_the_file_once_and_writes_the_report_after_the_commit(
    prefect_harness, capsys, campaign_db, tmp_path, counted_reads,
):
    contacts = tmp_path / "people.csv"
    contacts.write_text("Phone,Name\n+16025550101,Ann\nnot a phone,Bob\n", encoding="utf-8")
    report = tmp_path / "out" / "rejected.csv"
    report.parent.mkdir()
    code, out, err = cli(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(contacts),
                         "--prefect", "--report", str(report), "--json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert (data["imported"], data["enrolled"], data["invalid"]) == (1, 1, 1)
    assert counted_reads == ["people.csv"]  # checked by the CLI, imported by the flow: one read
    assert report.read_text().splitlines() == ["row,column,value,reason,outcome",
                                               "3,Phone,not a phone,not a phone number,rejected"]
    assert [p.name for p in report.parent.iterdir()] == ["rejected.csv"]  # staged, then moved into place


def test_the_read_step_takes_the_frame_read_before_the_flow_once_and_only_for_that_file(tmp_path, counted_reads):
    one, other = tmp_path / "one.csv", tmp_path / "other.csv"
    one.write_text("Phone\n+16025550101\n", encoding="utf-8")
    other.write_text("Phone\n+16025550102\n", encoding="utf-8")
    frame = ci.read_contacts_file(one)
    with flow_module.file_already_read(one, None, frame):
        assert flow_module.read_once(str(one)) is frame
        assert flow_module.read_once(other)["Phone"].to_list() == ["+16025550102"]  # another file: read
        assert flow_module.read_once(one, "Sheet2")["Phone"].to_list() == ["+16025550101"]  # another sheet: read
        assert flow_module.read_once(one) is not frame  # taken once: a second import reads the file
    assert flow_module.read_once(one) is not frame
    assert counted_reads == ["one.csv", "other.csv", "one.csv", "one.csv", "one.csv"]


@pytest.mark.prefect
def test_an_import_flow_whose_every_row_is_rejected_ends_failed_and_the_cli_exits_2(prefect_harness, capsys, campaign_db,
                                                                                    tmp_path):
    contacts = tmp_path / "wrong.csv"
    contacts.write_text("Phone,Name\nAnn,x\n", encoding="utf-8")
    state = flow_module.import_contacts(campaign_db["campaign_id"], str(contacts), db=str(campaign_db["db"]),
                                        return_state=True)
    assert state.is_failed() and state.message == "every row was rejected: rows 1, imported 0, updated 0, enrolled 0, invalid 1"
    code, out, err = cli(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(contacts), "--prefect")
    assert code == 2 and "rows 1, imported 0" in out  # the report, then the error line
    assert err.startswith("error: wrong.csv: every row was rejected (1 of 1)")
