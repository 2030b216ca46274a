"""Compliance: each legal rule, zone resolution, do-not-call lists, caps, the audit, the claim integration."""

from __future__ import annotations

from contextlib import contextmanager

import csv
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import openpyxl
import pytest

from schemas.enums import CallStatus, DisconnectReason
from tasks.call_state import apply_provider_calls
from tasks.clock import VirtualClock
from tasks.compliance import (
    add_dnc,
    audit_summary,
    import_dnc,
    list_dnc,
    load_rules,
    normalise_dnc_pattern,
    read_dnc_rows,
    read_rules_csv,
    record_audit,
    rebuild_phone_attempts,
    remove_dnc,
    replace_rules,
    resolve_zone,
    rule_for,
    set_contact_zone,
    suppressed_contacts,
    zip_state,
    zone_blocked,
)
from tasks.dialing import HORIZON_SLACK_SECONDS, eligible_contacts, load_plans, run_manual, run_tick
from tasks.errors import UserError, ValidationError
from tasks.store import connect, transaction
from tasks.telephony.base import ProviderCall
from tests.factories import add_contacts, make_campaign_db
from tests.fakes import FakeProvider

UTC = timezone.utc
RULES_CSV = Path(__file__).resolve().parents[2] / "data" / "calling_rules.csv"
TUE_10_PHOENIX = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)  # Tuesday 10:00 Phoenix, 13:00 New York


@pytest.fixture(scope="module")
def rules():
    return {r.rule_id: r for r in read_rules_csv(RULES_CSV)}


def at(zone: str, *args) -> datetime:
    """A local wall-clock instant in `zone`, as UTC."""
    from zoneinfo import ZoneInfo

    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)


# ------------------------------------------------------------------ the rules, one table per rule

NY, MIAMI, PARIS, BOGOTA, SYDNEY = "America/New_York", "America/New_York", "Europe/Paris", "America/Bogota", "Australia/Sydney"


@pytest.mark.parametrize(
    ("rule_id", "zone", "local", "country", "expected"),
    [
        # US: 08:00-21:00 callee-local, every day
        ("US", NY, (2026, 4, 28, 7, 59), "US", "window:US"),
        ("US", NY, (2026, 4, 28, 8, 0), "US", None),
        ("US", NY, (2026, 5, 3, 20, 59), "US", None),  # a Sunday is fine in the US
        ("US", NY, (2026, 4, 28, 21, 0), "US", "window:US"),  # the end is exclusive
        ("US", NY, (2026, 7, 4, 12, 0), "US", None),  # holidays are not a US rule
        # Florida: 08:00-20:00
        ("US-FL", MIAMI, (2026, 4, 28, 19, 59), "US", None),
        ("US-FL", MIAMI, (2026, 4, 28, 20, 0), "US", "window:US-FL"),
        # France: Mon-Fri 10-13 and 14-20, no weekends or public holidays
        ("FR", PARIS, (2026, 4, 27, 10, 0), "FR", None),
        ("FR", PARIS, (2026, 4, 27, 9, 59), "FR", "window:FR"),
        ("FR", PARIS, (2026, 4, 27, 13, 30), "FR", "window:FR"),  # the lunch break
        ("FR", PARIS, (2026, 4, 27, 19, 59), "FR", None),
        ("FR", PARIS, (2026, 5, 2, 11, 0), "FR", "window:FR"),  # Saturday
        ("FR", PARIS, (2026, 7, 14, 11, 0), "FR", "holiday:FR"),  # Tuesday, Fête nationale
        ("FR", PARIS, (2026, 5, 14, 11, 0), "FR", "holiday:FR"),  # Ascension Thursday
        # Colombia: Mon-Fri 07-19, Sat 08-15, no Sundays or holidays
        ("CO", BOGOTA, (2026, 4, 28, 7, 0), "CO", None),
        ("CO", BOGOTA, (2026, 4, 28, 19, 0), "CO", "window:CO"),
        ("CO", BOGOTA, (2026, 5, 2, 14, 59), "CO", None),
        ("CO", BOGOTA, (2026, 5, 2, 15, 0), "CO", "window:CO"),
        ("CO", BOGOTA, (2026, 5, 3, 10, 0), "CO", "window:CO"),  # Sunday
        ("CO", BOGOTA, (2026, 7, 20, 10, 0), "CO", "holiday:CO"),  # Monday, Independence Day
        # the default: Mon-Sat 09-20, no Sundays or holidays
        ("DEFAULT", SYDNEY, (2026, 4, 27, 9, 0), "AU", None),
        ("DEFAULT", SYDNEY, (2026, 4, 26, 12, 0), "AU", "window:DEFAULT"),  # Sunday
        ("DEFAULT", SYDNEY, (2026, 4, 27, 20, 0), "AU", "window:DEFAULT"),
        ("DEFAULT", SYDNEY, (2026, 12, 25, 12, 0), "AU", "holiday:DEFAULT"),
    ],
)
def test_each_rule_opens_and_closes_at_its_callee_local_times(rules, rule_id, zone, local, country, expected):
    assert zone_blocked(rules[rule_id], [zone], country, None, at(zone, *local)) == expected


