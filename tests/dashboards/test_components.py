"""The dashboard's shared formatting (dashboards/components.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from dashboards.components import markdown_text, moment_text, reason_label, reason_labels
from schemas.enums import DisconnectReason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Phoenix main", "Phoenix main"),
        # bold, links and Streamlit's colour directives stay literal text
        ("**x** [a](javascript:alert(1))", r"\*\*x\*\* \[a\]\(javascript\:alert\(1\)\)"),
        (":red[boo]", r"\:red\[boo\]"),
        # HTML and a heading marker after a line break cannot take effect (line breaks become spaces)
        ("<b>hi</b>\n# title", r"\<b\>hi\</b\> \# title"),
        (12, "12"),
    ],
)
def test_markdown_text_escapes_markup(text, expected):
    assert markdown_text(text) == expected


@pytest.mark.parametrize(
    ("code", "label"),
    [
        ("user_hangup", "User Hangup"),  # the spec's own examples
        ("voicemail_reached", "Voicemail Reached"),
        ("telephony_provider_permission_denied", "Telephony Provider Permission Denied"),
        ("error_asr", "Error ASR"),  # an acronym stays in capitals
        ("marked_as_spam", "Marked as Spam"),  # a short word inside stays lower case
        ("inactivity", "Inactivity"),
        ("in flight / no reason", "in flight / no reason"),  # not a code: as is
        (None, ""),
    ],
)
def test_reason_label(code, label):
    assert reason_label(code) == label


def test_every_disconnect_reason_has_a_label_of_its_own():
    labels = [reason_label(r.value) for r in DisconnectReason]
    assert len(set(labels)) == len(labels)
    assert all("_" not in label and label[0].isupper() for label in labels)


def test_reason_labels_relabels_a_column_and_keeps_nulls():
    frame = pl.DataFrame({"Disconnect Reason": ["dial_busy", None]}).with_columns(reason_labels("Disconnect Reason"))
    assert frame["Disconnect Reason"].to_list() == ["Dial Busy", None]


@pytest.mark.parametrize(("moment", "zone", "now", "expected"), [
    (datetime(2026, 4, 27, 14, 5, 9, tzinfo=UTC), "America/Bogota", datetime(2026, 4, 27, 20, 0, tzinfo=UTC),
     "09:05:09 AM (America/Bogota)"),
    # 03:00 UTC on the 28th is still the 27th in Bogota, and `now` (the 28th there) is another local day
    (datetime(2026, 4, 28, 3, 0, 0, tzinfo=UTC), "America/Bogota", datetime(2026, 4, 28, 15, 0, tzinfo=UTC),
     "Apr 27, 10:00:00 PM (America/Bogota)"),
    (datetime(2026, 4, 28, 3, 0, 0, tzinfo=UTC), "UTC", datetime(2026, 4, 28, 15, 0, tzinfo=UTC),
     "03:00:00 AM (UTC)"),
])
def test_moment_text_is_local_with_the_date_only_on_another_day(moment, zone, now, expected):
    assert moment_text(moment, zone, now) == expected
