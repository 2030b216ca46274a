"""The retry policy: rules by outcome, when the next attempt may be placed, and how it lands on enrollments."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from schemas.campaign import validate_settings
from schemas.enums import CallStatus, DisconnectReason
from tasks.call_state import apply_provider_calls
from tasks.campaigns import get_campaign, update_campaign
from tasks.dialing import assign_numbers
from tasks.errors import UserError
from tasks.retry_policy import (
    DEFAULT_POLICY,
    RetryRule,
    check_overrides,
    effective_policy,
    next_call_at,
    parse_rule,
    rule_for,
)
from tasks.schedule import Schedule
from tasks.store import connect, transaction
from tasks.telephony.base import ProviderCall
from tests.factories import REFERENCE_SCHEDULE, make_campaign_db
from tests.tasks.seeding import enrollment_row, seed_call

# Phoenix has no DST: 10:00 local = 17:00 UTC all year.
TUE_10 = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)
WED_MIDNIGHT = datetime(2026, 4, 29, 7, 0, tzinfo=UTC)
PHOENIX = Schedule.from_row("America/Phoenix", list(REFERENCE_SCHEDULE), REFERENCE_SCHEDULE, date(2026, 4, 27), None)


@pytest.mark.parametrize(("text", "expected"), [
    ("30m", RetryRule("wait", timedelta(minutes=30))),
    ("2h", RetryRule("wait", timedelta(hours=2))),
    (" 1D ", RetryRule("wait", timedelta(days=1))),
    ("next_day", RetryRule("next_day")),
    ("next_day_other_band", RetryRule("next_day_other_band")),
    ("other_number", RetryRule("other_number")),
    ("never", RetryRule("never")),
    ("now", RetryRule("now")),
])
def test_rules_parse_from_text(text, expected):
    assert parse_rule(text) == expected


@pytest.mark.parametrize("text", ["0m", "soon", "2 weeks", "", 30])
def test_bad_rules_are_refused_with_what_is_allowed(text):
    with pytest.raises(ValueError, match="rule"):
        parse_rule(text)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"dial_bussy": "30m"}, 'unknown outcome "dial_bussy"'),
    ({"concurrency_limit_reached": "1h"}, "re-queued at once"),
    ({"invalid_destination": "1d"}, "the only rule is never"),
    ({"dial_busy": "later"}, 'dial_busy: "later" is not a rule'),
])
def test_overrides_name_the_broken_key(overrides, message):
    with pytest.raises(ValueError, match=message):
        check_overrides(overrides)


def test_overrides_are_normalised_and_merged_over_the_defaults():
    assert check_overrides({"dial_busy": "90m", "dial_no_answer": "120m"}) == {"dial_busy": "90m", "dial_no_answer": "2h"}
    policy = effective_policy('{"dial_busy": "1h"}')
    assert policy["dial_busy"] == RetryRule("wait", timedelta(hours=1))
    assert policy["voicemail_reached"] == parse_rule(DEFAULT_POLICY["voicemail_reached"])


@pytest.mark.parametrize(("reason", "seconds", "expected"), [
    ("dial_busy", 0, "30m"),
    ("dial_no_answer", 0, "2h"),
    ("user_hangup", 4.0, "next_day"),   # hung up within 10 s
    ("user_hangup", 45.0, None),        # a real conversation: no rule
    ("agent_hangup", 90.0, None),
    ("marked_as_spam", 0, "other_number"),
    (None, None, None),
])
def test_the_rule_for_an_outcome(reason, seconds, expected):
    rule = rule_for(effective_policy(None), reason, seconds)
    assert (rule.text if rule else None) == expected


@pytest.mark.parametrize(("reason", "seconds", "expected"), [
    ("agent_hangup", 35.0, "next_day_other_band"),  # the agent left a message in the box, then hung up
    ("user_hangup", 4.0, "next_day_other_band"),    # the box cut the call short: not the person hanging up
    ("max_duration_reached", 600.0, "next_day_other_band"),
    ("dial_no_answer", 0, "2h"),                    # a reason that is no hang-up keeps its own rule
    ("marked_as_spam", 0, "other_number"),
])
def test_a_hang_up_in_a_voicemail_box_follows_the_voicemail_rule(reason, seconds, expected):
    assert rule_for(effective_policy(None), reason, seconds, in_voicemail=True).text == expected
    overridden = effective_policy({"voicemail_reached": "4h"})
    assert rule_for(overridden, "agent_hangup", 35.0, in_voicemail=True).text == "4h"
    assert rule_for(overridden, "agent_hangup", 35.0, in_voicemail=False) is None


@pytest.mark.parametrize(("rule", "numbers", "expected"), [
    ("30m", 1, TUE_10 + timedelta(minutes=31)),
    ("2h", 1, TUE_10 + timedelta(hours=2, minutes=1)),
    ("next_day", 1, WED_MIDNIGHT),
    # a call at 10:00 is retried the next calling day one 3-hour band later: 13:00
    ("next_day_other_band", 1, datetime(2026, 4, 29, 20, 0, tzinfo=UTC)),
    ("other_number", 2, None),            # at once, from another number
    ("other_number", 1, WED_MIDNIGHT),    # only one number: wait a day instead
    ("never", 1, None),
])
def test_when_the_next_attempt_may_be_placed(rule, numbers, expected):
    ended = TUE_10 + timedelta(minutes=1)
    assert next_call_at(parse_rule(rule), PHOENIX, TUE_10, ended, numbers) == expected


def test_another_band_moves_back_when_later_is_outside_the_window():
    # called Friday 16:00: Saturday is no calling day, Monday 19:00 is closed, so Monday 13:00
    friday_16 = datetime(2026, 5, 1, 23, 0, tzinfo=UTC)
    assert next_call_at(parse_rule("next_day_other_band"), PHOENIX, friday_16, friday_16, 1) == datetime(
        2026, 5, 4, 20, 0, tzinfo=UTC)


def _finish(db, call_id, reason, seconds=0.0, from_number=None):
    status = CallStatus.ended if reason in ("user_hangup", "voicemail_reached") else CallStatus.not_connected
    update = ProviderCall("pc_1", status, disconnect_reason=DisconnectReason(reason), started_at=TUE_10,
                          ended_at=TUE_10 + timedelta(seconds=30 + seconds), duration_seconds=seconds,
                          analyzed=True, call_successful=False, in_voicemail=reason == "voicemail_reached")
    with transaction(db) as conn:
        if from_number:
            conn.execute("update calls set from_number = ? where call_id = ?", [from_number, call_id])
        apply_provider_calls(conn, [(call_id, update)], TUE_10 + timedelta(minutes=5))
        return enrollment_row(conn, call_id)


def _call(db, campaign_id):
    with transaction(db) as conn:
        return seed_call(conn, campaign_id, "+16025551234", TUE_10, provider_call_id="pc_1")


@pytest.mark.parametrize(("reason", "seconds", "next_at", "finished"), [
    ("dial_busy", 0.0, TUE_10 + timedelta(seconds=30, minutes=30), None),
    ("dial_no_answer", 0.0, TUE_10 + timedelta(seconds=30, hours=2), None),
    ("user_hangup", 5.0, WED_MIDNIGHT, None),
    ("user_hangup", 60.0, None, None),
    ("invalid_destination", 0.0, None, "not_retryable"),
])
def test_a_released_contact_gets_its_next_allowed_time(campaign_db, reason, seconds, next_at, finished):
    call_id = _call(campaign_db["db"], campaign_db["campaign_id"])
    row = _finish(campaign_db["db"], call_id, reason, seconds)
    assert (row["in_flight_call_id"], row["next_call_at"], row["finished_reason"]) == (None, next_at, finished)


def test_a_campaign_override_replaces_the_default(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        update_campaign(conn, campaign_db["campaign_id"], {"retry_policy": {"dial_busy": "4h", "user_declined": "never"}},
                        TUE_10)
        assert get_campaign(conn, campaign_db["campaign_id"])["retry_policy"] == {"dial_busy": "4h", "user_declined": "never"}
    call_id = _call(campaign_db["db"], campaign_db["campaign_id"])
    assert _finish(campaign_db["db"], call_id, "dial_busy")["next_call_at"] == TUE_10 + timedelta(seconds=30, hours=4)


def test_never_finishes_the_contact(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        update_campaign(conn, campaign_db["campaign_id"], {"retry_policy": {"user_declined": "never"}}, TUE_10)
    call_id = _call(campaign_db["db"], campaign_db["campaign_id"])
    row = _finish(campaign_db["db"], call_id, "user_declined")
    assert (row["finished_reason"], row["finished_at"]) == ("not_retryable", TUE_10 + timedelta(minutes=5))


def test_a_later_time_already_set_is_kept(campaign_db):
    call_id = _call(campaign_db["db"], campaign_db["campaign_id"])
    callback = TUE_10 + timedelta(days=3)  # e.g. a callback someone else scheduled
    with transaction(campaign_db["db"]) as conn:
        conn.execute("update campaign_contacts set next_call_at = ?", [callback])
    assert _finish(campaign_db["db"], call_id, "dial_busy")["next_call_at"] == callback


def test_spam_with_rotation_marks_the_number_to_avoid(db):
    ids = make_campaign_db(db, rotation_enabled=True)
    call_id = _call(db, ids["campaign_id"])
    row = _finish(db, call_id, "marked_as_spam", from_number="+16025550101")
    assert (row["next_call_at"], row["avoid_number"]) == (None, "+16025550101")
    # and the next attempt of that contact goes out from the other number, even if it is busier
    assert assign_numbers(["+16025550100", "+16025550101"], {"+16025550100": 5}, 2,
                          avoid=["+16025550101", None]) == ["+16025550100", "+16025550101"]


def test_spam_without_rotation_waits_a_day(campaign_db):
    call_id = _call(campaign_db["db"], campaign_db["campaign_id"])
    row = _finish(campaign_db["db"], call_id, "marked_as_spam")
    assert (row["next_call_at"], row["avoid_number"]) == (WED_MIDNIGHT, None)


def test_bad_overrides_are_a_settings_error_naming_the_field(campaign_db):
    with connect(campaign_db["db"]) as conn:
        row = get_campaign(conn, campaign_db["campaign_id"])
    data = {k: row[k] for k in row if k not in ("campaign_id", "agent_name", "created_at", "updated_at")}
    errors = validate_settings({**data, "retry_policy": {"dial_busy": "soon"}})
    assert [(e.field, "is not a rule" in e.rule) for e in errors] == [("retry_policy", True)]
    with pytest.raises(UserError, match="retry_policy"), transaction(campaign_db["db"]) as conn:
        update_campaign(conn, campaign_db["campaign_id"], {"retry_policy": {"voicemail": "1h"}}, TUE_10)


YAML = """
name: Smart outreach
agent: {name: Ava, provider_agent_id: agent_1}
start_date: 2026-04-27
time_zone: America/Phoenix
country: US
hours: [["08:00", "18:00"]]
outbound_numbers: ["+16025550100"]
retry_policy: {dial_no_answer: 3h, voicemail_reached: next_day}
smart_ordering: true
exploration_share: 0.1
number_daily_cap: 150
"""


def test_smart_options_are_declared_in_yaml(db, tmp_path):
    from tasks.campaigns import add_number, apply_yaml

    path = tmp_path / "smart.yaml"
    path.write_text(YAML, encoding="utf-8")
    with transaction(db) as conn:
        add_number(conn, "+16025550100", None, "active", TUE_10)
        campaign_id = apply_yaml(conn, path, TUE_10)["campaign_id"]
        row = get_campaign(conn, campaign_id)
    assert (row["retry_policy"], row["smart_ordering"], row["exploration_share"], row["number_daily_cap"]) == (
        {"dial_no_answer": "3h", "voicemail_reached": "next_day"}, True, 0.1, 150)
    path.write_text(YAML.replace("3h", "3 hours"), encoding="utf-8")
    with pytest.raises(UserError, match=r"smart.yaml: retry_policy: dial_no_answer: \"3 hours\" is not a rule"), \
            transaction(db) as conn:
        apply_yaml(conn, path, TUE_10)


def test_the_contact_list_shows_the_next_allowed_time(campaign_db):
    from tasks.retry_policy import next_allowed

    call_id = _call(campaign_db["db"], campaign_db["campaign_id"])
    _finish(campaign_db["db"], call_id, "dial_no_answer")
    with connect(campaign_db["db"]) as conn:
        row = next_allowed(conn, campaign_db["campaign_id"], TUE_10 + timedelta(minutes=10)).row(0, named=True)
        later = next_allowed(conn, campaign_db["campaign_id"], TUE_10 + timedelta(hours=3)).row(0, named=True)
    assert (row["next_allowed_at"], row["waiting_for_retry"]) == (TUE_10 + timedelta(seconds=30, hours=2), True)
    assert (later["next_allowed_at"], later["waiting_for_retry"]) == (TUE_10 + timedelta(hours=3), False)
