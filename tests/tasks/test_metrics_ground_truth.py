"""The metrics against an independent ground truth.

Two campaigns — New York (over the 2026 spring-forward change, 8 March) and Honolulu (no DST), sharing four
Honolulu contacts — are simulated through the real tick, enrichment and incremental aggregation code:
New York and Honolulu contacts (a Honolulu evening call is already the next day in New York), calls around
the clock (the first ones ring across local midnight), voicemail, refusals (rate limit and concurrency:
not attempts), a provider outage (not an attempt, nor the interrupted batch's never-placed calls),
failed/error calls, a contact removed half-way and one removed and enrolled again, and provider records the
simulator never writes (a hang-up flagged `in_voicemail`, no verdict). Every figure of `metrics_daily`,
`contact_stats`, `tasks.metrics` (totals/kpis/funnel, bitmap and hashed plans, calls_per_day) and
`dashboards.queries.metrics` is recomputed here in plain Python from the `calls` and `campaign_contacts`
rows, following the definitions of docs/schema.md ("Metrics") as written, not the production SQL: after
every aggregation along the way (calls in flight included), at the end, and after a full rebuild. Calls
written directly then check local days in awkward zones (a fall-back hour, DST at midnight, half-hour
and +05:45 offsets).
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from dashboards.queries import metrics as dash
from flows.aggregate_metrics import run_aggregation
from flows.simulate import simulate
from tasks import metrics
from tasks.campaigns import create_campaign
from tasks.contacts_import import remove_contact_from_campaign
from tasks.settings import reset_settings
from tasks.store import connect, transaction
from tasks.telephony.base import ConcurrencyLimitReached, ProviderUnavailable, RateLimited
from tasks.telephony.simulator import SimulatedProvider
from tests.factories import add_contacts, make_campaign_db, open_the_us_rule_all_day

UTC = timezone.utc
NEW_YORK, HONOLULU = "America/New_York", "Pacific/Honolulu"
# Friday 6 March 2026, 23:59:20 in New York: the first batches ring across local midnight. Clocks spring
# forward on Sunday 8 March at 02:00 in New York; Honolulu has no DST.
START = datetime(2026, 3, 7, 4, 59, 20, tzinfo=UTC)
WEEK = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ALL_DAY = {d: [["00:00", "24:00"]] for d in WEEK}
RETRY = {"dial_no_answer": "2h", "dial_busy": "2h", "voicemail_reached": "3h", "user_declined": "4h",
         "short_user_hangup": "5h"}
FIRST_DAYS, SECOND_DAYS = 0.6, 0.7


def _connected(call: dict) -> bool:
    """docs/schema.md: a person picked up — ended, not voicemail by reason or by the analysis flag."""
    return (call["status"] == "ended" and call["disconnect_reason"] != "voicemail_reached"
            and call["in_voicemail"] is not True)


def _local_day(at: datetime, zone: str) -> date:
    return at.astimezone(ZoneInfo(zone)).date()


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, migrated_store):
    with pytest.MonkeyPatch.context() as mp:
        db = tmp_path_factory.mktemp("ground_truth") / "campaigns.duckdb"
        mp.setenv("CAMPAIGNS_DB", str(db))
        # spam marks must not take the only number out of rotation half-way (number health is not audited here)
        mp.setenv("CAMPAIGNS_NUMBER_MAX_SPAM_MARKS", "1000")
        mp.setenv("CAMPAIGNS_NUMBER_MIN_CONNECTION_RATE", "0")
        reset_settings()
        try:
            yield _simulate(db, migrated_store)
        finally:
            reset_settings()


def _read(db, campaign_id: int) -> tuple[list[dict], list[dict]]:
    with connect(db) as conn:
        calls = _dicts(conn.execute("select * from calls where campaign_id = ? order by call_id", [campaign_id]))
        enrolled = _dicts(conn.execute("select * from campaign_contacts where campaign_id = ?", [campaign_id]))
    return calls, enrolled


def _simulate(db, migrated_store) -> dict:
    """Two campaigns (New York, Honolulu) sharing four Honolulu contacts, simulated in two stretches; between
    them a contact is removed and two calls get provider records the simulator never writes (voicemail flagged
    on a hang-up, no verdict); at the end another contact is removed and enrolled again. After every
    aggregation (and an extra one every third batch, its calls still ringing) the metrics tables are
    compared with the calls of that moment."""
    shutil.copyfile(migrated_store, db)
    open_the_us_rule_all_day(db)
    ids = make_campaign_db(db, time_zone=NEW_YORK, calling_days=WEEK, weekly_schedule=ALL_DAY,
                           start_date=date(2026, 3, 6), max_attempts=10, attempts_per_day=3, batch_size=20,
                           retry_policy=RETRY)
    ny_campaign = ids["campaign_id"]
    ny = add_contacts(db, ny_campaign, 12, prefix="+1212555")
    hi = add_contacts(db, ny_campaign, 8, prefix="+1808555")
    with transaction(db) as conn:
        hi_campaign = create_campaign(conn, {
            "name": "Aloha", "agent_id": ids["agent_id"], "time_zone": HONOLULU, "country": "US",
            "calling_days": WEEK, "weekly_schedule": ALL_DAY, "start_date": date(2026, 3, 6), "max_attempts": 10,
            "attempts_per_day": 3, "batch_size": 4, "retry_policy": RETRY,
            "outbound_number_ids": ids["number_ids"][1:], "active": True,
        }, START)
        for contact_id in hi[:4]:
            conn.execute("insert into campaign_contacts (campaign_id, contact_id) values (?, ?)", [hi_campaign, contact_id])
        conn.execute("update campaign_contacts set added_at = ?", [START - timedelta(days=1)])
    zones = {ny_campaign: NEW_YORK, hi_campaign: HONOLULU}
    provider = SimulatedProvider(db.parent / "simulator.sqlite", seed=3, concurrency_limit=4)
    injected: set = set()
    placed, aggregations = [0, 0], [0]
    checkpoints: list[dict] = []

    def on_progress(now: datetime, result) -> None:
        # refusals and an outage at fixed moments of the virtual clock (each once)
        plan = [
            # the provider down at a first placement: the rest of that batch is never handed over
            (START + timedelta(minutes=3), [ProviderUnavailable("down")]),
            (START + timedelta(hours=2), [RateLimited("429")] * 2),
            (START + timedelta(hours=5), [ConcurrencyLimitReached("limit")] * 2),
            (START + timedelta(hours=20), [RateLimited("429"), ConcurrencyLimitReached("limit")]),
        ]
        for at, errors in plan:
            if now >= at and at not in injected:
                injected.add(at)
                for error in errors:
                    provider.fail_next(error)
        if result.placed > placed[0]:
            placed[0] = result.placed
            placed[1] += 1
            if placed[1] % 3 == 0:
                # an extra aggregation while the batch just placed still rings
                run_aggregation(db, now=now, snapshot=False)
                checkpoints.append(_checkpoint(db, zones, now))
        if result.aggregations > aggregations[0]:
            aggregations[0] = result.aggregations
            checkpoints.append(_checkpoint(db, zones, now))

    first = simulate(db, provider, START, FIRST_DAYS, tick_seconds=300, pace_seconds=3,
                     aggregate_every=timedelta(hours=3), on_progress=on_progress, snapshot=False)
    removed, re_added = ny[0], ny[1]
    with transaction(db) as conn:
        remove_contact_from_campaign(conn, ny_campaign, removed)
        # what Retell may send and the simulator does not: a hang-up on a voicemail system, no verdict
        for change, pick in (("in_voicemail = true", "min"), ("call_successful = null", "max")):
            conn.execute(
                f"update calls set {change}, updated_at = ? where call_id = (select {pick}(call_id) from calls"
                " where campaign_id = ? and status = 'ended' and disconnect_reason <> 'voicemail_reached')",
                [first.end, ny_campaign])
    placed[0], aggregations[0] = 0, 0
    simulate(db, provider, first.end, SECOND_DAYS, tick_seconds=300, pace_seconds=3,
             aggregate_every=timedelta(hours=5), on_progress=on_progress, snapshot=False)
    # Enrolled again after the last call: a re-enrolled contact's calls restart its attempt keys at 1, which
    # collide with its earlier calls' (a dialer bug reported separately), so it is not dialed again here.
    with transaction(db) as conn:
        end = conn.execute("select max(aggregated_at) from metrics_state").fetchone()[0]
        remove_contact_from_campaign(conn, ny_campaign, re_added)
        conn.execute("insert into campaign_contacts (campaign_id, contact_id, added_at) values (?, ?, ?)",
                     [ny_campaign, re_added, end])
    run_aggregation(db, now=end + timedelta(minutes=5), snapshot=False)
    checkpoints.append(_checkpoint(db, zones, end))
    campaigns = {cid: dict(zip(("calls", "enrolled"), _read(db, cid)), zone=zone) for cid, zone in zones.items()}
    return {"db": db, "ny": ny_campaign, "hi": hi_campaign, "campaigns": campaigns, "checkpoints": checkpoints,
            "removed": removed, "re_added": re_added, "re_added_at": end, "ny_contacts": ny,
            "hi_contacts": hi}


def _checkpoint(db, zones: dict, now: datetime | None) -> dict:
    """The metrics tables against the calls, as they are right after an aggregation."""
    found = {"at": now, "in_flight": 0, "daily": {}, "contacts": {}}
    for cid, zone in zones.items():
        calls, enrolled = _read(db, cid)
        found["in_flight"] += sum(c["status"] in ("queued", "created", "registered", "in_progress") for c in calls)
        got, want = _daily_rows(db, cid), _expected_daily(calls, zone)
        found["daily"][cid] = {k: (got.get(k), want.get(k)) for k in got.keys() | want.keys()
                               if got.get(k) != (_approx_row(want[k]) if k in want else None)}
        got, want = _contact_rows(db, cid), _expected_contact_stats(calls, enrolled)
        found["contacts"][cid] = {k: (got.get(k), want.get(k)) for k in got.keys() | want.keys()
                                  if got.get(k) != want.get(k)}
    return found


def _dicts(cursor) -> list[dict]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def test_the_simulation_covers_the_edge_cases(simulated):
    ny = simulated["campaigns"][simulated["ny"]]
    calls = ny["calls"]
    every_call = calls + simulated["campaigns"][simulated["hi"]]["calls"]
    statuses = {c["status"] for c in every_call}
    reasons = {c["disconnect_reason"] for c in every_call}
    assert {"ended", "not_connected", "failed_rate_limit", "error"} <= statuses
    assert {"voicemail_reached", "concurrency_limit_reached", "telephony_provider_unavailable", "error_dapta"} <= reasons
    assert any(not c["counts_as_attempt"] and c["disconnect_reason"] is None for c in every_call)  # rate limited
    days = {_local_day(c["queued_at"], NEW_YORK) for c in calls}
    assert {date(2026, 3, 6), date(2026, 3, 7), date(2026, 3, 8)} <= days  # the DST day included
    # calls queued before local midnight that ended after it
    assert any(c["ended_at"] and _local_day(c["ended_at"], NEW_YORK) != _local_day(c["queued_at"], NEW_YORK)
               for c in calls)
    # a Honolulu contact called on another local day than New York's
    assert any(c["contact_id"] in simulated["hi_contacts"]
               and _local_day(c["queued_at"], HONOLULU) != _local_day(c["queued_at"], NEW_YORK) for c in calls)
    assert any(c["status"] == "ended" and c["in_voicemail"] and c["disconnect_reason"] != "voicemail_reached"
               for c in calls)
    assert any(c["status"] == "ended" and c["call_successful"] is None and not c["in_voicemail"] for c in calls)
    enrolled = {e["contact_id"]: e["added_at"] for e in ny["enrolled"]}
    assert any(c["contact_id"] == simulated["removed"] for c in calls) and simulated["removed"] not in enrolled
    assert enrolled[simulated["re_added"]] == simulated["re_added_at"]
    assert all(c["status"] in ("ended", "not_connected", "error", "failed_rate_limit") for c in calls)
    assert len(simulated["campaigns"][simulated["hi"]]["calls"]) > 10


def test_every_aggregation_along_the_way_matched_the_calls(simulated):
    checkpoints = simulated["checkpoints"]
    assert len(checkpoints) >= 8
    assert sum(1 for c in checkpoints if c["in_flight"]) >= 3  # calls still ringing when aggregated
    for checkpoint in checkpoints:
        assert checkpoint["daily"] == {simulated["ny"]: {}, simulated["hi"]: {}}, checkpoint["at"]
        assert checkpoint["contacts"] == {simulated["ny"]: {}, simulated["hi"]: {}}, checkpoint["at"]


# --- the ground truth, in plain Python -----------------------------------------------------------

def _in_range(call: dict, zone: str, date_from: date | None, date_to: date | None) -> bool:
    day = _local_day(call["queued_at"], zone)
    return (date_from is None or day >= date_from) and (date_to is None or day <= date_to)


def _expected_daily(calls: list[dict], zone: str) -> dict:
    """metrics_daily: per campaign-local day of queued_at and reason, attempts, connected, credits, durations."""
    groups: dict = defaultdict(lambda: [0, 0, 0, 0.0, 0.0])
    for c in calls:
        g = groups[(_local_day(c["queued_at"], zone), c["disconnect_reason"])]
        g[0] += bool(c["counts_as_attempt"])
        g[1] += _connected(c)
        g[2] += c["credits"] or 0
        g[3] += c["duration_seconds"] or 0.0
        g[4] += (c["duration_seconds"] or 0.0) if _connected(c) else 0.0
    return {key: tuple(v) for key, v in groups.items()}


def _approx_row(row: tuple) -> tuple:
    return (*row[:3], pytest.approx(row[3]), pytest.approx(row[4]))


def _expected_contact_stats(calls: list[dict], enrolled: list[dict]) -> dict:
    """contact_stats: one row per current enrollment; counts over all its calls in the campaign."""
    rows = {}
    for e in enrolled:
        mine = [c for c in calls if c["contact_id"] == e["contact_id"]]
        attempts = [c for c in mine if c["counts_as_attempt"]]
        last = max(attempts, key=lambda c: (c["queued_at"], c["call_id"])) if attempts else None
        rows[e["contact_id"]] = (
            len(attempts),
            sum(_connected(c) for c in mine),
            sum(c["call_successful"] is True for c in mine),
            sum(c["credits"] or 0 for c in mine),
            pytest.approx(sum(c["duration_seconds"] or 0.0 for c in mine)),
            last["disconnect_reason"] if last else None,
            (last["registered_at"] or last["started_at"] or last["queued_at"]) if last else None,
            e["added_at"],
        )
    return rows


def _expected_totals(campaign: dict, date_from: date | None, date_to: date | None) -> dict:
    in_range = [c for c in campaign["calls"] if _in_range(c, campaign["zone"], date_from, date_to)]
    members = {e["contact_id"] for e in campaign["enrolled"]}
    attempts = [c for c in in_range if c["counts_as_attempt"]]
    connected = [c for c in in_range if _connected(c)]
    connected_contacts = {c["contact_id"] for c in connected} & members
    successful_contacts = {c["contact_id"] for c in in_range if c["call_successful"] is True} & members
    avg = sum(c["duration_seconds"] for c in connected) / len(connected) if connected else 0.0
    total = len(members)

    def pct(n: int) -> float:
        return round(100.0 * n / total, 2) if total else 0.0

    return {
        "kpis": {
            "credits_used": sum(c["credits"] or 0 for c in in_range),
            "total_calls": len(attempts),
            "contacts_called": len({c["contact_id"] for c in attempts}),
            "connection_rate": pct(len(connected_contacts)),
            "avg_call_duration_seconds": round(avg, 2),
            "total_contacts": total,
            "connected_contacts": len(connected_contacts),
        },
        "funnel": {
            "total_contacts": total,
            "connected": len(connected_contacts),
            "connected_pct": pct(len(connected_contacts)),
            "successful": len(successful_contacts),
            "successful_pct": pct(len(successful_contacts)),
        },
        "connected_calls": len(connected),
    }


def _expected_calls_made(campaign: dict, date_from: date | None, date_to: date | None) -> list[tuple]:
    """The Calls Made chart: attempts per local day and reason, every day of the span, 0 where none."""
    counts: dict = defaultdict(int)
    for c in campaign["calls"]:
        if c["counts_as_attempt"] and _in_range(c, campaign["zone"], date_from, date_to):
            counts[(_local_day(c["queued_at"], campaign["zone"]), c["disconnect_reason"] or dash.NO_REASON)] += 1
    if not counts:
        return []
    reasons = sorted({r for _, r in counts})
    first, last = min(d for d, _ in counts), max(d for d, _ in counts)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return [(d, r, counts.get((d, r), 0)) for d in days for r in reasons]


RANGES = [
    (None, None),
    (date(2026, 3, 6), date(2026, 3, 6)),
    (date(2026, 3, 7), date(2026, 3, 7)),
    (date(2026, 3, 8), date(2026, 3, 8)),  # 23 hours long in New York
    (date(2026, 3, 7), date(2026, 3, 8)),
    (None, date(2026, 3, 7)),
    (date(2026, 3, 8), None),
    (date(2026, 3, 12), None),  # nothing
]


# --- the comparisons --------------------------------------------------------------------------------

def _daily_rows(db, cid) -> dict:
    with connect(db) as conn:
        rows = conn.execute(
            "select day, disconnect_reason, calls, connected, credits, duration_seconds, connected_duration_seconds"
            " from metrics_daily where campaign_id = ?", [cid]).fetchall()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def _contact_rows(db, cid) -> dict:
    with connect(db) as conn:
        rows = conn.execute(
            "select contact_id, attempts, connected, successful, credits, total_duration_seconds,"
            " last_disconnect_reason, last_call_at, created_at from contact_stats where campaign_id = ?",
            [cid]).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


@pytest.fixture(params=["incremental", "full"])
def aggregated(request, simulated, tmp_path):
    """The store as the simulation's incremental runs left it, or a copy rebuilt by `aggregate --full`."""
    if request.param == "incremental":
        return simulated["db"]
    db = tmp_path / "full.duckdb"
    shutil.copyfile(simulated["db"], db)
    with transaction(db) as conn:
        metrics.aggregate(conn, START + timedelta(days=5), full=True)
    return db