def test_a_number_in_several_zones_is_called_only_when_all_are_open(rules):
    # 08:30 in New York is 07:30 in Chicago: the intersection of the windows is still closed
    assert zone_blocked(rules["US"], [NY, "America/Chicago"], "US", None, at(NY, 2026, 4, 28, 8, 30)) == "window:US"
    assert zone_blocked(rules["US"], [NY, "America/Chicago"], "US", None, at(NY, 2026, 4, 28, 9, 0)) is None


@pytest.mark.parametrize(("minutes", "expected"), [(9, None), (10, None), (11, "window:US")])
def test_the_whole_batch_must_land_before_the_window_closes(rules, minutes, expected):
    # at 20:50 a batch that takes 11 minutes would ring someone after 21:00
    now = at(NY, 2026, 4, 28, 20, 50)
    assert zone_blocked(rules["US"], [NY], "US", None, now, timedelta(minutes=minutes)) == expected


def test_subdivision_holidays_apply_where_the_subdivision_is_known(rules):
    # 8 May: Victoire 1945 is a national French holiday; 26 Dec is one only in Alsace-Moselle (57)
    assert zone_blocked(rules["FR"], [PARIS], "FR", None, at(PARIS, 2026, 12, 28, 11, 0)) is None
    assert zone_blocked(rules["FR"], [PARIS], "FR", "57", at(PARIS, 2026, 12, 25, 11, 0)) == "holiday:FR"


@pytest.mark.parametrize(
    ("country", "subdivision", "expected"),
    [("US", "FL", "US-FL"), ("US", "AZ", "US"), ("US", None, "US"), ("FR", None, "FR"), ("CO", "DC", "CO"),
     ("AU", None, "DEFAULT"), (None, None, "DEFAULT")],
)
def test_rule_lookup_prefers_the_subdivision_then_the_country_then_the_default(rules, country, subdivision, expected):
    assert rule_for(rules, country, subdivision).rule_id == expected


def test_the_shipped_csv_is_what_the_migration_installs(db, rules):
    with connect(db) as conn:
        installed = load_rules(conn)
    assert installed == rules
    assert all(rule.source for rule in installed.values())


def test_rules_can_be_replaced_from_an_edited_csv(db, tmp_path):
    edited = tmp_path / "rules.csv"
    rows = list(csv.DictReader(RULES_CSV.open(encoding="utf-8")))
    rows[0]["mon"] = "09:00-17:00"
    with edited.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with transaction(db) as conn:
        replace_rules(conn, read_rules_csv(edited), TUE_10_PHOENIX)
    with connect(db) as conn:
        assert str(load_rules(conn)[rows[0]["rule_id"]].windows["mon"][0][1]) == "17:00:00"


@pytest.mark.parametrize(
    ("cell", "message"),
    [("9-17", "'9-17' is not a HH:MM-HH:MM window"), ("18:00-09:00", "ends before it starts")],
)
def test_a_bad_rules_csv_names_the_row_and_column(tmp_path, cell, message):
    rows = list(csv.DictReader(RULES_CSV.open(encoding="utf-8")))
    rows[1]["tue"] = cell
    path = tmp_path / "bad.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(UserError, match=f"row 3 tue: .*{message}"):
        read_rules_csv(path)


# ------------------------------------------------------------------ callee zones


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        (("US", ["America/New_York"]), {"area_code": "305"}, (("America/New_York",), "US", "FL", "phone")),
        (("US", ["America/Phoenix"]), {"area_code": "602"}, (("America/Phoenix",), "US", "AZ", "phone")),
        (("US", ["America/New_York"]), {"time_zone_override": "America/Chicago", "area_code": "305"},
         (("America/Chicago",), "US", "FL", "hand")),
        (("US", ["America/New_York"]), {"mapped_state": "california", "area_code": "305"},
         (("America/Los_Angeles",), "US", "CA", "mapped")),
        (("US", ["America/New_York"]), {"mapped_postal_code": "33101", "area_code": "212"},
         (("America/Chicago", "America/New_York"), "US", "FL", "mapped")),
        (("US", ["America/New_York"]), {"mapped_time_zone": "America/Denver"}, (("America/Denver",), "US", None, "mapped")),
        (("US", ["America/New_York"]), {"mapped_time_zone": "Mars/Olympus"}, (("America/New_York",), "US", None, "phone")),
        (("FR", ["Europe/Paris"]), {}, (("Europe/Paris",), "FR", None, "phone")),
        (("GB", ["Etc/Unknown"]), {}, (None, "GB", None, "unknown")),
        ((None, None), {}, (None, None, None, "unknown")),
    ],
)
def test_resolve_zone_prefers_hand_then_mapped_columns_then_the_phone(args, kwargs, expected):
    assert resolve_zone(*args, **kwargs) == expected


