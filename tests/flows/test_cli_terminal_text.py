"""The CLI prints text from imported files, the provider and YAML files on a terminal: control characters
(ESC sequences that set the title, write the clipboard or clear the screen; a carriage return that prints
over a line) are shown as escapes, never sent to the terminal. Machine output (--json) is JSON-escaped."""

from __future__ import annotations

import json

import pytest

from flows.cli.common import terminal_text
from tasks.store import transaction
from tests.flows.cli_run import run

# OSC 0 sets the terminal's title; CSI 2J clears the screen; a carriage return rewrites the line
TITLE, CLEAR = "\x1b]0;pwned\x07", "\x1b[2J"


@pytest.mark.parametrize("text, shown", [
    (f"{TITLE}Ann", "\\x1b]0;pwned\\x07Ann"),
    ("ok\rfake", "ok\\x0dfake"),
    ("tab\tand\nlines stay", "tab\tand\nlines stay"),
    ("\x9b31m C1 CSI", "\\x9b31m C1 CSI"),
    ("名前 🚀 ñ", "名前 🚀 ñ"),
])
def test_terminal_text(text, shown):
    assert terminal_text(text) == shown


def test_import_report_of_a_hostile_file_sends_no_control_to_the_terminal(capsys, campaign_db, tmp_path):
    path = tmp_path / "escape.csv"
    # a good row beside it: a file whose every row is rejected exits 2 (after the same report)
    path.write_text(f'phone,name\n"{TITLE}{CLEAR}x",Ann\n+16025550101,Bo\n', encoding="utf-8")
    code, out, err = run(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(path))
    assert code == 0, err
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "\\x1b]0;pwned\\x07\\x1b[2Jx" in out  # the rejected value, visible for what it is


def test_campaign_names_are_shown_escaped_and_kept_in_json(capsys, campaign_db):
    with transaction(campaign_db["db"]) as conn:
        conn.execute("update campaigns set name = ?", [f"{TITLE}Spring\routreach"])
    for args in (("list",), ("show", str(campaign_db["campaign_id"]))):
        code, out, err = run(capsys, campaign_db["db"], *args)
        assert code == 0, err
        assert "\x1b" not in out and "\r" not in out and "\\x1b]0;pwned\\x07Spring\\x0doutreach" in out
    code, out, _ = run(capsys, campaign_db["db"], "show", str(campaign_db["campaign_id"]), "--json")
    assert code == 0 and "\x1b" not in out  # JSON escapes it: \u001b, and the value reads back exact
    assert json.loads(out)["name"] == f"{TITLE}Spring\routreach"


def test_an_error_quoting_the_input_sends_no_control_to_the_terminal(capsys, campaign_db, tmp_path):
    path = tmp_path / "campaign.yaml"
    path.write_text('"\\e[2Jcolour": blue\nname: x\n', encoding="utf-8")  # YAML's escape for ESC, in a key
    code, out, err = run(capsys, campaign_db["db"], "apply", str(path))
    assert code == 2 and "\x1b" not in err and "\\x1b[2Jcolour" in err