@pytest.mark.parametrize("which", ["ny", "hi"])
def test_metrics_daily_matches_the_calls(simulated, aggregated, which):
    cid = simulated[which]
    campaign = simulated["campaigns"][cid]
    expected = _expected_daily(campaign["calls"], campaign["zone"])
    assert len(expected) > 10
    assert _daily_rows(aggregated, cid) == {k: _approx_row(v) for k, v in expected.items()}


@pytest.mark.parametrize("which", ["ny", "hi"])
def test_contact_stats_match_the_calls(simulated, aggregated, which):
    cid = simulated[which]
    campaign = simulated["campaigns"][cid]
    expected = _expected_contact_stats(campaign["calls"], campaign["enrolled"])
    assert len(expected) == {"ny": 19, "hi": 4}[which] and simulated["removed"] not in expected
    assert _contact_rows(aggregated, cid) == expected


@pytest.mark.parametrize("plan", ["bitmap", "hashed"])
@pytest.mark.parametrize("which", ["ny", "hi"])
def test_kpis_and_funnel_match_the_calls(simulated, monkeypatch, which, plan):
    if plan == "hashed":
        monkeypatch.setattr(metrics, "MAX_BITMAP_SPAN", 0)
    cid = simulated[which]
    with connect(simulated["db"]) as conn:
        for date_from, date_to in RANGES:
            want = _expected_totals(simulated["campaigns"][cid], date_from, date_to)
            row = metrics.totals(conn, cid, date_from, date_to)
            assert row["connected_calls"] == want["connected_calls"], (date_from, date_to)
            assert metrics.kpis(conn, cid, date_from, date_to) == want["kpis"], (date_from, date_to)
            assert metrics.funnel(conn, cid, date_from, date_to) == want["funnel"], (date_from, date_to)
            cards, funnel = dash.kpis_and_funnel(conn, cid, date_from, date_to)
            assert cards == want["kpis"], (date_from, date_to)
            assert {k: v for k, v in funnel.items() if k != "hints"} == want["funnel"], (date_from, date_to)
            assert dash.kpi_cards(conn, cid, date_from, date_to) == want["kpis"], (date_from, date_to)
            assert dash.contact_funnel(conn, cid, date_from, date_to) == funnel, (date_from, date_to)