@pytest.mark.parametrize(("code", "state"), [("33101", "FL"), ("10001", "NY"), ("85001", "AZ"), ("9021", None), ("abcde", None)])
def test_zip_codes_give_their_state(code, state):
    assert zip_state(code) == state


# ------------------------------------------------------------------ the claim


def plan_of(db, campaign_id):
    with connect(db) as conn:
        return load_plans(conn, [campaign_id])[0]


def eligible_ids(db, campaign_id, now=TUE_10_PHOENIX, size=500):
    with connect(db) as conn:
        return eligible_contacts(conn, plan_of(db, campaign_id), now, size)["contact_id"].to_list()


def add_numbers(db, campaign_id, numbers, properties=None):
    with transaction(db) as conn:
        ids = []
        for number in numbers:
            contact_id = conn.execute(
                "insert into contacts (phone_e164, properties) values (?, ?) returning contact_id",
                [number, json.dumps(properties or {})],
            ).fetchone()[0]
            conn.execute("insert into campaign_contacts (campaign_id, contact_id) values (?, ?)", [campaign_id, contact_id])
            ids.append(contact_id)
    return ids


def add_past_calls(db, phone, times, campaign_id=1, contact_id=1, counts=True):
    with transaction(db) as conn:
        for when in times:
            seq = conn.execute("select nextval('call_id_seq')").fetchone()[0]
            conn.execute(
                "insert into calls (call_id, campaign_id, contact_id, attempt_key, attempt_number, counts_as_attempt,"
                " phone_e164, status, provider, queued_at, updated_at)"
                " values (?, ?, ?, ?, 1, ?, ?, 'not_connected', 'fake', ?, ?)",
                [seq, campaign_id, contact_id, f"past.{seq}", counts, phone, when, when],
            )
        # history written outside the claim: the rolling caps read it once re-derived
        rebuild_phone_attempts(conn)


def test_callees_outside_their_legal_window_are_held_back_and_audited(campaign_db):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    # Tuesday 17:00 UTC: 10:00 Phoenix, 13:00 Miami, 19:00 Paris (open), 03:00 Sydney (closed)
    phoenix, miami, paris, sydney = add_numbers(db, campaign_id, ["+16025550100", "+13055550100", "+33612345678", "+61212345678"])
    assert eligible_ids(db, campaign_id) == [phoenix, miami, paris]
    provider = FakeProvider()
    result = run_tick(db, provider, VirtualClock(TUE_10_PHOENIX), pace_seconds=0)
    assert result.placed == 3
    with connect(db) as conn:
        audit = conn.execute("select rule, skipped, sample_contact_ids from claim_audit").fetchall()
        flags = conn.execute("select contact_id, zone_source, subdivision from contacts order by contact_id").fetchall()
    assert audit == [("window:DEFAULT", 1, [sydney])]
    assert flags == [(phoenix, "phone", "AZ"), (miami, "phone", "FL"), (paris, "phone", None), (sydney, "phone", None)]


def test_a_contact_with_an_unknown_zone_is_called_in_the_campaigns_zone_and_flagged(campaign_db):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    [unknown] = add_numbers(db, campaign_id, ["+80012345678"])  # an international freephone: no zone
    # 10:00 in Phoenix (the campaign's zone) under the campaign's country's rule (US 08-21)
    assert eligible_ids(db, campaign_id) == [unknown]
    assert eligible_ids(db, campaign_id, now=TUE_10_PHOENIX + timedelta(hours=11, minutes=30)) == []
    with connect(db) as conn:
        flagged = suppressed_contacts(conn, campaign_id).to_dicts()
    assert [(r["contact_id"], r["time_zone_unknown"], r["do_not_call"]) for r in flagged] == [(unknown, True, False)]


