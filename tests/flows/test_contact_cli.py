"""`campaigns contacts edit`: its human output, run in-process through flows.cli.main."""

from __future__ import annotations

from tests.factories import add_contacts
from tests.flows.cli_run import run


def test_contacts_edit_prints_properties_and_zones_as_json_text(campaign_db, capsys):
    """They were Python reprs ({'plan': 'gold'}, ['America/Phoenix']), unlike `show` and what --json gives."""
    db = campaign_db["db"]
    [contact_id] = add_contacts(db, campaign_db["campaign_id"], 1)
    code, out, err = run(capsys, db, "contacts", "edit", str(contact_id), "--set", "note=café", "--phone", "+16025550100")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert 'properties: {"plan": "gold", "note": "café"}' in lines  # not escaped: ensure_ascii off
    assert 'time_zones: ["America/Phoenix"]' in lines
    assert "name: Person 0" in lines
