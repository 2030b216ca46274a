"""The product's vocabularies: call statuses, disconnect reasons, sentiment, weekdays."""

from __future__ import annotations

from enum import StrEnum


class CallStatus(StrEnum):
    """A call's processing status, exactly as the product's Call Logs tab lists them."""

    queued = "queued"
    created = "created"
    registered = "registered"
    in_progress = "in_progress"
    ended = "ended"
    not_connected = "not_connected"
    error = "error"
    failed_rate_limit = "failed_rate_limit"


IN_FLIGHT_STATUSES = frozenset({CallStatus.queued, CallStatus.created, CallStatus.registered, CallStatus.in_progress})
FINAL_STATUSES = frozenset({CallStatus.ended, CallStatus.not_connected, CallStatus.error, CallStatus.failed_rate_limit})


def holds_contact_sql(call: str = "") -> str:
    """SQL true for a call (columns of alias `call`) that still holds its contact: in flight, or ended and not analysed
    yet (tasks.call_state releases a contact once its call is final and, if ended, analysed)."""
    prefix = f"{call}." if call else ""
    statuses = ", ".join(f"'{s.value}'" for s in sorted(IN_FLIGHT_STATUSES))
    return f"({prefix}status in ({statuses}) or ({prefix}status = 'ended' and {prefix}analyzed_at is null))"


# What each status means, in the product's words (its Call Logs reference), for the dashboard's help texts
STATUS_MEANINGS: dict[CallStatus, str] = {
    CallStatus.queued: "Call is waiting to be placed.",
    CallStatus.created: "Call record has been created in the system.",
    CallStatus.registered: "Call has been registered with the telephony provider.",
    CallStatus.in_progress: "Call is currently active.",
    CallStatus.ended: "Call completed normally.",
    CallStatus.not_connected: "Call was placed but did not connect to the contact.",
    CallStatus.error: "An error occurred during the call.",
    CallStatus.failed_rate_limit: "Call was not placed because a rate limit was reached.",
}

class DisconnectReason(StrEnum):
    """Why a call ended: the product's 19 codes."""

    dial_no_answer = "dial_no_answer"
    dial_busy = "dial_busy"
    dial_failed = "dial_failed"
    voicemail_reached = "voicemail_reached"
    user_hangup = "user_hangup"
    agent_hangup = "agent_hangup"
    user_declined = "user_declined"
    inactivity = "inactivity"
    max_duration_reached = "max_duration_reached"
    call_transfer = "call_transfer"
    marked_as_spam = "marked_as_spam"
    invalid_destination = "invalid_destination"
    concurrency_limit_reached = "concurrency_limit_reached"
    telephony_provider_unavailable = "telephony_provider_unavailable"
    telephony_provider_permission_denied = "telephony_provider_permission_denied"
    error_no_audio_received = "error_no_audio_received"
    error_asr = "error_asr"
    error_dapta = "error_dapta"
    error_unknown = "error_unknown"


# What each disconnect reason means, in the product's words (its Disconnect Reasons reference)
REASON_MEANINGS: dict[DisconnectReason, str] = {
    DisconnectReason.dial_no_answer: "The contact's phone rang but no one picked up.",
    DisconnectReason.dial_busy: "The contact's line was busy.",
    DisconnectReason.dial_failed: "The dial attempt failed before the call could connect.",
    DisconnectReason.voicemail_reached: "The call connected to the contact's voicemail system.",
    DisconnectReason.user_hangup: "The contact answered and hung up before the conversation ended.",
    DisconnectReason.agent_hangup: "The agent ended the call (typically when its objective was met).",
    DisconnectReason.user_declined: "The contact actively declined the call (for example, sent it to voicemail).",
    DisconnectReason.inactivity: "The call ended because no one was speaking for an extended period.",
    DisconnectReason.max_duration_reached: "The call hit the maximum allowed duration and was cut off.",
    DisconnectReason.call_transfer: "The call was transferred to another number or agent.",
    DisconnectReason.marked_as_spam: "The call was flagged as spam by the carrier or recipient.",
    DisconnectReason.invalid_destination: "The phone number is not valid or not reachable.",
    DisconnectReason.concurrency_limit_reached: "Too many simultaneous calls were in progress; this one was deferred.",
    DisconnectReason.telephony_provider_unavailable: "The telephony provider was temporarily unreachable.",
    DisconnectReason.telephony_provider_permission_denied:
        "The telephony provider rejected the call (often a permissions or routing issue).",
    DisconnectReason.error_no_audio_received: "The call connected but no audio was received from the other side.",
    DisconnectReason.error_asr: "A speech recognition error occurred during the call.",
    DisconnectReason.error_dapta: "A platform-side error interrupted the call.",
    DisconnectReason.error_unknown: "The call ended due to an unclassified error.",
}


# Which final status goes with which reason (the provider's documented pairing).
STATUS_FOR_REASON: dict[DisconnectReason, CallStatus] = {
    **{r: CallStatus.ended for r in (
        DisconnectReason.user_hangup, DisconnectReason.agent_hangup, DisconnectReason.call_transfer,
        DisconnectReason.voicemail_reached, DisconnectReason.inactivity, DisconnectReason.max_duration_reached,
    )},
    **{r: CallStatus.not_connected for r in (
        DisconnectReason.dial_busy, DisconnectReason.dial_failed, DisconnectReason.dial_no_answer,
        DisconnectReason.invalid_destination, DisconnectReason.telephony_provider_permission_denied,
        DisconnectReason.telephony_provider_unavailable, DisconnectReason.marked_as_spam,
        DisconnectReason.user_declined,
    )},
    **{r: CallStatus.error for r in (
        DisconnectReason.concurrency_limit_reached, DisconnectReason.error_no_audio_received,
        DisconnectReason.error_asr, DisconnectReason.error_dapta, DisconnectReason.error_unknown,
    )},
}

# Outcomes after which a contact is never called again by this campaign.
NOT_RETRYABLE_REASONS = frozenset({DisconnectReason.invalid_destination})
# Outcomes that are refusals for rate or concurrency: not an attempt, the contact is re-queued.
# An unreachable provider never rang the person either: counting it would burn attempts in an outage.
NOT_AN_ATTEMPT_REASONS = frozenset(
    {DisconnectReason.concurrency_limit_reached, DisconnectReason.telephony_provider_unavailable}
)


class Sentiment(StrEnum):
    """The callee's detected tone."""

    Positive = "Positive"
    Neutral = "Neutral"
    Negative = "Negative"
    Unknown = "Unknown"


class SipTrunkStatus(StrEnum):
    """An outbound number's SIP trunk state; only active numbers dial."""

    active = "active"
    inactive = "inactive"
    error = "error"


class CampaignStatus(StrEnum):
    """A campaign's derived status (never stored, never typed in by hand)."""

    draft = "Draft"
    scheduled = "Scheduled"
    running = "Running"
    waiting = "Waiting"
    paused = "Paused"
    manual_running = "Manual Running"
    completed = "Completed"
    failed = "Failed"


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def sql_list(values) -> str:
    """A SQL IN-list literal of enum values (identifiers from a fixed whitelist, never user text)."""
    return ", ".join(f"'{v}'" for v in values)