def test_a_mapped_state_column_and_a_hand_override_change_the_callees_window(campaign_db):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    # 13:00 UTC Tuesday: 09:00 in New York (open), 06:00 in Los Angeles, Phoenix (closed)
    early = datetime(2026, 4, 28, 13, 0, tzinfo=UTC)
    [ny_mapped_ca] = add_numbers(db, campaign_id, ["+12125550100"], {"state": "CA"})
    [phoenix] = add_numbers(db, campaign_id, ["+16025550100"])
    assert eligible_ids(db, campaign_id, now=early) == []
    with transaction(db) as conn:
        set_contact_zone(conn, phoenix, early, time_zone="America/New_York")
    assert eligible_ids(db, campaign_id, now=early) == [phoenix]
    with transaction(db) as conn:
        set_contact_zone(conn, phoenix, early, time_zone="")  # cleared: back to the phone's zone
    assert eligible_ids(db, campaign_id, now=early) == []
    assert ny_mapped_ca


def test_a_number_added_to_the_list_just_before_its_turn_is_not_called(campaign_db):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    first, second = add_contacts(db, campaign_id, 2)
    provider = FakeProvider()
    with transaction(db) as conn:
        add_dnc(conn, ["+1 (602) 555-0000"], TUE_10_PHOENIX - timedelta(seconds=1), reason="asked by email")
    result = run_tick(db, provider, VirtualClock(TUE_10_PHOENIX), pace_seconds=0)
    assert result.placed == 1
    assert [r.to_number for r, _ in provider.calls.values()] == ["+16025550001"]
    with connect(db) as conn:
        assert conn.execute("select rule, skipped, sample_contact_ids from claim_audit").fetchall() == [
            ("do_not_call", 1, [first])]
        suppressed = suppressed_contacts(conn, campaign_id).to_dicts()
    assert [(r["contact_id"], r["dnc_list"], r["dnc_reason"]) for r in suppressed] == [(first, "global", "asked by email")]
    assert second


def test_a_finished_contact_on_a_list_is_not_counted_as_held_back(campaign_db):
    # `dnc suppressed` said 4 contacts were held back where the claims' audit said 3: one had finished
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    done, waiting = add_contacts(db, campaign_id, 2)
    with transaction(db) as conn:
        add_dnc(conn, ["+16025550000", "+16025550001"], TUE_10_PHOENIX, reason="asked")
        conn.execute("update campaign_contacts set finished_at = ?, finished_reason = 'max_attempts'"
                     " where contact_id = ?", [TUE_10_PHOENIX, done])
    with connect(db) as conn:
        assert [r["contact_id"] for r in suppressed_contacts(conn, campaign_id).to_dicts()] == [waiting]


def test_listed_people_first_in_the_dialing_order_neither_fill_the_batch_nor_go_uncounted(db):
    # People who asked not to be called keep their few attempts, so they sort before everyone else:
    # the claim reads past them to a full batch and counts those ahead of it.
    campaign_id = make_campaign_db(db, batch_size=2)["campaign_id"]
    ids = add_contacts(db, campaign_id, 6)
    with transaction(db) as conn:
        add_dnc(conn, ["+16025550000", "+16025550001", "+16025550002"], TUE_10_PHOENIX - timedelta(seconds=1))
        conn.execute("update campaign_contacts set attempts = 1 where contact_id in (?, ?)", [ids[4], ids[5]])
    provider = FakeProvider()
    assert run_tick(db, provider, VirtualClock(TUE_10_PHOENIX), pace_seconds=0).placed == 2
    assert sorted(r.to_number for r, _ in provider.calls.values()) == ["+16025550003", "+16025550004"]
    with connect(db) as conn:
        assert conn.execute("select rule, skipped, sample_contact_ids from claim_audit").fetchall() == [
            ("do_not_call", 3, ids[:3])]


@pytest.mark.parametrize("hint", [0, 1, 2, 1000])
def test_the_scan_size_hint_never_changes_who_is_offered_or_held(db, hint, monkeypatch):
    # The claim's first scan is widened by how many the rules held back ahead of the previous batch;
    # too small, too large or none, the offer and the held-back list must be the same.
    import tasks.dialing as dialing

    campaign_id = make_campaign_db(db, batch_size=2)["campaign_id"]
    ids = add_contacts(db, campaign_id, 8)
    with transaction(db) as conn:
        add_dnc(conn, [f"+1602555000{i}" for i in (0, 1, 2, 5)], TUE_10_PHOENIX - timedelta(seconds=1))
        plan = load_plans(conn, [campaign_id])[0]
    monkeypatch.setattr(dialing, "_held_ahead", {(campaign_id, False): hint})
    monkeypatch.setattr(dialing, "OVER_FETCH", 0)  # the first scan reads the batch plus the hint only
    with connect(db) as conn:
        picked, held = dialing._classify(conn, plan, TUE_10_PHOENIX, timedelta(0), size=2, audit=True)
    assert picked["contact_id"].to_list() == [ids[3], ids[4]]
    assert held.rows() == [("do_not_call", 3, ids[:3])]


