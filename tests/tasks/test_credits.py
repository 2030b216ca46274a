"""Credit rules: 333 per started answered minute, 75 per voicemail, 0 when never connected."""

import pytest

from tasks.credits import RateCard, call_credits


@pytest.mark.parametrize(
    ("status", "reason", "seconds", "voicemail", "expected"),
    [
        ("ended", "agent_hangup", 59, False, 333),  # 0:59 is one started minute
        ("ended", "agent_hangup", 60, False, 333),  # 1:00 exactly is still one minute
        ("ended", "user_hangup", 61, False, 666),  # 1:01 starts the second minute
        ("ended", "user_hangup", 80, False, 666),  # 1:20 bills 2 (product example)
        ("ended", "user_hangup", 118, False, 666),  # 1:58 bills 2 (product example)
        ("ended", "voicemail_reached", 25, True, 75),  # standard voicemail flat rate
        ("ended", "voicemail_reached", 300, None, 75),  # reason alone marks voicemail
        # a personalised greeting the agent talked into (the analysis found the box later) bills as answered
        ("ended", "agent_hangup", 150, True, 999),
        ("ended", "user_hangup", 12, True, 333),
        ("ended", "agent_hangup", 0, True, 75),  # a voicemail without a duration: the flat rate
        ("ended", "inactivity", None, True, 75),
        ("ended", "inactivity", float("nan"), True, 75),  # a non-finite duration is none
        ("ended", "agent_hangup", float("inf"), False, 0),
        ("not_connected", "dial_no_answer", 0, False, 0),  # never connected
        ("not_connected", "dial_busy", None, None, 0),
        ("error", "error_asr", 30, False, 333),  # connected then failed: minutes still used
        ("error", "error_unknown", 0, False, 0),
        ("registered", None, None, None, 0),  # not finished yet
    ],
)
def test_call_credits(status, reason, seconds, voicemail, expected):
    assert call_credits(status, reason, seconds, voicemail) == expected


def test_rates_are_configurable():
    assert call_credits("ended", "agent_hangup", 125, False, RateCard(per_answered_minute=100, per_voicemail=10)) == 300
    assert call_credits("ended", "voicemail_reached", 5, True, RateCard(per_answered_minute=100, per_voicemail=10)) == 10
