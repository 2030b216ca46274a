"""The campaign commands of the `campaigns` CLI, run in-process through flows.cli.main."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.flows.cli_run import run

EXAMPLE_YAML = Path(__file__).resolve().parents[2] / "data" / "example_campaign.yaml"
REFERENCE_SUMMARY = [
    "Your campaign will start on: April 27, 2026",
    "It will call Monday to Friday between 08:00 AM - 06:00 PM (America/Phoenix)",
    "Each contact will receive up to 5 calls in total, max 1 per day.",
]


# `create` with every required option but the hours; the rules broken in the cases come before the agent's check
CREATE = ["create", "--name", "X", "--agent", "1", "--time-zone", "America/Phoenix", "--country", "US"]


def run_json(capsys, db: Path, *args: str):
    code, out, err = run(capsys, db, *args, "--json")
    assert (code, err) == (0, ""), err
    return json.loads(out)


def test_apply_example_then_show_gives_the_reference_summary(capsys, tmp_path):
    db = tmp_path / "t.duckdb"  # a fresh database: the YAML declares its agent and number
    applied = run_json(capsys, db, "apply", str(EXAMPLE_YAML))
    shown = run_json(capsys, db, "show", str(applied["campaign_id"]))
    # the example's start date has passed and it is active: it "started", as the campaign page says
    assert shown["summary"] == ["Your campaign started on: April 27, 2026", *REFERENCE_SUMMARY[1:]]
    assert shown["campaign_id"] == applied["campaign_id"]
    assert (shown["name"], shown["time_zone"], shown["batch_size"], shown["agent_name"]) == (
        "Spring outreach", "America/Phoenix", 100, "Ava")
    assert shown["status"] in {"Scheduled", "Waiting", "Completed"}


def test_create_edit_list_duplicate_delete_round_trip(capsys, campaign_db):
    db = campaign_db["db"]
    created = run_json(capsys, db, "create", "--name", "Bogota leads", "--agent", str(campaign_db["agent_id"]),
                       "--time-zone", "America/Bogota", "--calling-days", "mon,wed,fri", "--hours", "07:00-12:00",
                       "--hours", "14:00-19:00", "--max-attempts", "1", "--number", str(campaign_db["number_ids"][0]))
    campaign_id = created["campaign_id"]
    assert created["status"] == "Draft"
    assert created["summary"] == [
        "Your campaign has no start date yet",
        "It will call Monday, Wednesday and Friday between 07:00 AM - 12:00 PM and 02:00 PM - 07:00 PM (America/Bogota)",
        "Each contact will receive up to 1 call in total, max 1 per day.",
    ]
    # dates far ahead: the CLI reads the wall clock
    edited = run_json(capsys, db, "edit", str(campaign_id), "--start-date", "2030-05-06", "--end-date", "2030-05-31",
                      "--batch-size", "20")
    assert (edited["batch_size"], edited["status"]) == (20, "Draft")  # dated, never activated
    assert edited["summary"][0] == "Your campaign will start on: May 6, 2030 and end on: May 31, 2030"
    assert run_json(capsys, db, "activate", str(campaign_id))["status"] == "Scheduled"
    assert run_json(capsys, db, "deactivate", str(campaign_id))["status"] == "Paused"
    copy = run_json(capsys, db, "duplicate", str(campaign_id))
    assert (copy["name"], copy["active"]) == ("Bogota leads (Copy)", False)
    assert run_json(capsys, db, "show", str(copy["campaign_id"]))["status"] == "Draft"
    listed = run_json(capsys, db, "list", "--search", "bogota", "--sort", "name")
    assert [r["name"] for r in listed] == ["Bogota leads", "Bogota leads (Copy)"]
    assert set(listed[0]) == {"campaign_id", "name", "status", "agent_name", "contacts", "created_at"}
    deleted = run_json(capsys, db, "delete", str(campaign_id), "--yes")
    assert deleted["deleted"]["campaigns"] == 1
    assert [r["name"] for r in run_json(capsys, db, "list", "--search", "bogota")] == ["Bogota leads (Copy)"]


def test_show_says_a_start_date_has_passed_as_the_campaign_page_does(capsys, tmp_path):
    """`show` said "will start on" a date months ago: the summary's first line reads as the campaign page's."""
    db = tmp_path / "t.duckdb"
    campaign_id = str(run_json(capsys, db, "apply", str(EXAMPLE_YAML))["campaign_id"])  # active, April 27, 2026
    run_json(capsys, db, "deactivate", campaign_id)
    assert run_json(capsys, db, "show", campaign_id)["summary"][0] == (
        "Your campaign will start calling as soon as it is Active: its start date, April 27, 2026, has passed")
    ended = run_json(capsys, db, "edit", campaign_id, "--end-date", "2026-05-29")
    assert ended["summary"][0] == "Your campaign's dates have passed (April 27, 2026 to May 29, 2026): it makes no calls"
    code, out, _ = run(capsys, db, "show", campaign_id)
    assert code == 0 and "it makes no calls" in out and "will start on" not in out


def test_human_output_of_show_and_list(capsys, campaign_db):
    code, out, _ = run(capsys, campaign_db["db"], "show", str(campaign_db["campaign_id"]))
    assert code == 0
    assert "  It will call Monday to Friday between 08:00 AM - 06:00 PM (America/Phoenix)" in out.splitlines()
    code, out, _ = run(capsys, campaign_db["db"], "list")
    assert out.splitlines()[0].split() == ["campaign_id", "name", "status", "agent_name", "contacts", "created_at"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["edit", "{id}", "--batch-size", "501"], "error: --batch-size: must be between 1 and 500, got 501"),
        (["edit", "{id}", "--batch-size", "0"], "error: --batch-size: must be between 1 and 500, got 0"),
        (["edit", "{id}", "--time-zone", "Mars/Base"],
         'error: --time-zone: unknown time zone "Mars/Base" (use an IANA name such as America/Phoenix)'),
        (["edit", "{id}", "--end-date", "2026-01-01"], "error: --end-date: end date 2026-01-01 is before the start date 2026-04-27"),
        (["edit", "{id}", "--hours", "18:00-08:00"],
         "error: --hours: mon: window 18:00-08:00 ends before it starts (start must be before end)"),
        (["edit", "{id}", "--hours", "08:00-12:00", "--hours", "11:00-13:00"],
         "error: --hours: mon: windows 08:00-12:00 and 11:00-13:00 overlap"),
        (["edit", "{id}", "--attempts-per-day", "6"], "error: --attempts-per-day: 6 per day is more than --max-attempts (5)"),
        (["edit", "{id}", "--rotation"], "error: --number: rotation is on: choose two or more numbers (got 1)"),
        (["edit", "{id}", "--agent", "99"],
         "error: --agent: agent 99 does not exist; `campaigns agents list` shows them, `campaigns agents add NAME` adds one"),
        (["edit", "{id}", "--agent", "Bob"],
         "error: --agent: no agent named 'Bob'; `campaigns agents list` shows them, `campaigns agents add NAME` adds one"),
        (["edit", "{id}", "--rotation", "--number", "1", "--number", "98"], "error: --number: number(s) 98 do not exist"),
        (["edit", "{id}", "--schedule", "{not json"], "error: --schedule: not valid JSON (Expecting property name enclosed in double quotes at column 2)"),
        (["edit", "{id}"], "error: edit: give at least one setting to change (see campaigns edit --help)"),
        (["delete", "{id}"], "error: campaign {id}: deleting is permanent (calls, feedback, enrollments, metrics); add --yes to confirm"),
        (["show", "404"], "error: campaign 404 does not exist"),
        (["list", "--sort", "size"], 'error: --sort: "size" is not one of created, name'),
        (["numbers", "add", "12345"],
         'error: E164 argument: "12345" is not in E.164 (it must start with + and the country code)'),
        (["numbers", "set-status", "1", "broken"], 'error: STATUS argument: "broken" is not one of active, inactive, error'),
        # the options the user typed are named, not the settings' field names (weekly_schedule, sip_trunk_status)
        (["numbers", "add", "+16025550201", "--status", "bogus"],
         'error: --status: "bogus" is not one of active, inactive, error'),
        ([*CREATE, "--hours", "08:00-18:00", "--schedule", '{"mon": [["08:00", "18:00"]]}'],
         "error: --hours: give either --schedule or --hours, not both"),
        ([*CREATE, "--hours", "8-18"], 'error: --hours: mon: "8" is not a time in HH:MM (00:00..23:59)'),
        ([*CREATE, "--schedule", '{"mon": [["08:00", "18"]]}', "--calling-days", "mon"],
         'error: --schedule: mon: "18" is not a time in HH:MM (00:00..23:59)'),
        ([*CREATE], "error: create: give --hours HH:MM-HH:MM (same every calling day) or --schedule JSON"),
        (["edit", "{id}", "--max-attempts", "25", "--attempts-per-day", "0"],
         "error: --max-attempts: must be between 1 and 20, got 25; --attempts-per-day: must be between 1 and "
         "--max-attempts, got 0"),
        (["edit", "{id}", "--schedule", '{"mon": "x"}', "--calling-days", "mon"],
         "error: --schedule: mon: expected a list of windows, got 'x'"),
        (["edit", "{id}", "--active", "--start-date", "none"],
         "error: --active: an active campaign needs a start date: set one, or turn Active off"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_changes(capsys, campaign_db, args, message):
    db, campaign_id = campaign_db["db"], str(campaign_db["campaign_id"])
    before = run_json(capsys, db, "show", campaign_id)
    code, out, err = run(capsys, db, *[a.replace("{id}", campaign_id) for a in args])
    assert (code, out, err) == (2, "", message.replace("{id}", campaign_id) + "\n")
    assert run_json(capsys, db, "show", campaign_id) == before


def test_activate_without_start_date_is_refused(capsys, campaign_db):
    db = campaign_db["db"]
    draft = run_json(capsys, db, "duplicate", str(campaign_db["campaign_id"]))
    run_json(capsys, db, "edit", str(draft["campaign_id"]), "--start-date", "none")
    code, _, err = run(capsys, db, "activate", str(draft["campaign_id"]))
    assert (code, err) == (2, f"error: active: campaign {draft['campaign_id']}: cannot activate: set a start date first\n")


def test_agents_and_numbers_commands(capsys, db):
    agent = run_json(capsys, db, "agents", "add", "Max", "--provider-agent-id", "agent_42")
    assert [a["name"] for a in run_json(capsys, db, "agents", "list")] == ["Max"]
    number = run_json(capsys, db, "numbers", "add", "+1 602 555 0100", "--nickname", "main")
    assert number["e164"] == "+16025550100"
    run_json(capsys, db, "numbers", "set-status", str(number["number_id"]), "inactive")
    assert [(n["e164"], n["nickname"], n["sip_trunk_status"]) for n in run_json(capsys, db, "numbers", "list")] == [
        ("+16025550100", "main", "inactive")]
    assert agent["agent_id"] == 1


def test_agents_add_refuses_a_name_already_in_use(capsys, db):
    # a second "Bob" was added, and `agent: Bob` in a campaign YAML then took the first one silently
    bob = run_json(capsys, db, "agents", "add", "Bob", "--provider-agent-id", "agent_x")
    code, out, err = run(capsys, db, "agents", "add", "Bob")
    assert (code, out, err) == (2, "", f'error: NAME argument: agent {bob["agent_id"]} is already named "Bob"; choose another name\n')
    assert [(a["name"], a["provider_agent_id"]) for a in run_json(capsys, db, "agents", "list")] == [("Bob", "agent_x")]


def test_apply_refuses_an_agent_name_two_agents_share_and_takes_an_id(capsys, db, tmp_path):
    with duckdb.connect(str(db)) as conn:  # a store from before names were unique
        conn.execute("insert into agents (name) values ('Bob'), ('Bob')")
    declared = EXAMPLE_YAML.read_text().replace("agent:\n  name: Ava\n  provider_agent_id: agent_sim_1", "agent: Bob")
    by_name = tmp_path / "by_name.yaml"
    by_name.write_text(declared)
    code, out, err = run(capsys, db, "apply", str(by_name))
    assert (code, out, err) == (2, "", f'error: {by_name}: agent: 2 agents are named "Bob" (ids 1, 2); '
                                       "give the id of the one to use instead, e.g. agent: 1\n")
    assert run_json(capsys, db, "list") == []
    by_id = tmp_path / "by_id.yaml"
    by_id.write_text(declared.replace("agent: Bob", "agent: 2"))
    assert run_json(capsys, db, "apply", str(by_id))["agent_id"] == 2


def test_bad_yaml_exits_2_in_a_real_process(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE_YAML.read_text() + "colour: blue\n")
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "--db", str(tmp_path / "t.duckdb"), "apply", str(bad)],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"error: {bad}: unknown key 'colour' (allowed: ")
    assert proc.stderr.count("\n") == 1


def test_number_daily_cap_is_set_by_create_and_edit(capsys, campaign_db):
    """It was settable only in YAML, while `dial` can answer that every number reached its daily cap."""
    db, agent = campaign_db["db"], str(campaign_db["agent_id"])
    base = ["create", "--agent", agent, "--time-zone", "America/Phoenix", "--country", "US", "--hours", "08:00-18:00"]
    assert run_json(capsys, db, *base, "--name", "Default cap")["number_daily_cap"] == 100  # the model's default
    created = run_json(capsys, db, *base, "--name", "Small cap", "--number-daily-cap", "40")
    assert created["number_daily_cap"] == 40
    campaign_id = str(created["campaign_id"])
    assert run_json(capsys, db, "edit", campaign_id, "--number-daily-cap", "none")["number_daily_cap"] is None  # no cap
    assert run_json(capsys, db, "edit", campaign_id, "--number-daily-cap", "250")["number_daily_cap"] == 250
    code, out, err = run(capsys, db, "show", campaign_id)
    assert (code, err) == (0, "") and "number_daily_cap: 250" in out.splitlines()


@pytest.mark.parametrize(("value", "message"), [
    # the model's rule (schemas/campaign.py), under the option's name: 0 is no "off" switch, 'none' is
    ("0", "error: --number-daily-cap: must be between 1 and 10000, got 0"),
    ("10001", "error: --number-daily-cap: must be between 1 and 10000, got 10001"),
    ("lots", "error: --number-daily-cap: Input should be a valid integer, unable to parse string as an integer"),
])
def test_a_bad_number_daily_cap_is_refused_naming_the_option(capsys, campaign_db, value, message):
    code, out, err = run(capsys, campaign_db["db"], "edit", str(campaign_db["campaign_id"]), "--number-daily-cap", value)
    assert (code, out, err) == (2, "", message + "\n")
    code, out, _ = run(capsys, campaign_db["db"], "show", str(campaign_db["campaign_id"]), "--json")
    assert json.loads(out)["number_daily_cap"] == 100  # unchanged


def test_create_with_a_schedule_takes_its_days_as_the_calling_days(capsys, campaign_db):
    # `--schedule` naming sat and sun was refused ("sat, sun has windows but is not a calling day") without a
    # --calling-days repeating them
    schedule = '{"sat": [["10:00", "14:00"]], "sun": [["10:00", "12:00"]], "mon": []}'
    created = run_json(capsys, campaign_db["db"], "create", "--name", "Weekend", "--agent", str(campaign_db["agent_id"]),
                       "--time-zone", "America/Phoenix", "--country", "US", "--schedule", schedule)
    assert created["calling_days"] == ["sat", "sun"]
    assert created["weekly_schedule"] == {"sat": [["10:00", "14:00"]], "sun": [["10:00", "12:00"]]}
    edited = run_json(capsys, campaign_db["db"], "edit", str(created["campaign_id"]), "--schedule",
                      '{"fri": [["09:00", "17:00"]]}')
    assert (edited["calling_days"], edited["weekly_schedule"]) == (["fri"], {"fri": [["09:00", "17:00"]]})


def test_create_and_edit_take_the_agent_by_name_as_apply_does(capsys, campaign_db):
    # `create --agent Ava` was refused ("Input should be a valid integer") though `apply` takes agent names
    created = run_json(capsys, campaign_db["db"], "create", "--name", "By name", "--agent", "Ava", "--time-zone",
                       "America/Phoenix", "--country", "US", "--hours", "08:00-18:00")
    assert (created["agent_id"], created["agent_name"]) == (campaign_db["agent_id"], "Ava")
    edited = run_json(capsys, campaign_db["db"], "edit", str(created["campaign_id"]), "--agent", str(campaign_db["agent_id"]))
    assert edited["agent_id"] == campaign_db["agent_id"]


def test_show_says_why_a_campaign_is_failed(capsys, campaign_db):
    # `list` and `show` said only "[Failed]"; the reason was in dial_runs. A stopped `make serve` (Prefect's
    # TerminationSignal, a BaseException without text) left the message "TerminationSignal: "
    from datetime import UTC, datetime

    from tasks.clock import VirtualClock
    from tasks.dialing import failure_text, run_tick
    from tests.factories import add_contacts
    from tests.fakes import FakeProvider

    class Stopped(BaseException):
        pass

    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    add_contacts(db, campaign_id, 2)
    with pytest.raises(Stopped):
        run_tick(db, FakeProvider(fail_with=Stopped()), VirtualClock(datetime(2026, 4, 28, 17, 0, tzinfo=UTC)))
    shown = run_json(capsys, db, "show", str(campaign_id))
    assert shown["status"] == "Failed"
    assert shown["failed_because"]["message"] == failure_text(Stopped()) and shown["failed_because"]["kind"] == "scheduled"
    assert failure_text(Stopped()).startswith("interrupted: the process placing the batch was stopped (Stopped)")
    code, out, _ = run(capsys, db, "show", str(campaign_id))
    assert code == 0 and out.splitlines()[1] == (
        "  its scheduled batch of 2026-04-28 10:00 America/Phoenix failed: " + failure_text(Stopped()))
    assert (failure_text(ValueError("bad")), failure_text(ValueError())) == ("ValueError: bad", "ValueError")


def test_show_says_when_no_batch_can_dial_for_want_of_a_number(capsys, campaign_db):
    # an inactive SIP trunk: every tick placed nothing, while list and show said "Waiting" with no warning
    from tasks.store import transaction

    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    shown = run_json(capsys, db, "show", str(campaign_id))
    assert "numbers_hold" not in shown
    with transaction(db) as conn:
        conn.execute("update phone_numbers set sip_trunk_status = 'inactive'")
        [e164] = conn.execute("select e164 from phone_numbers").fetchone()
    shown = run_json(capsys, db, "show", str(campaign_id))
    assert shown["numbers_hold"] == f"outbound number {e164} has SIP trunk status inactive"
    code, out, _ = run(capsys, db, "show", str(campaign_id))
    assert code == 0 and out.splitlines()[1] == f"  no batch can dial now: outbound number {e164} has SIP trunk status inactive"