@pytest.mark.parametrize(
    ("entry", "campaign_scoped", "expected_left"),
    [
        ("+1602*", False, 0),  # an area-code wildcard covers every number of the area
        ("+1602555000*", False, 0),
        ("+1305*", False, 3),
        ("+16025550001", True, 2),  # the campaign's own list
    ],
)
def test_wildcards_and_campaign_lists(campaign_db, entry, campaign_scoped, expected_left):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    add_contacts(db, campaign_id, 3)
    with transaction(db) as conn:
        add_dnc(conn, [entry], TUE_10_PHOENIX, campaign_id=campaign_id if campaign_scoped else None)
    assert len(eligible_ids(db, campaign_id)) == expected_left


def test_another_campaigns_list_does_not_apply(db):
    first = make_campaign_db(db)["campaign_id"]
    with transaction(db) as conn:
        other = conn.execute("insert into campaigns (name, agent_id, weekly_schedule, time_zone) values"
                             " ('Other', 1, '{}', 'UTC') returning campaign_id").fetchone()[0]
        add_dnc(conn, ["+16025550000"], TUE_10_PHOENIX, campaign_id=other)
    add_contacts(db, first, 1)
    assert len(eligible_ids(db, first)) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [("+1 (305) 555-0100", ("+13055550100", "+13055550100", False)), ("+1305*", ("+1305*", "+1305", True)),
     ("+1 305*", ("+1305*", "+1305", True))],
)
def test_dnc_entries_are_normalised(text, expected):
    assert normalise_dnc_pattern(text) == expected


@pytest.mark.parametrize("text", ["", "1305*", "+13*5", "hello"])
def test_bad_dnc_entries_are_refused(text):
    with pytest.raises(ValidationError):
        normalise_dnc_pattern(text)


def test_dnc_add_is_idempotent_and_remove_deletes_only_its_list(campaign_db):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    with transaction(db) as conn:
        assert add_dnc(conn, ["+13055550100", "+1305*"], TUE_10_PHOENIX) == 2
        assert add_dnc(conn, ["+1 305 555 0100"], TUE_10_PHOENIX) == 0  # already there
        assert add_dnc(conn, ["+13055550100"], TUE_10_PHOENIX, campaign_id=campaign_id) == 1
        assert remove_dnc(conn, "+13055550100") == 1
        assert [r["pattern"] for r in list_dnc(conn)] == ["+1305*"]
        assert [r["pattern"] for r in list_dnc(conn, campaign_id)] == ["+13055550100"]


def test_dnc_import_is_all_or_nothing_and_names_the_bad_row(campaign_db, tmp_path):
    db = campaign_db["db"]
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("phone,note\n+13055550100,x\n+1786*,y\n", encoding="utf-8")
    bad.write_text("phone\n+13055550101\nnot a number\n", encoding="utf-8")
    with transaction(db) as conn:
        assert import_dnc(conn, good, TUE_10_PHOENIX) == 2
    with pytest.raises(UserError, match="bad.csv row 3"):
        with transaction(db) as conn:
            import_dnc(conn, bad, TUE_10_PHOENIX)
    with connect(db) as conn:
        assert sorted(r["pattern"] for r in list_dnc(conn)) == ["+13055550100", "+1786*"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # no header and the first row's name blank: the number column is judged over all its rows, not row 1
        (",+14155550100\nJane,+14155550101\n", [(1, "2", "+14155550100"), (2, "2", "+14155550101")]),
        # the first row's second number blank: the second column holds numbers all the same
        ("+14155550100,\n+14155550101,+14155550102\n",
         [(1, "1", "+14155550100"), (2, "1", "+14155550101"), (2, "2", "+14155550102")]),
        # the same number twice in the first row: both cells are entries (one is a duplicate, dropped on import)
        ("+14155550100,+14155550100\n+14155550101,+14155550102\n",
         [(1, "1", "+14155550100"), (1, "2", "+14155550100"), (2, "1", "+14155550101"), (2, "2", "+14155550102")]),
        # a number column with a typo still holds numbers, so the typo is reported, not its column dropped
        ("Ann,+14155550100\nBo,+1415555\n", [(1, "2", "+14155550100"), (2, "2", "+1415555")]),
        # one number, with or without a line end: the only row is an entry, not a header over no rows
        ("+14155550100\n", [(1, "1", "+14155550100")]),
        ("+14155550100", [(1, "1", "+14155550100")]),
        ("\r\n+1415*\r\n", [(2, "1", "+1415*")]),
        ("Jane,+14155550100", [(1, "2", "+14155550100")]),
    ],
)
def test_every_column_of_a_headerless_dnc_file_that_holds_numbers_is_read(tmp_path, content, expected):
    path = tmp_path / "dnc.csv"
    path.write_bytes(content.encode())
    assert read_dnc_rows(path) == expected


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_dnc_file_of_one_number_is_imported_and_one_of_a_header_alone_refused(campaign_db, tmp_path, suffix):
    one, header = tmp_path / f"one{suffix}", tmp_path / f"header{suffix}"
    if suffix == ".csv":
        one.write_text("+14155550100", encoding="utf-8")
        header.write_text("phone\n", encoding="utf-8")
    else:
        for path, cell in ((one, "+14155550100"), (header, "phone")):
            book = openpyxl.Workbook()
            book.active["A2"] = cell  # below a blank row: the entry's row is the sheet's row 2
            book.save(path)
    with transaction(campaign_db["db"]) as conn:
        assert import_dnc(conn, one, TUE_10_PHOENIX) == 1
        assert [r["pattern"] for r in list_dnc(conn)] == ["+14155550100"]
    if suffix == ".xlsx":
        assert read_dnc_rows(one) == [(2, "1", "+14155550100")]
    with pytest.raises(UserError, match=rf"^header{suffix}: the file has a header row but no data rows$"):
        read_dnc_rows(header)


