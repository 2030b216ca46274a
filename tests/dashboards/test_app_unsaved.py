"""Unsaved settings edits are reminded of in the sidebar on every page (sidebar navigation cannot be stopped)."""

from __future__ import annotations

import pytest

from tests.dashboards.test_app_settings import campaign_page, k


def sidebar_warnings(at) -> list[str]:
    return [w.value for w in at.sidebar.warning]


@pytest.mark.usefixtures("db_kept_open")
def test_unsaved_edits_are_reminded_on_other_pages_until_saved_or_discarded(campaign_db):
    cid = campaign_db["campaign_id"]
    at = campaign_page(cid)
    assert sidebar_warnings(at) == []  # the form loaded, nothing edited
    at.text_input(key=k(cid, "name")).set_value("Summer outreach").run()
    assert sidebar_warnings(at) == [
        "Unsaved changes in **Spring outreach**: nothing is saved until you click Save Changes."]
    # leaving by the sidebar: the list page keeps the reminder, with a link back to the campaign
    at.switch_page("pages/campaigns.py").run()
    assert not at.exception, at.exception
    assert len(sidebar_warnings(at)) == 1
    # back on the campaign, the edit is still there; Discard ends the reminder
    at.switch_page("pages/campaign.py").run()
    assert at.text_input(key=k(cid, "name")).value == "Summer outreach"
    at.button(key=f"discard_{cid}").click().run()
    assert sidebar_warnings(at) == []
    at.switch_page("pages/campaigns.py").run()
    assert sidebar_warnings(at) == []
