"""The dashboard's shared formatting (dashboards/components.py)."""

from __future__ import annotations

import pytest

from dashboards.components import markdown_text


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