def test_the_analysis_hook_puts_the_number_on_the_global_list_in_the_same_transaction(campaign_db):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    first, second = add_contacts(db, campaign_id, 2)
    provider = FakeProvider()
    run_tick(db, provider, VirtualClock(TUE_10_PHOENIX), pace_seconds=0)
    with transaction(db) as conn:
        calls = conn.execute("select call_id, contact_id from calls order by call_id").fetchall()
        apply_provider_calls(conn, [
            (calls[0][0], ProviderCall("p1", CallStatus.ended, disconnect_reason=DisconnectReason.user_hangup,
                                       analyzed=True, call_successful=False, custom_analysis={"do_not_call": True})),
            (calls[1][0], ProviderCall("p2", CallStatus.ended, disconnect_reason=DisconnectReason.user_hangup,
                                       analyzed=True, call_successful=False, custom_analysis={"do_not_call": False})),
        ], TUE_10_PHOENIX + timedelta(minutes=2))
        entries = conn.execute("select pattern, campaign_id, source from do_not_call").fetchall()
    assert entries == [("+16025550000", None, "call_analysis")]
    # next day: only the second contact may be called again
    assert eligible_ids(db, campaign_id, now=TUE_10_PHOENIX + timedelta(days=1)) == [second]
    assert first


def test_the_audit_summary_counts_claims_since_an_instant_with_recent_sample_contacts(campaign_db):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    monday, tuesday = TUE_10_PHOENIX - timedelta(days=1), TUE_10_PHOENIX

    def held(conn, now, rule, skipped, sample, campaign=campaign_id):
        frame = pl.DataFrame({"rule": [rule], "skipped": [skipped], "sample_contact_ids": [sample]})
        record_audit(conn, campaign, now, "tick", frame)

    with transaction(db) as conn:
        held(conn, monday, "do_not_call", 4, [1, 2, 3, 4])
        held(conn, monday, "window:US", 9, [5, 6])
        held(conn, tuesday, "do_not_call", 2, [3, 9])
        held(conn, tuesday, "do_not_call", 1, [8], campaign=campaign_id + 1)  # another campaign's claim
    with connect(db) as conn:
        everything = audit_summary(conn, campaign_id).to_dicts()
        since_tuesday = audit_summary(conn, campaign_id, since=tuesday).to_dicts()
        later = audit_summary(conn, campaign_id, since=tuesday + timedelta(microseconds=1)).to_dicts()
    # the samples: the latest claim's first, then the earlier ones' not yet shown, at most SAMPLE_SIZE (5)
    assert everything == [
        {"rule": "do_not_call", "claims": 2, "skipped": 6, "last_at": tuesday, "sample_contact_ids": [3, 9, 1, 2, 4]},
        {"rule": "window:US", "claims": 1, "skipped": 9, "last_at": monday, "sample_contact_ids": [5, 6]},
    ]
    # `since` is inclusive: Tuesday's claim is counted from its own instant on, Monday's no longer
    assert since_tuesday == [
        {"rule": "do_not_call", "claims": 1, "skipped": 2, "last_at": tuesday, "sample_contact_ids": [3, 9]},
    ]
    assert later == []


# ------------------------------------------------------------------ caps


