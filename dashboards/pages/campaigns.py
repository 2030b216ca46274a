"""The Campaigns page: search, sort, one row per campaign with its status, row actions, New campaign."""

from __future__ import annotations

import streamlit as st

from dashboards import state
from dashboards.components import capsule_html, format_local, markdown_text, require_app_shell
from dashboards.queries.campaigns import campaign_page, count_campaigns
from tasks.campaigns import delete_campaign, duplicate_campaign
from tasks.errors import StoreLockedError, UserError
from tasks.timezones import is_known_zone

PAGE_SIZE = 20
BUSY = "The database is busy (a flow is writing); nothing was changed. Try again in a moment."
SORT_LABELS = {"created": "Creation Date (newest first)", "name": "Name (A–Z)"}
COLUMNS = [3.2, 1.4, 1.6, 1.0, 1.8, 0.6]


def viewer_zone() -> str:
    """The zone the list's creation dates are shown in: the browser's (`st.context.timezone`), else UTC.

    One zone for every row, so newest first reads in order (each campaign's own zone put Dec 5 above Dec 6).
    """
    zone = st.context.timezone
    return zone if zone and is_known_zone(zone) else "UTC"


def open_campaign(campaign_id: int, start_date) -> None:
    """Edit: a campaign without a start date opens in the wizard's scheduling step, else its page."""
    if start_date is None:
        if st.session_state.get("wizard_campaign") != campaign_id:  # an import report belongs to its campaign
            st.session_state.pop("wizard_import", None)
        st.session_state["wizard_campaign"] = campaign_id
        st.session_state["wizard_step"] = 2
        st.switch_page("pages/wizard.py")
    st.session_state["campaign_id"] = campaign_id
    st.switch_page("pages/campaign.py", query_params={"campaign": str(campaign_id)})


def _reset_paging() -> None:
    st.session_state["list_offset"] = 0


def _forget_pending_delete() -> None:
    st.session_state.pop("pending_delete", None)


@st.dialog("Delete campaign", on_dismiss=_forget_pending_delete)
def confirm_delete(campaign_id: int, name: str) -> None:
    """The confirmation dialog naming the campaign and what goes with it."""
    st.markdown(f"Delete **{markdown_text(name)}** permanently?")
    st.warning("Its call logs and contact associations are deleted too. This cannot be undone; "
               "export anything you need first. Contacts stay in the CRM.", icon=":material/warning:")
    left, right = st.columns(2)
    if left.button("Cancel", key="cancel_delete", width="stretch"):
        _forget_pending_delete()
        st.rerun()
    if right.button("Delete campaign", key="confirm_delete", type="primary", width="stretch"):
        try:
            with state.writing() as conn:
                delete_campaign(conn, campaign_id)
        except UserError as error:  # e.g. a batch of it is placing calls now
            st.session_state["list_flash"] = ("error", markdown_text(str(error)))
        except StoreLockedError:
            st.session_state["list_flash"] = ("error", BUSY)
        else:
            state.clear_form(st.session_state, campaign_id)
            st.session_state["list_flash"] = ("success", f'Deleted "{markdown_text(name)}".')
        _forget_pending_delete()
        st.rerun()


def _duplicate(campaign_id: int) -> None:
    try:
        with state.writing() as conn:
            new_id = duplicate_campaign(conn, campaign_id, state.now())
            name = conn.execute("select name from campaigns where campaign_id = ?", [new_id]).fetchone()[0]
    except UserError as error:
        st.session_state["list_flash"] = ("error", markdown_text(str(error)))
    except StoreLockedError:
        st.session_state["list_flash"] = ("error", BUSY)
    else:
        st.session_state["list_flash"] = ("success", f'Created "{markdown_text(name)}" (inactive, no contacts).')


def render() -> None:
    """The campaign list."""
    # widths that keep "New campaign" and the longest sort label whole at 1280 px
    title, new = st.columns([4, 1.3], vertical_alignment="bottom")
    title.title("Campaigns")
    if new.button("New campaign", key="new_campaign", type="primary", icon=":material/add:", width="stretch"):
        for name in ("wizard_campaign", "wizard_step", "wizard_import"):
            st.session_state.pop(name, None)
        st.switch_page("pages/wizard.py")

    flash = st.session_state.pop("list_flash", None)
    if flash:
        (st.success if flash[0] == "success" else st.error)(flash[1])

    search_col, sort_col = st.columns([2, 1])
    search = search_col.text_input("Search", key="list_search", placeholder="Search campaigns by name",
                                   on_change=_reset_paging, label_visibility="collapsed")
    sort = sort_col.selectbox("Sort by", list(SORT_LABELS), key="list_sort", format_func=SORT_LABELS.get,
                              on_change=_reset_paging, label_visibility="collapsed")
    offset = st.session_state.get("list_offset", 0)
    with state.reading() as conn:
        total = count_campaigns(conn, search)
        if offset >= total > 0:  # the last page emptied (a delete here or elsewhere): show the last one left
            offset = st.session_state["list_offset"] = (total - 1) // PAGE_SIZE * PAGE_SIZE
        rows = campaign_page(conn, state.now(), search=search, sort=sort, limit=PAGE_SIZE, offset=offset).to_dicts()

    if not rows:
        st.info("No campaign matches your search." if search else "No campaigns yet. Create one with New campaign.")
        return

    zone = viewer_zone()
    header = st.columns(COLUMNS)
    for column, label in zip(header, ("Name", "Status", "Agent", "Contacts", f"Created ({zone})", "")):
        column.markdown(f'<span class="vc-muted">{label}</span>', unsafe_allow_html=True)
    for row in rows:
        cid = row["campaign_id"]
        with st.container(border=True):
            name, status, agent, contacts, created, menu = st.columns(COLUMNS, vertical_alignment="center")
            if name.button(markdown_text(row["name"]), key=f"open_{cid}", type="tertiary"):
                open_campaign(cid, row["start_date"])
            status.markdown(capsule_html(row["status"]), unsafe_allow_html=True)
            agent.write(markdown_text(row["agent_name"] or "—"))
            contacts.write(f"{row['contacts']:,}")
            created.write(format_local(row["created_at"], zone, with_time=False))
            with menu.popover("", icon=":material/more_vert:", key=f"menu_{cid}"):
                if st.button("Edit", key=f"edit_{cid}", icon=":material/edit:", width="stretch"):
                    open_campaign(cid, row["start_date"])
                if st.button("Duplicate", key=f"duplicate_{cid}", icon=":material/content_copy:", width="stretch"):
                    _duplicate(cid)
                    st.rerun()
                if st.button("Delete", key=f"delete_{cid}", icon=":material/delete:", width="stretch"):
                    st.session_state["pending_delete"] = (cid, row["name"])

    if total > PAGE_SIZE:
        previous, where, following = st.columns([1, 3, 1], vertical_alignment="center")
        if previous.button("Previous", key="list_previous", disabled=offset == 0):
            st.session_state["list_offset"] = max(0, offset - PAGE_SIZE)
            st.rerun()
        where.caption(f"{offset + 1}–{min(offset + PAGE_SIZE, total)} of {total}")
        if following.button("Next", key="list_next", disabled=offset + PAGE_SIZE >= total):
            st.session_state["list_offset"] = offset + PAGE_SIZE
            st.rerun()

    pending = st.session_state.get("pending_delete")
    if pending:
        confirm_delete(*pending)


require_app_shell()
render()
