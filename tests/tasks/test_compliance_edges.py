"""Compliance at its edges, table by table: holidays (observed days, states, the callee's own date),
overseas departments, callee zones, do-not-call entries, lists and files, the analysis opt-out,
and the rolling caps at exactly 24 hours and 30 days."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import openpyxl
import pytest

from schemas.enums import CallStatus, DisconnectReason
from tasks.call_state import apply_provider_calls
from tasks.clock import VirtualClock
from tasks.compliance import (
    add_dnc,
    area_code_state,
    import_dnc,
    list_dnc,
    load_rules,
    normalise_dnc_pattern,
    read_rules_csv,
    remove_dnc,
    replace_rules,
    rule_for,
    us_state,
    zone_blocked,
)
from tasks.dialing import _classify, run_tick
from tasks.errors import UserError, ValidationError
from tasks.store import connect, transaction
from tasks.telephony.base import ProviderCall
from tests.factories import add_contacts, make_campaign_db
from tests.fakes import FakeProvider
from tests.tasks.test_compliance import (
    BOGOTA,
    NY,
    PARIS,
    RULES_CSV,
    SYDNEY,
    TUE_10_PHOENIX,
    add_numbers,
    add_past_calls,
    at,
    eligible_ids,
    plan_of,
)

UTC = timezone.utc
LONDON, GUADELOUPE = "Europe/London", "America/Guadeloupe"


@pytest.fixture(scope="module")
def rules():
    return {r.rule_id: r for r in read_rules_csv(RULES_CSV)}


def held_by(db, campaign_id, now) -> list[tuple[str, int, list[int]]]:
    """(rule, contacts held, sample ids) of a claim at `now` that records nothing."""
    with connect(db) as conn:
        _picked, held = _classify(conn, plan_of(db, campaign_id), now, timedelta(0), size=50, audit=True)
    return held.rows()


# ------------------------------------------------------------------ holidays


@pytest.mark.parametrize(
    ("rule_id", "zone", "local", "country", "subdivision", "expected"),
    [
        # Colombia moves most holidays to the next Monday (Ley Emiliani): the day itself is a working day
        ("CO", BOGOTA, (2026, 1, 6, 10, 0), "CO", None, None),  # Tuesday, Epiphany's own date
        ("CO", BOGOTA, (2026, 1, 12, 10, 0), "CO", None, "holiday:CO"),  # the Monday it is observed on
        ("CO", BOGOTA, (2026, 3, 19, 10, 0), "CO", None, None),  # Thursday, Saint Joseph's own date
        ("CO", BOGOTA, (2026, 3, 23, 10, 0), "CO", None, "holiday:CO"),
        # a US rule edited to keep holidays free: a Saturday holiday is observed the Friday before
        ("US+holidays", NY, (2026, 7, 3, 12, 0), "US", None, "holiday:US"),  # Friday, 4 July observed
        ("US+holidays", NY, (2026, 7, 4, 12, 0), "US", None, "holiday:US"),  # the Saturday itself
        ("US+holidays", NY, (2027, 12, 31, 12, 0), "US", None, "holiday:US"),  # 1 Jan 2028 (Sat) observed in 2027
        ("US+holidays", NY, (2027, 12, 30, 12, 0), "US", None, None),
        # state holidays only where the state is known
        ("US+holidays", NY, (2026, 4, 20, 12, 0), "US", "MA", "holiday:US"),  # Patriots' Day, Massachusetts
        ("US+holidays", NY, (2026, 4, 20, 12, 0), "US", "NY", None),
        ("US+holidays", NY, (2026, 4, 16, 12, 0), "US", "DC", "holiday:US"),  # Emancipation Day, D.C.
        ("US+holidays", NY, (2026, 4, 16, 12, 0), "US", None, None),
        ("FR", PARIS, (2026, 4, 3, 11, 0), "FR", "57", "holiday:FR"),  # Good Friday, Alsace-Moselle only
        ("FR", PARIS, (2026, 4, 3, 11, 0), "FR", None, None),
        # the callee's own date, not the campaign's (Phoenix) nor UTC's
        ("DEFAULT", SYDNEY, (2026, 12, 25, 9, 0), "AU", None, "holiday:DEFAULT"),  # 24 Dec 22:00 UTC
        ("DEFAULT", SYDNEY, (2026, 1, 27, 9, 0), "AU", None, None),  # 26 Jan (Australia Day) in UTC and Phoenix
        ("DEFAULT", SYDNEY, (2026, 1, 26, 9, 0), "AU", None, "holiday:DEFAULT"),
        # substitute days: 25 and 26 Dec 2027 fall on a weekend, observed Monday 27 and Tuesday 28
        ("DEFAULT", LONDON, (2027, 12, 28, 12, 0), "GB", None, "holiday:DEFAULT"),
        ("DEFAULT", LONDON, (2027, 12, 29, 12, 0), "GB", None, None),
    ],
)
def test_holidays_by_the_callees_calendar_and_date(rules, rule_id, zone, local, country, subdivision, expected):
    rule = replace(rules["US"], no_public_holidays=True) if rule_id == "US+holidays" else rules[rule_id]
    assert zone_blocked(rule, [zone], country, subdivision, at(zone, *local)) == expected


# ------------------------------------------------------------------ overseas departments


@pytest.mark.parametrize(
    ("region", "expected"),
    [("GP", "FR"), ("MQ", "FR"), ("GF", "FR"), ("RE", "FR"), ("YT", "FR"),
     ("PM", "DEFAULT"),  # an overseas collectivity, not a department: the default unless a rule names it
     ("FR", "FR"), ("PR", "DEFAULT")],
)
def test_french_overseas_departments_follow_the_french_rule(rules, region, expected):
    assert rule_for(rules, region, None).rule_id == expected


def test_a_rule_of_its_own_wins_over_the_departments_country(rules):
    own = replace(rules["DEFAULT"], rule_id="GP", country="GP")
    assert rule_for({**rules, "GP": own}, "GP", None).rule_id == "GP"
    by_subdivision = replace(rules["FR"], rule_id="FR-971", subdivision="971")
    assert rule_for({**rules, "FR-971": by_subdivision}, "GP", None).rule_id == "FR-971"


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ((2026, 4, 28, 10, 30), None),  # Tuesday morning
        ((2026, 4, 28, 13, 30), "window:FR"),  # the lunch break
        ((2026, 5, 2, 10, 0), "window:FR"),  # Saturday: the default (Mon-Sat 09-20) would allow it
        ((2026, 5, 27, 10, 30), "holiday:FR"),  # abolition of slavery, Guadeloupe's own holiday
    ],
)
def test_a_guadeloupe_number_is_called_by_french_law_and_its_own_holidays(db, local, expected):
    campaign_id = make_campaign_db(db)["campaign_id"]
    [guadeloupe] = add_numbers(db, campaign_id, ["+590690123456"])
    now = at(GUADELOUPE, *local)
    assert held_by(db, campaign_id, now) == ([] if expected is None else [(expected, 1, [guadeloupe])])


def test_a_guadeloupe_number_gets_the_french_30_day_cap(db):
    campaign_id = make_campaign_db(db)["campaign_id"]
    [guadeloupe] = add_numbers(db, campaign_id, ["+590690123456"])
    now = at(GUADELOUPE, 2026, 6, 16, 10, 30)
    add_past_calls(db, "+590690123456", [now - timedelta(days=d) for d in (25, 15, 8, 1)], campaign_id=99)
    assert held_by(db, campaign_id, now) == [("cap_30d:FR", 1, [guadeloupe])]


# ------------------------------------------------------------------ callee zones


@pytest.mark.parametrize(
    ("area_code", "state"),
    [("305", "FL"), ("850", "FL"), ("212", "NY"), ("602", "AZ"), ("701", "ND"),
     ("202", "DC"), ("771", "DC"),  # the geocoder says "Washington D.C."
     ("206", "WA"), ("509", "WA"),  # ... and "Washington State"
     ("253", "WA"), ("800", None)],  # toll-free: no state
)
def test_area_codes_give_their_state(area_code, state):
    assert area_code_state(area_code) == state


@pytest.mark.parametrize(("text", "state"), [("Washington", "WA"), ("Washington State", "WA"), ("washington dc", "DC"),
                                             ("Washington D.C.", "DC"), ("District of Columbia", "DC"), ("fl", "FL"),
                                             ("Ontario", None)])
def test_state_names_as_people_write_them(text, state):
    assert us_state(text) == state


TUE_0830_CENTRAL = datetime(2026, 4, 28, 13, 30, tzinfo=UTC)  # 09:30 New York, 07:30 Denver, 06:30 Phoenix
TUE_2030_NEW_YORK = datetime(2026, 4, 29, 0, 30, tzinfo=UTC)  # 19:30 Chicago


@pytest.mark.parametrize(
    ("phone", "properties", "now", "expected"),
    [
        # North Dakota: phonenumbers gives Denver and Central for the number; both must be open
        ("+17015550100", {}, TUE_0830_CENTRAL, "window:US"),
        ("+17015550100", {}, TUE_0830_CENTRAL + timedelta(minutes=30), None),  # 08:00 in Denver
        # a mapped time zone is the callee's one zone; a mapped state gives that state's zones
        ("+17015550100", {"time_zone": "America/Chicago"}, TUE_0830_CENTRAL, None),
        ("+17015550100", {"state": "ND"}, TUE_0830_CENTRAL, "window:US"),
        # Florida by area code; the panhandle exchange is on Central time, Miami on Eastern
        ("+18502300100", {}, TUE_2030_NEW_YORK, None),  # 19:30 in Pensacola: Florida allows until 20:00
        ("+13055550100", {}, TUE_2030_NEW_YORK, "window:US-FL"),  # 20:30 in Miami
        ("+12125550100", {}, TUE_2030_NEW_YORK, None),  # New York, US rule: until 21:00
        # a Florida number whose contact lives in New York (mapped state): the New York rule
        ("+13055550100", {"state": "NY"}, TUE_2030_NEW_YORK, None),
    ],
)
def test_a_contacts_window_by_area_code_region_or_mapped_zone(db, phone, properties, now, expected):
    campaign_id = make_campaign_db(db)["campaign_id"]
    [contact] = add_numbers(db, campaign_id, [phone], properties)
    assert held_by(db, campaign_id, now) == ([] if expected is None else [(expected, 1, [contact])])


@pytest.mark.parametrize(("phone", "subdivision"), [("+12022345678", "DC"), ("+12065550100", "WA"), ("+18502300100", "FL")])
def test_the_contact_list_shows_the_state_of_the_area_code(db, phone, subdivision):
    campaign_id = make_campaign_db(db)["campaign_id"]
    [contact] = add_numbers(db, campaign_id, [phone])
    held_by(db, campaign_id, TUE_10_PHOENIX)  # the claim resolves the new contact's zone
    with connect(db) as conn:
        assert conn.execute("select subdivision from contacts where contact_id = ?", [contact]).fetchone() == (subdivision,)


def test_a_washington_dc_number_keeps_dc_holidays_free_under_an_edited_us_rule(db):
    campaign_id = make_campaign_db(db)["campaign_id"]
    dc, new_york = add_numbers(db, campaign_id, ["+12022345678", "+12125550100"])
    with transaction(db) as conn:
        rules = load_rules(conn)
        rules["US"] = replace(rules["US"], no_public_holidays=True)
        replace_rules(conn, list(rules.values()), TUE_10_PHOENIX)
    # Thursday 16 April 2026, 12:00 in both: Emancipation Day is a holiday in D.C. only
    assert held_by(db, campaign_id, at(NY, 2026, 4, 16, 12, 0)) == [("holiday:US", 1, [dc])]
    assert new_york


# ------------------------------------------------------------------ do-not-call entries


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("+1 305 555 0100 ext. 12", None, "+13055550100"),  # an extension is not part of the line called
        ("(305) 555-0100 x12", "US", "+13055550100"),
        ("305.555.0100", "US", "+13055550100"),
        ("1-305-555-0100", "US", "+13055550100"),  # the national trunk 1
        ("tel:+1-305-555-0100", None, "+13055550100"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+33 (0)6 12 34 56 78", None, "+33612345678"),
        ("+1-305-*", None, "+1305*"),
        ("+1 (305) *", None, "+1305*"),
        ("+33 (0)6*", None, "+336*"),  # "(0)" is dialled only inside France: +3306* would match no number
        ("+44 (0) 7*", None, "+447*"),
        ("+39 (0)6*", None, "+3906*"),  # Italy keeps its 0 in international numbers
    ],
)
def test_dnc_entries_in_any_format_become_one_pattern(text, region, expected):
    assert normalise_dnc_pattern(text, region)[0] == expected


@pytest.mark.parametrize(
    ("text", "region", "message"),
    [
        ("305-555-0100", None, "missing country code and no default country"),
        ("305*", "US", "a wildcard is '+' and digits then '*'"),  # wildcards are written with the country code
        ("+1 305 555 01", None, "too short"),
        ("*", None, "a wildcard is '+' and digits then '*'"),
    ],
)
def test_dnc_entries_that_cannot_be_read_are_refused_with_why(text, region, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        normalise_dnc_pattern(text, region)


@pytest.fixture
def two_campaigns(db):
    """Campaigns A and B with the same Miami contact enrolled in both."""
    first = make_campaign_db(db)["campaign_id"]
    with transaction(db) as conn:
        second = conn.execute("insert into campaigns (name, agent_id, weekly_schedule, time_zone, country) values"
                              " ('B', 1, '{}', 'America/Phoenix', 'US') returning campaign_id").fetchone()[0]
    [miami] = add_numbers(db, first, ["+13055550100"])
    with transaction(db) as conn:
        conn.execute("insert into campaign_contacts (campaign_id, contact_id) values (?, ?)", [second, miami])
    return {"db": db, "a": first, "b": second, "miami": miami}


@pytest.mark.parametrize(
    ("entries", "removals", "held_in"),
    [
        ([(None, "+13055550100")], [], {"a", "b"}),  # the global list holds everywhere
        ([("a", "(305) 555-0100")], [], {"a"}),  # a campaign's list holds in that campaign only
        ([("a", "+1305*")], [], {"a"}),
        ([(None, "+1305*")], [], {"a", "b"}),
        ([(None, "+1305555*")], [], {"a", "b"}),
        ([(None, "+1786*")], [], set()),
        # removed in another format than it was added in
        ([(None, "305-555-0100")], [(None, "+1 305 555 0100")], set()),
        # removing the campaign's entry leaves the global one; removing the number leaves a wildcard covering it
        ([(None, "+13055550100"), ("a", "+13055550100")], [("a", "+13055550100")], {"a", "b"}),
        ([(None, "+1305*"), (None, "+13055550100")], [(None, "+13055550100")], {"a", "b"}),
        ([("b", "+13055550100")], [(None, "+13055550100")], {"b"}),  # not on the global list: nothing removed
    ],
)
def test_global_and_campaign_lists_exact_numbers_and_wildcards(two_campaigns, entries, removals, held_in):
    db, ids = two_campaigns["db"], {None: None, "a": two_campaigns["a"], "b": two_campaigns["b"]}
    with transaction(db) as conn:
        for scope, text in entries:
            add_dnc(conn, [text], TUE_10_PHOENIX, campaign_id=ids[scope], default_region="US")
        for scope, text in removals:
            remove_dnc(conn, text, campaign_id=ids[scope], default_region="US")
    held = {name for name in ("a", "b") if eligible_ids(db, ids[name]) == []}
    assert held == held_in


def test_adding_the_same_number_again_in_another_format_adds_nothing(campaign_db):
    db = campaign_db["db"]
    with transaction(db) as conn:
        # three spellings of one number and a wildcard, in one call: two entries
        assert add_dnc(conn, ["+13055550100", "305-555-0100", "(305) 555 0100 ext 9", "+1305*"], TUE_10_PHOENIX,
                       default_region="US") == 2
        assert add_dnc(conn, ["1 305 555 0100", "+1 305 *"], TUE_10_PHOENIX, default_region="US") == 0
        assert sorted(r["pattern"] for r in list_dnc(conn)) == ["+1305*", "+13055550100"]


# ------------------------------------------------------------------ do-not-call files


def _xlsx(path, rows):
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


@pytest.mark.parametrize(
    ("name", "content", "region", "listed"),
    [
        # no header row: the first number is an entry, not a column name
        ("plain.csv", "+13055550100\n+13055550101\n", None, ["+13055550100", "+13055550101"]),
        ("wildcards.csv", "+1305*\n+1786*\n", None, ["+1305*", "+1786*"]),
        ("national.csv", "(305) 555-0100\n305.555.0101\n", "US", ["+13055550100", "+13055550101"]),
        ("plain.xlsx", [["+13055550100"], ["+13055550101"]], None, ["+13055550100", "+13055550101"]),
        # the phone column found by its name wherever it is, not the first column
        ("named.csv", "account,Phone Number\n2125550100,+13055550100\n", "US", ["+13055550100"]),
        ("tel.csv", "id,Telephone\n7,+13055550100\n", None, ["+13055550100"]),
        ("spanish.csv", "nombre,Teléfono\nAna,+573001234567\n", None, ["+573001234567"]),
        # every phone column is a number not to call
        ("two.csv", "name,phone,mobile\nAna,+13055550100,+13055550101\nBo,,+13055550102\n", None,
         ["+13055550100", "+13055550101", "+13055550102"]),
        # a header written twice: both columns are numbers (the second, read as "phone (2)", was skipped)
        ("twice.csv", "phone,phone\n+13055550151,+13055550152\n", None, ["+13055550151", "+13055550152"]),
        ("twice.xlsx", [["Phone", "Phone"], ["+13055550151", "+13055550152"]], None, ["+13055550151", "+13055550152"]),
        # numbers stored as numbers in a workbook, typed nationally
        ("numbers.xlsx", [["phone"], [3055550100], [None], [13055550101]], "US", ["+13055550100", "+13055550101"]),
        # spaces, dashes, an extension; a duplicate in two spellings is one entry
        ("messy.csv", "phone\n+1 305-555-0100\n305 555 0100 x7\n\n+1 (305) 555-0101\n", "US",
         ["+13055550100", "+13055550101"]),
    ],
)
def test_a_dnc_file_lists_every_number_it_holds(campaign_db, tmp_path, name, content, region, listed):
    path = tmp_path / name
    if name.endswith(".xlsx"):
        _xlsx(path, content)
    else:
        path.write_text(content, encoding="utf-8")
    with transaction(campaign_db["db"]) as conn:
        added = import_dnc(conn, path, TUE_10_PHOENIX, default_region=region)
        patterns = sorted(r["pattern"] for r in list_dnc(conn))
    assert (added, patterns) == (len(listed), sorted(listed))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", "phone\n+13055550100\n\nnot a number\n", "bad.csv row 4, column phone: 'not a number': not a phone number"),
        ("bad.xlsx", [["phone"], ["+13055550100"], [None], ["junk"]], "bad.xlsx row 4, column phone: 'junk': not a phone number"),
        ("second.csv", "name,phone,mobile\nAna,+13055550100,+1305\n", "second.csv row 2, column mobile: '+1305': too short"),
        ("national.csv", "phone\n3055550100\n", "national.csv row 2, column phone: '3055550100': missing country code"),
        # a second number past the header's one column would be dropped without a word
        ("extra.csv", "phone\n+13055550100,+13055550101\n+13055550102\n",
         "extra.csv row 2, field 2: '+13055550101' lies past the header's 1 column"),
        ("headerless.csv", "+13055550100\nhello\n", "headerless.csv row 2, column 1: 'hello'"),
    ],
)
def test_a_dnc_file_with_a_bad_row_names_it_and_writes_nothing(campaign_db, tmp_path, name, content, message):
    path = tmp_path / name
    if name.endswith(".xlsx"):
        _xlsx(path, content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError) as raised:
        with transaction(campaign_db["db"]) as conn:
            add_dnc(conn, ["+1786*"], TUE_10_PHOENIX)  # written in the same transaction: rolled back too
            import_dnc(conn, path, TUE_10_PHOENIX)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    with connect(campaign_db["db"]) as conn:
        assert list_dnc(conn, all_lists=True) == []


# ------------------------------------------------------------------ the analysis opt-out


def _analysed(db, campaign_id, custom_analysis: dict) -> list[tuple]:
    """Dial one contact, then store an analysis with `custom_analysis`; the do-not-call rows after it."""
    add_contacts(db, campaign_id, 1)
    run_tick(db, FakeProvider(), VirtualClock(TUE_10_PHOENIX), pace_seconds=0)
    with transaction(db) as conn:
        [(call_id,)] = conn.execute("select call_id from calls").fetchall()
        apply_provider_calls(conn, [(call_id, ProviderCall(
            "p1", CallStatus.ended, disconnect_reason=DisconnectReason.user_hangup, analyzed=True,
            call_successful=False, custom_analysis=custom_analysis))], TUE_10_PHOENIX + timedelta(minutes=2))
        return conn.execute("select pattern, campaign_id, source from do_not_call").fetchall()


@pytest.mark.parametrize(
    ("custom_analysis", "listed"),
    [
        ({"do_not_call": True}, True),
        ({"do_not_call": "true"}, True),
        ({"do_not_call": "Yes"}, True),
        ({"do_not_call": 1}, True),
        ({"do_not_call": "1"}, True),
        ({"do_not_call": False}, False),
        ({"do_not_call": "no"}, False),
        ({"do_not_call": None}, False),
        ({"do_not_call_reason": "true"}, False),  # another key
        ({"details": {"do_not_call": True}}, False),  # only the top-level key is the statement
        ({}, False),
    ],
)
def test_an_analysis_opt_out_puts_the_number_on_the_global_list(campaign_db, custom_analysis, listed):
    entries = _analysed(campaign_db["db"], campaign_db["campaign_id"], custom_analysis)
    assert entries == ([("+16025550000", None, "call_analysis")] if listed else [])


def test_an_analysis_opt_out_is_global_even_when_the_campaign_listed_the_number(campaign_db):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    # on this campaign's own list only after the call was placed (the claim did not see it)
    add_contacts(db, campaign_id, 1)
    run_tick(db, FakeProvider(), VirtualClock(TUE_10_PHOENIX), pace_seconds=0)
    with transaction(db) as conn:
        add_dnc(conn, ["+16025550000"], TUE_10_PHOENIX + timedelta(minutes=1), campaign_id=campaign_id)
        [(call_id,)] = conn.execute("select call_id from calls").fetchall()
        apply_provider_calls(conn, [(call_id, ProviderCall(
            "p1", CallStatus.ended, disconnect_reason=DisconnectReason.user_hangup, analyzed=True,
            call_successful=False, custom_analysis={"do_not_call": True}))], TUE_10_PHOENIX + timedelta(minutes=2))
        rows = conn.execute("select campaign_id, source from do_not_call order by dnc_id").fetchall()
    # the person asked not to be called by us at all: every campaign's claim must see it
    assert rows == [(campaign_id, "cli"), (None, "call_analysis")]


@pytest.mark.parametrize("key", ["no_llamar_más", 'say "stop"'])
def test_a_configured_opt_out_key_with_accents_or_quotes_still_lists_the_number(campaign_db, monkeypatch, key):
    from tasks.settings import reset_settings

    monkeypatch.setenv("CAMPAIGNS_DO_NOT_CALL_KEY", key)
    reset_settings()
    entries = _analysed(campaign_db["db"], campaign_db["campaign_id"], {key: True})
    assert entries == [("+16025550000", None, "call_analysis")]


def test_a_number_listed_while_a_real_time_batch_places_is_not_dialled(campaign_db):
    from tests.tasks.test_dialing import WallClockAt

    db = campaign_db["db"]
    add_contacts(db, campaign_db["campaign_id"], 3)

    class ListedMeanwhile(FakeProvider):
        def place_call(self, request, now):
            call_id = super().place_call(request, now)
            if len(self.calls) == 1:
                with transaction(db) as conn:
                    add_dnc(conn, ["+16025550002"], now, reason="asked by email")
            return call_id

    provider = ListedMeanwhile()
    run_tick(db, provider, WallClockAt(TUE_10_PHOENIX), pace_seconds=0.6)
    assert [r.to_number for r, _ in provider.calls.values()] == ["+16025550000", "+16025550001"]


# ------------------------------------------------------------------ rolling caps at their edges

H = timedelta(hours=1)
S = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("counted", "refused", "held"),
    [
        ([24 * H - S, 5 * H, 1 * H], [], True),  # three in the last 24 h: Florida's cap
        ([24 * H, 5 * H, 1 * H], [], False),  # exactly 24 h ago has left the window (now - 24 h, now]
        ([30 * H, 5 * H, 1 * H], [], False),
        ([5 * H, 1 * H, 0 * H], [], True),  # one at this very instant counts
        ([5 * H, 1 * H], [2 * H], False),  # a refusal (never placed) is not a call
        ([5 * H, 1 * H], [2 * H, 3 * H, 4 * H], False),
    ],
)
def test_florida_24_hour_cap_at_its_boundary(campaign_db, counted, refused, held):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    [miami] = add_numbers(db, campaign_id, ["+13055550100"])
    now = TUE_10_PHOENIX  # 13:00 in Miami
    add_past_calls(db, "+13055550100", [now - age for age in counted], campaign_id=98)
    add_past_calls(db, "+13055550100", [now - age for age in refused], campaign_id=99, counts=False)
    assert held_by(db, campaign_id, now) == ([("cap_24h:US-FL", 1, [miami])] if held else [])


D = timedelta(days=1)


@pytest.mark.parametrize(
    ("ages", "held"),
    [
        ([30 * D - S, 20 * D, 10 * D, 3 * D], True),  # four in the last 30 days: the French cap
        ([30 * D, 20 * D, 10 * D, 3 * D], False),  # exactly 30 days (720 h) ago has left the window
        ([31 * D, 20 * D, 10 * D, 3 * D], False),
    ],
)
def test_french_30_day_cap_at_its_boundary(db, ages, held):
    campaign_id = make_campaign_db(db, time_zone="Europe/Paris", country="FR")["campaign_id"]
    [paris] = add_numbers(db, campaign_id, ["+33612345678"])
    now = at(PARIS, 2026, 6, 15, 11, 0)  # Monday 11:00 in Paris
    add_past_calls(db, "+33612345678", [now - age for age in ages], campaign_id=99)
    assert held_by(db, campaign_id, now) == ([("cap_30d:FR", 1, [paris])] if held else [])


def test_caps_count_every_campaign_and_a_cap_held_contact_is_audited_once_per_claim(db):
    # the same Miami number called from two other campaigns and two caller numbers: one count
    campaign_id = make_campaign_db(db)["campaign_id"]
    [miami] = add_numbers(db, campaign_id, ["+13055550100"])
    add_past_calls(db, "+13055550100", [TUE_10_PHOENIX - 3 * H], campaign_id=97)
    add_past_calls(db, "+13055550100", [TUE_10_PHOENIX - 2 * H, TUE_10_PHOENIX - H], campaign_id=98)
    run_tick(db, FakeProvider(), VirtualClock(TUE_10_PHOENIX), pace_seconds=0)
    with connect(db) as conn:
        audit = conn.execute("select rule, skipped, sample_contact_ids from claim_audit").fetchall()
        placed = conn.execute("select count(*) from calls where campaign_id = ?", [campaign_id]).fetchone()[0]
    assert (audit, placed) == ([("cap_24h:US-FL", 1, [miami])], 0)


@pytest.mark.parametrize(
    ("entries", "listed"),
    [
        ([(None, "+13055550100")], {"+13055550100"}),
        ([(None, "+1305*")], {"+13055550100", "+13055550101"}),
        ([("own", "+13055550101")], {"+13055550101"}),
        ([("other", "+13055550101")], set()),  # another campaign's list
        ([(None, "+1786*"), ("other", "+1305*")], set()),
    ],
)
def test_listed_numbers_checks_a_batch_against_the_global_and_the_campaigns_list(two_campaigns, entries, listed):
    from tasks.compliance import listed_numbers

    db, ids = two_campaigns["db"], {None: None, "own": two_campaigns["a"], "other": two_campaigns["b"]}
    with transaction(db) as conn:
        for scope, text in entries:
            add_dnc(conn, [text], TUE_10_PHOENIX, campaign_id=ids[scope])
        assert listed_numbers(conn, ids["own"], ["+13055550100", "+13055550101", "+12125550100"]) == listed
        assert listed_numbers(conn, ids["own"], []) == set()