def test_florida_numbers_get_at_most_three_calls_in_any_24_hours_across_campaigns(campaign_db):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    [miami] = add_numbers(db, campaign_id, ["+13055550100"])
    now = TUE_10_PHOENIX
    # three calls from other campaigns and numbers in the last 24 h (one refusal does not count)
    add_past_calls(db, "+13055550100", [now - timedelta(hours=23), now - timedelta(hours=5), now - timedelta(hours=1)],
                   campaign_id=99)
    assert eligible_ids(db, campaign_id, now=now) == []
    # 24 hours after the first one, the window has room again
    assert eligible_ids(db, campaign_id, now=now + timedelta(hours=1)) == [miami]
    with transaction(db) as conn:
        call_id = conn.execute("select call_id from calls where queued_at = ?", [now - timedelta(hours=5)]).fetchone()[0]
        # a concurrency refusal arriving for it: given back, so the cap has room again
        apply_provider_calls(conn, [(call_id, ProviderCall(None, CallStatus.failed_rate_limit))], now)
    assert eligible_ids(db, campaign_id, now=now) == [miami]


def test_french_numbers_get_at_most_four_calls_in_30_days(db):
    campaign_id = make_campaign_db(db, time_zone="Europe/Paris", country="FR")["campaign_id"]
    [paris] = add_numbers(db, campaign_id, ["+33612345678"])
    monday_11 = at(PARIS, 2026, 6, 15, 11, 0)
    add_past_calls(db, "+33612345678", [monday_11 - timedelta(days=d) for d in (29, 20, 10, 3)], campaign_id=99)
    with connect(db) as conn:
        plan = load_plans(conn, [campaign_id])[0]
        from tasks.dialing import _classify

        picked, skipped = _classify(conn, plan, monday_11, timedelta(0), size=10, audit=True)
    assert picked.height == 0
    assert skipped.to_dicts() == [{"rule": "cap_30d:FR", "skipped": 1, "sample_contact_ids": [paris]}]
    assert eligible_ids(db, campaign_id, now=monday_11 + timedelta(days=1, hours=1)) == [paris]


# ------------------------------------------------------------------ manual runs


def test_a_manual_run_ignores_the_campaign_schedule_but_never_the_law(campaign_db):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    add_contacts(db, campaign_id, 2)
    saturday_10_phoenix = datetime(2026, 5, 2, 17, 0, tzinfo=UTC)  # the campaign calls Mon-Fri only
    assert run_manual(db, FakeProvider(), campaign_id, VirtualClock(saturday_10_phoenix), pace_seconds=0).placed == 2
    friday_23_phoenix = datetime(2026, 5, 2, 6, 0, tzinfo=UTC)
    add_contacts(db, campaign_id, 1, first=10)
    result = run_manual(db, FakeProvider(), campaign_id, VirtualClock(friday_23_phoenix), pace_seconds=0)
    assert result.placed == 0
    with connect(db) as conn:
        summary = audit_summary(conn, campaign_id).to_dicts()
    assert [(r["rule"], r["skipped"]) for r in summary] == [("window:US", 1)]



def test_upgrading_a_store_derives_the_rolling_cap_attempts_from_its_calls(tmp_path, monkeypatch):
    import duckdb

    import tasks.store as store
    from tasks.store import apply_migrations

    every = store.migrations()
    path = tmp_path / "old.duckdb"
    monkeypatch.setattr(store, "migrations", lambda: [m for m in every if m[0] < 7])  # before 007
    con = duckdb.connect(str(path))
    con.execute("set TimeZone = 'UTC'")
    apply_migrations(con)
    con.execute("insert into contacts (phone_e164) values ('+13055550100'), ('+13055550101')")
    newest = datetime(2026, 6, 16, 17, 0, tzinfo=UTC)
    for call_id, contact_id, days_ago, counts in [
        (1, 1, 0, True),    # counted, the newest call
        (2, 1, 3, True),    # counted
        (3, 1, 2, False),   # a refusal: not an attempt
        (4, 2, 40, True),   # older than the 31 days kept
        (5, 2, 30, True),   # inside them
    ]:
        when = newest - timedelta(days=days_ago)
        con.execute(
            "insert into calls (call_id, campaign_id, contact_id, attempt_key, attempt_number, counts_as_attempt,"
            " phone_e164, status, provider, queued_at, updated_at) values (?, 9, ?, ?, 1, ?, ?, 'not_connected', 'x', ?, ?)",
            [call_id, contact_id, f"k{call_id}", counts, f"+1305555010{contact_id - 1}", when, when])
    con.close()
    monkeypatch.setattr(store, "migrations", lambda: every)
    con = duckdb.connect(str(path))
    apply_migrations(con)
    rows = con.execute("select contact_id, call_id from phone_attempts order by call_id").fetchall()
    con.close()
    assert rows == [(1, 1), (1, 2), (2, 5)]