def test_the_whole_campaign_in_numbers(simulated):
    """The totals pinned loosely, so a change of the simulation that hollows out the comparisons is noticed."""
    want = _expected_totals(simulated["campaigns"][simulated["ny"]], None, None)
    assert want["kpis"]["total_calls"] > 100
    assert 0 < want["kpis"]["connected_contacts"] < want["kpis"]["total_contacts"] == 19
    assert want["kpis"]["contacts_called"] == 20  # the removed contact's calls still count
    assert want["funnel"]["successful"] > 0


@pytest.mark.parametrize("which", ["ny", "hi"])
def test_calls_made_matches_the_calls(simulated, aggregated, which):
    cid = simulated[which]
    with connect(aggregated) as conn:
        for date_from, date_to in RANGES:
            got = dash.calls_made(conn, cid, date_from, date_to)
            per_day = metrics.calls_per_day(conn, cid, date_from, date_to)
            expected = _expected_calls_made(simulated["campaigns"][cid], date_from, date_to)
            assert sorted(got.rows()) == expected, (date_from, date_to)
            assert sorted(per_day.with_columns(per_day["disconnect_reason"].fill_null(dash.NO_REASON)).rows()) == sorted(
                (d, r, n) for d, r, n in expected if n), (date_from, date_to)


# --- local days in awkward zones, from calls written directly -------------------------------------

