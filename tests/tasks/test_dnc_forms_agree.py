"""Property test: every place that matches numbers against the do-not-call lists decides the same.

The match is written in SQL several times, each shaped for its reader: the claim's eligibility query
(`tasks.dialing`), the check just before a real-time call (`listed_numbers`), the audit's suppressed
contacts (`suppressed_contacts`), the Contact List's Suppression column (`next_allowed_times`) and the
simulation's idle jump (`flows.simulate.idle_state`). Drawn lists of exact numbers and wildcards, global
or per campaign, against numbers that share prefixes: all five agree with the rule written in Python
(an entry of the global list or of this campaign's own list; a wildcard matches by prefix).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboards.queries.smart import next_allowed_times
from flows.simulate import idle_state
from tasks.compliance import add_dnc, listed_numbers, resolve_zones, suppressed_contacts
from tasks.dialing import _classify, load_plans
from tasks.store import connect, transaction
from tests.factories import make_campaign_db

TUE_10_PHOENIX = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)  # 13:00 in Miami and New York: every rule open
# numbers sharing prefixes at every length a wildcard may stop at
PHONES = ["+13055550100", "+13055550101", "+13055550110", "+13055561100", "+13056550100", "+12125550100",
          "+12125550101", "+17865550100"]
OTHER = ["+13055550199", "+12125559999"]  # never enrolled: an exact entry that matches nobody


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    db = tmp_path_factory.mktemp("dnc-forms") / "store.duckdb"
    own = make_campaign_db(db)["campaign_id"]
    with transaction(db) as conn:
        other = conn.execute("insert into campaigns (name, agent_id, weekly_schedule, time_zone, country) values"
                             " ('B', 1, '{}', 'America/Phoenix', 'US') returning campaign_id").fetchone()[0]
        ids = {}
        for phone in PHONES:
            ids[phone] = conn.execute("insert into contacts (phone_e164, region, time_zones)"
                                      " values (?, 'US', ['America/New_York']) returning contact_id",
                                      [phone]).fetchone()[0]
            conn.execute("insert into campaign_contacts (campaign_id, contact_id) values (?, ?)", [own, ids[phone]])
        resolve_zones(conn)
    return {"db": db, "own": own, "other": other, "ids": ids}


def _prefixes() -> list[str]:
    # "+1305", "+13055", ... "+1305555010": every proper prefix of the pool with 3 to 10 digits
    return sorted({phone[:n] for phone in PHONES for n in range(4, len(phone))})


entries = st.lists(st.tuples(
    st.sampled_from([None, "own", "other"]),
    st.one_of(st.sampled_from(PHONES + OTHER), st.sampled_from(_prefixes()).map(lambda p: p + "*")),
), max_size=6)


def expected_numbers(drawn: list[tuple[str | None, str]]) -> set[str]:
    """The rule: a global or own-list entry; a wildcard matches every number it starts."""
    listed = set()
    for scope, text in drawn:
        if scope == "other":
            continue
        if text.endswith("*"):
            listed |= {p for p in PHONES if p.startswith(text[:-1])}
        elif text in PHONES:
            listed.add(text)
    return listed


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=entries)
def test_every_do_not_call_match_agrees_with_the_rule(store, drawn):
    db, own, ids = store["db"], store["own"], store["ids"]
    scopes = {None: None, "own": own, "other": store["other"]}
    with transaction(db) as conn:
        conn.execute("delete from do_not_call")
        for scope, text in drawn:
            add_dnc(conn, [text], TUE_10_PHOENIX, campaign_id=scopes[scope])
    expected = expected_numbers(drawn)
    expected_ids = {ids[p] for p in expected}
    with connect(db) as conn:
        # just before a real-time call
        assert listed_numbers(conn, own, PHONES) == expected
        # the audit's suppressed contacts (every contact's zone is known: only do-not-call rows)
        suppressed = suppressed_contacts(conn, own)
        assert set(suppressed.filter(suppressed["do_not_call"])["contact_id"].to_list()) == expected_ids
        # the Contact List's Suppression column
        shown = next_allowed_times(conn, own, sorted(ids.values()), TUE_10_PHOENIX)
        assert set(shown.filter(shown["suppression"].is_not_null())["contact_id"].to_list()) == expected_ids
        # the claim: everybody else is callable now, the listed are held back by the do-not-call rule
        plan = load_plans(conn, [own])[0]
        picked, held = _classify(conn, plan, TUE_10_PHOENIX, timedelta(0), size=len(PHONES), audit=True)
        assert set(picked["contact_id"].to_list()) == set(ids.values()) - expected_ids
        held_dnc = held.filter(held["rule"] == "do_not_call") if held is not None else None
        assert (0 if held_dnc is None or held_dnc.is_empty() else held_dnc["skipped"][0]) == len(expected_ids)
        # the simulation's idle jump counts the same people as callable
        in_flight, callable_now, _waiting, _retry = idle_state(conn, [own], TUE_10_PHOENIX)
        assert (in_flight, callable_now) == (0, len(PHONES) - len(expected_ids))