@contextmanager
def migrated_after(tmp_path, monkeypatch, version: int):
    """A store at the schema before `version`: `.old` is its connection for the block to fill; after the block
    it is migrated to the latest schema and `.new` is a connection to it."""
    import duckdb

    import tasks.store as store
    from tasks.store import apply_migrations

    every = store.migrations()
    path = tmp_path / "old.duckdb"
    monkeypatch.setattr(store, "migrations", lambda: [m for m in every if m[0] < version])
    con = duckdb.connect(str(path))
    con.execute("set TimeZone = 'UTC'")
    apply_migrations(con)
    upgrade = SimpleNamespace(old=con, new=None)
    yield upgrade
    con.close()
    monkeypatch.setattr(store, "migrations", lambda: every)
    upgrade.new = duckdb.connect(str(path))
    upgrade.new.execute("set TimeZone = 'UTC'")
    apply_migrations(upgrade.new)


def test_migration_011_stores_the_number_each_attempt_rang(tmp_path, monkeypatch):
    with migrated_after(tmp_path, monkeypatch, 11) as upgrade:
        con = upgrade.old
        when = datetime(2026, 6, 16, 17, 0, tzinfo=UTC)
        con.execute("insert into contacts (phone_e164) values ('+13055550100')")
        # the call was to the number the contact had then; the contact's phone changed since
        con.execute("insert into calls (call_id, campaign_id, contact_id, attempt_key, attempt_number, phone_e164,"
                    " status, provider, queued_at, updated_at) values (1, 9, 1, 'k1', 1, '+13055550111', 'ended', 'x',"
                    " ?, ?)", [when, when])
        # call 2 was a deleted campaign's: only the contact's number is left to attribute it to
        con.execute("insert into phone_attempts values (1, 1, ?), (1, 2, ?)", [when, when])
    con = upgrade.new
    rows = con.execute("select call_id, phone_e164 from phone_attempts order by call_id").fetchall()
    con.close()
    assert rows == [(1, "+13055550111"), (2, "+13055550100")]


def test_migration_012_resolves_washington_numbers_again(tmp_path, monkeypatch):
    from tasks.compliance import resolve_zones

    with migrated_after(tmp_path, monkeypatch, 12) as upgrade:
        con = upgrade.old
        # as the lookup left them: Seattle and D.C. without a state, Miami with FL
        con.execute("insert into contacts (contact_id, phone_e164, region) values (1, '+12065550100', 'US'),"
                    " (2, '+12025550100', 'US'), (3, '+13055550100', 'US')")
        con.execute("update contacts set zone_resolved_at = updated_at,"
                    " subdivision = case when contact_id = 3 then 'FL' end")
    con = upgrade.new
    assert con.execute("select contact_id from contacts where zone_resolved_at is distinct from updated_at"
                       " order by 1").fetchall() == [(1,), (2,)]
    resolve_zones(con)  # what the next claim reaching them does
    assert con.execute("select contact_id, subdivision from contacts order by 1").fetchall() == [
        (1, "WA"), (2, "DC"), (3, "FL")]
    con.close()


def test_a_claim_records_its_attempts_and_a_refusal_gives_them_back(campaign_db):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    [miami] = add_numbers(db, campaign_id, ["+13055550100"])
    run_manual(db, FakeProvider(concurrency_limit=0), campaign_id, VirtualClock(TUE_10_PHOENIX), pace_seconds=0)
    with connect(db) as conn:
        calls = conn.execute("select call_id, status, counts_as_attempt from calls").fetchall()
        attempts = conn.execute("select contact_id, call_id from phone_attempts").fetchall()
    # the provider refused it (concurrency): not an attempt, so not counted by the caps either
    assert [(s, c) for _, s, c in calls] == [("failed_rate_limit", False)] and attempts == []
    run_manual(db, FakeProvider(), campaign_id, VirtualClock(TUE_10_PHOENIX + timedelta(minutes=5)), pace_seconds=0)
    with connect(db) as conn:
        attempts = conn.execute("select contact_id, call_id, attempted_at from phone_attempts").fetchall()
        second = conn.execute("select max(call_id) from calls").fetchone()[0]
    # dated the claim's placing deadline (no pace: the 360 s slack for free lines), the latest it may ring
    assert attempts == [(miami, second, TUE_10_PHOENIX + timedelta(minutes=5, seconds=HORIZON_SLACK_SECONDS))]