# (zone, country, a UTC instant near which its offset changes or is odd)
AWKWARD_ZONES = [
    ("America/New_York", "US", datetime(2026, 11, 1, 6, 0, tzinfo=UTC)),  # falls back: 01:00-02:00 twice
    ("America/Santiago", "CL", datetime(2026, 9, 6, 4, 0, tzinfo=UTC)),  # springs forward at midnight
    ("Australia/Lord_Howe", "AU", datetime(2026, 4, 4, 15, 0, tzinfo=UTC)),  # half-hour change
    ("Asia/Kathmandu", "NP", datetime(2026, 4, 4, 18, 15, tzinfo=UTC)),  # +05:45, local midnight
]
OUTCOMES = [
    ("ended", "user_hangup", False), ("ended", "agent_hangup", False), ("ended", "voicemail_reached", True),
    ("ended", "user_hangup", True), ("not_connected", "dial_no_answer", None), ("error", "error_unknown", None),
    ("failed_rate_limit", None, None), ("failed_rate_limit", "concurrency_limit_reached", None),
    ("registered", None, None),
]


def _write_calls(conn, campaign_id: int, contacts: list[int], start: datetime, hours: int, rng, count: int,
                 now: datetime) -> None:
    rows = []
    for _ in range(count):
        status, reason, voicemail = rng.choice(OUTCOMES)
        queued = start + timedelta(seconds=rng.randrange(hours * 3600))
        duration = 0.0 if status != "ended" else float(rng.randrange(5, 400))
        attempt = status not in ("failed_rate_limit",)
        rows.append([campaign_id, rng.choice(contacts), f"w{campaign_id}.{rng.random()}", attempt, status, reason,
                     rng.choice([True, False, None]) if status == "ended" else None, voicemail, duration,
                     0 if status != "ended" else 333 * (1 + int(duration) // 60), queued, now])
    rows.sort(key=lambda row: row[10])  # call ids grow with queue time, as claims make them
    conn.executemany(
        "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, counts_as_attempt, phone_e164,"
        " status, disconnect_reason, call_successful, in_voicemail, duration_seconds, credits, provider, queued_at,"
        " updated_at) values (?, ?, ?, 1, ?, '+10000000000', ?, ?, ?, ?, ?, ?, 'simulator', ?, ?)", rows)


def test_local_days_in_awkward_zones_incremental_and_full(db):
    import random

    rng = random.Random(5)
    ids = make_campaign_db(db)
    campaigns = {}
    with transaction(db) as conn:
        for zone, country, around in AWKWARD_ZONES:
            cid = create_campaign(conn, {
                "name": zone, "agent_id": ids["agent_id"], "time_zone": zone, "country": country,
                "calling_days": WEEK, "weekly_schedule": ALL_DAY, "outbound_number_ids": ids["number_ids"][:1],
            }, around)
            contacts = [conn.execute("insert into contacts (phone_e164) values (?) returning contact_id",
                                     [f"+1602555{cid:02d}{i:02d}"]).fetchone()[0] for i in range(12)]
            for contact_id in contacts[:10]:  # two are called but no longer enrolled
                conn.execute("insert into campaign_contacts (campaign_id, contact_id) values (?, ?)", [cid, contact_id])
            campaigns[cid] = (zone, contacts, around)
            _write_calls(conn, cid, contacts, around - timedelta(days=3), 144, rng, 150, around - timedelta(days=4))
        metrics.aggregate(conn, datetime(2026, 12, 1, tzinfo=UTC))
        # later: the calls in flight end, more calls are placed; the incremental run must redo their days
        conn.execute("update calls set status = 'ended', disconnect_reason = 'agent_hangup', duration_seconds = 61,"
                     " credits = 666, call_successful = true, updated_at = ? where status = 'registered'",
                     [datetime(2026, 12, 2, tzinfo=UTC)])
        for cid, (zone, contacts, around) in campaigns.items():
            _write_calls(conn, cid, contacts, around + timedelta(days=3), 30, rng, 40, datetime(2026, 12, 2, tzinfo=UTC))
        metrics.aggregate(conn, datetime(2026, 12, 2, 0, 5, tzinfo=UTC))

    def compare() -> None:
        for cid, (zone, _contacts, _around) in campaigns.items():
            calls, enrolled = _read(db, cid)
            want = _expected_daily(calls, zone)
            assert _daily_rows(db, cid) == {k: _approx_row(v) for k, v in want.items()}, zone
            assert _contact_rows(db, cid) == _expected_contact_stats(calls, enrolled), zone
            campaign = {"calls": calls, "enrolled": enrolled, "zone": zone}
            with connect(db) as conn:
                for day in sorted({d for d, _ in want}):
                    assert metrics.kpis(conn, cid, day, day) == _expected_totals(campaign, day, day)["kpis"], (zone, day)

    compare()
    with transaction(db) as conn:
        metrics.aggregate(conn, datetime(2026, 12, 3, tzinfo=UTC), full=True)
    compare()
    # a campaign moved to another time zone: its days are counted again in the new zone
    moved = next(iter(campaigns))
    with transaction(db) as conn:
        conn.execute("update campaigns set time_zone = 'Asia/Kathmandu' where campaign_id = ?", [moved])
        campaigns[moved] = ("Asia/Kathmandu", *campaigns[moved][1:])
        metrics.aggregate(conn, datetime(2026, 12, 4, tzinfo=UTC))
    compare()


def test_credits_follow_the_rate_card(simulated):
    """product-facts: 333 credits per started answered minute, 75 for a voicemail, nothing when not connected."""
    import math

    billed = 0
    for campaign in simulated["campaigns"].values():
        for c in campaign["calls"]:
            if c["in_voicemail"] and c["disconnect_reason"] != "voicemail_reached":
                continue  # edited by hand after billing
            if c["status"] == "ended" and c["disconnect_reason"] == "voicemail_reached":
                want = 75
            elif c["status"] == "ended":
                want = 333 * math.ceil((c["duration_seconds"] or 0) / 60)
            else:
                want = 0
            assert c["credits"] == want, c["call_id"]
            billed += want > 0
    assert billed >= 10


def test_the_default_range_runs_from_the_start_date_to_the_campaign_local_today(simulated):
    with connect(simulated["db"]) as conn:
        # 03:00 UTC on 8 March is still the 7th in New York, already the 7th's evening in Honolulu
        at = datetime(2026, 3, 8, 3, 0, tzinfo=UTC)
        assert dash.default_range(conn, simulated["ny"], at) == (date(2026, 3, 6), date(2026, 3, 7))
        assert dash.default_range(conn, simulated["hi"], at) == (date(2026, 3, 6), date(2026, 3, 7))
        at = datetime(2026, 3, 8, 9, 0, tzinfo=UTC)  # 05:00 EDT on the 8th, 23:00 on the 7th in Honolulu
        assert dash.default_range(conn, simulated["ny"], at) == (date(2026, 3, 6), date(2026, 3, 8))
        assert dash.default_range(conn, simulated["hi"], at) == (date(2026, 3, 6), date(2026, 3, 7))
