"""The shared store backend (CAMPAIGNS_STORE=postgres): migrations, the dialect bridges, the writer lock."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from pathlib import Path
from datetime import datetime, timezone

import pytest

from tasks.campaigns import add_agent
from tasks.dialing import claim_batch, load_plans, usable_numbers
from tasks.errors import StoreError, StoreLockedError
from tasks.feedback import UPSERT_SQL
from tasks.settings import get_settings, reset_settings
from tasks.store import (
    _hidden,
    _statement_head,
    connect,
    init_db,
    latest_version,
    postgres_ddl,
    shared_store_url,
    transaction,
)
from tests.factories import add_contacts, make_campaign_db

UTC = timezone.utc
TUE_10_PHOENIX = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)  # inside the reference campaign's window


@pytest.mark.parametrize(
    ("duckdb_sql", "postgres_sql"),
    [
        ("duration_seconds double,", "duration_seconds double precision,"),
        ("x double precision", "x double precision"),  # already PostgreSQL: left alone
        ("ids bigint[] not null default [],", "ids bigint[] not null default '{}',"),
        ("days varchar[] default ['mon', 'tue']", "days varchar[] default array['mon', 'tue']"),
        ("properties json not null default '{}'", "properties text not null default '{}'"),
        ("where t > now() - interval 31 days", "where t > now() - interval '31 days'"),
    ],
)
def test_migration_ddl_is_translated_to_postgres(duckdb_sql, postgres_sql):
    assert postgres_ddl(duckdb_sql) == postgres_sql


@pytest.mark.parametrize(
    ("statement", "head"),
    [
        ("  BEGIN TRANSACTION", "begin"),
        ("commit;", "commit"),
        ("-- why\n/* and how */\n  update calls set status = 'ended'", "update"),  # comments skipped
        ("with x as (select 1) select * from x", "with"),  # a read: no writer lock
        ("", ""),
    ],
)
def test_statement_head_decides_who_takes_the_writer_lock(statement, head):
    assert _statement_head(statement) == head


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://vc:s3cret@db:5432/campaigns", "postgresql://vc:***@db:5432/campaigns"),
        ("host=db user=vc password=s3cret dbname=x", "host=db user=vc password=*** dbname=x"),
        ("postgresql://vc@db/campaigns", "postgresql://vc@db/campaigns"),  # no password: unchanged
    ],
)
def test_messages_never_show_the_password(url, shown):
    assert _hidden(url) == shown


def test_the_default_store_is_the_duckdb_file(monkeypatch):
    monkeypatch.delenv("CAMPAIGNS_STORE", raising=False)
    reset_settings()
    try:
        assert shared_store_url() is None
    finally:
        reset_settings()


def test_a_shared_store_without_its_url_is_refused_in_one_line(monkeypatch):
    monkeypatch.setenv("CAMPAIGNS_STORE", "postgres")
    monkeypatch.delenv("CAMPAIGNS_STORE_URL", raising=False)
    reset_settings()
    try:
        with pytest.raises(StoreError, match="CAMPAIGNS_STORE=postgres needs CAMPAIGNS_STORE_URL"):
            shared_store_url()
    finally:
        reset_settings()


def test_an_unreachable_server_is_a_store_error_without_the_password(monkeypatch, tmp_path):
    from tasks.pgserver import free_port

    monkeypatch.setenv("CAMPAIGNS_STORE", "postgres")
    monkeypatch.setenv("CAMPAIGNS_STORE_URL", f"postgresql://vc:s3cret@127.0.0.1:{free_port()}/nothing")
    monkeypatch.setenv("CAMPAIGNS_DB", str(tmp_path / "campaigns.duckdb"))
    reset_settings()
    try:
        with pytest.raises(StoreError, match="unreachable") as raised:
            with connect(timeout=0.3):
                pass
        assert "s3cret" not in str(raised.value)
    finally:
        reset_settings()


# ------------------------------------------------------------------ against a real PostgreSQL


def _new_store(pg_server, monkeypatch, tmp_path, prefix: str, password: str = "") -> tuple[str, str]:
    """An empty PostgreSQL database the settings select as the store, initialised: (name, URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    pg_server.execute(f'create database "{name}"')
    url = f"postgresql://{pg_server.user}{':' + password if password else ''}@{pg_server.host}:{pg_server.port}/{name}"
    for key, value in _store_env(url, tmp_path).items():
        monkeypatch.setenv(key, value)
    reset_settings()
    init_db()
    return name, url


@pytest.fixture
def shared_store(pg_server, monkeypatch, tmp_path):
    """An empty PostgreSQL database the settings select as the store; yields its URL."""
    yield _new_store(pg_server, monkeypatch, tmp_path, "store")[1]
    reset_settings()


def _store_env(url: str, folder) -> dict[str, str]:
    return {"CAMPAIGNS_STORE": "postgres", "CAMPAIGNS_STORE_URL": url,
            "CAMPAIGNS_DB": str(folder / "campaigns.duckdb"), "CAMPAIGNS_LOCK_TIMEOUT_SECONDS": "60"}


@pytest.fixture
def store_with_password(pg_server, monkeypatch, tmp_path):
    """A store whose URL carries a password (the server trusts 127.0.0.1, so it connects all the same)."""
    name, _ = _new_store(pg_server, monkeypatch, tmp_path, "secret", password="s3cretpw")
    yield name
    pg_server.execute(f'alter database "{name}" allow_connections true')
    reset_settings()


def test_a_store_that_goes_away_later_is_a_store_error_without_the_password(pg_server, store_with_password):
    # The process is connected; then its server stops taking connections (restart, failover, network).
    # DuckDB's "Unable to connect to Postgres at <url>" quotes the URL, password included: neither the
    # error nor anything chained to it (the traceback Prefect logs) may carry it.
    import traceback

    with transaction() as conn:
        add_agent(conn, "Ava", None, TUE_10_PHOENIX)
    name = store_with_password
    pg_server.execute(f'alter database "{name}" allow_connections false; select pg_terminate_backend(pid)'
                      f" from pg_stat_activity where datname = '{name}' and pid <> pg_backend_pid()")

    def read():
        with connect(timeout=0.3) as conn:
            conn.execute("select count(*) from agents").fetchall()

    def write():
        with transaction(timeout=0.3) as conn:
            conn.execute("update agents set name = 'Bea'")

    for step in (read, write):
        with pytest.raises(StoreError, match="unreachable") as raised:
            step()
        shown = "".join(traceback.format_exception(raised.value))
        assert "s3cretpw" not in shown, shown
        assert "***@" in str(raised.value)


def test_migrations_apply_on_postgres_and_tables_keep_duckdb_names(shared_store):
    with connect() as conn:
        assert conn.execute("select max(version) from schema_migrations").fetchone()[0] == latest_version()
        # the schema is called main, so SQL that names DuckDB's main schema still works
        tables = {r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'main'").fetchall()}
    assert {"campaigns", "contacts", "campaign_contacts", "calls", "dial_runs"} <= tables


def test_insert_returning_gives_the_sequence_ids(shared_store):
    with transaction() as conn:
        ids = [add_agent(conn, f"Agent {i}", None, TUE_10_PHOENIX) for i in range(3)]
        names = conn.execute("select agent_id, name from agents order by agent_id").fetchall()
    assert ids == [1, 2, 3]
    assert names == [(1, "Agent 0"), (2, "Agent 1"), (3, "Agent 2")]


def test_upsert_returning_keeps_the_existing_row(shared_store):
    setup = make_campaign_db(None)
    first = add_contacts(None, setup["campaign_id"], 2)
    # the same phones again: ON CONFLICT updates the names and returns the existing ids
    with transaction() as conn:
        again = [conn.execute(
            "insert into contacts (phone_e164, name) values (?, ?)"
            " on conflict (phone_e164) do update set name = excluded.name returning contact_id",
            [f"+1602555{i:04d}", f"Renamed {i}"]).fetchone()[0] for i in range(2)]
        rows = conn.execute("select contact_id, name from contacts order by contact_id").fetchall()
    assert again == first
    assert rows == [(first[0], "Renamed 0"), (first[1], "Renamed 1")]


def test_upsert_returning_refuses_to_run_under_a_campaign_lock(shared_store):
    # emulated as update-then-insert: another campaign's transaction could insert the same key between
    from tasks.store import lock_scope

    campaign = make_campaign_db(None)["campaign_id"]
    with lock_scope(campaign), transaction() as conn:
        assert conn.scope == campaign
        with pytest.raises(StoreError, match="needs the store-wide lock"):
            conn.execute("insert into contacts (phone_e164, name) values ('+16025550000', 'A')"
                         " on conflict (phone_e164) do update set name = excluded.name returning contact_id")


def test_feedback_upsert_runs_on_the_extension(shared_store):
    with transaction() as conn:
        conn.execute("insert into call_feedback (call_id, rating, comment, created_at, updated_at)"
                     " values (7, 'up', 'kind', ?, ?)", [TUE_10_PHOENIX, TUE_10_PHOENIX])
        conn.execute(UPSERT_SQL, {"call_id": 7, "rating": "down", "comment": None, "now": TUE_10_PHOENIX,
                                  "clear_rating": False})
        row = conn.execute("select rating, comment from call_feedback where call_id = 7").fetchone()
    assert row == ("down", "kind")  # a None comment keeps the stored one


def test_a_failed_transaction_leaves_nothing(shared_store):
    with pytest.raises(RuntimeError):
        with transaction() as conn:
            add_agent(conn, "Half", None, TUE_10_PHOENIX)
            raise RuntimeError("boom")
    with connect() as conn:
        assert conn.execute("select count(*) from agents").fetchone()[0] == 0


@pytest.mark.slow
def test_a_second_writer_waits_for_the_lock_then_gives_up_in_one_line(shared_store):
    holding, release = threading.Event(), threading.Event()

    def hold():
        with transaction():
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        # another process's writer: the in-process turn-taking is bypassed by using a fresh thread lock
        outcome = multiprocessing.get_context("spawn").Pool(1).apply(_try_write, (shared_store,))
        assert outcome.startswith("StoreLockedError: the shared store's writer lock stayed taken")
    finally:
        release.set()
        holder.join()


def _try_write(url: str) -> str:
    import os
    import tempfile
    from pathlib import Path

    os.environ.update(_store_env(url, Path(tempfile.mkdtemp())))
    reset_settings()
    try:
        with transaction(timeout=0.3):
            return "wrote"
    except StoreLockedError as error:
        return f"{type(error).__name__}: {error}"


# ------------------------------------------------------------------ concurrent claims

WORKERS, CLAIMS_PER_WORKER, CLAIM_SIZE, CONTACTS = 3, 8, 25, 500


@pytest.mark.slow
def test_concurrent_workers_never_claim_a_contact_twice(shared_store):
    setup = make_campaign_db(None, batch_size=CLAIM_SIZE, number_daily_cap=1000)
    with transaction() as conn:  # in bulk: row by row, 500 upserts through the extension take a minute
        conn.execute("insert into contacts (phone_e164, name) select '+1602555' || lpad(i::varchar, 4, '0'),"
                     " 'Person ' || i from range(?) t(i)", [CONTACTS])
        conn.execute("insert into campaign_contacts (campaign_id, contact_id) select ?, contact_id from contacts",
                     [setup["campaign_id"]])
    context = multiprocessing.get_context("spawn")
    start, ready, out = context.Event(), context.Semaphore(0), context.Queue()
    workers = [context.Process(target=_claim_many, args=(shared_store, setup["campaign_id"], ready, start, out))
               for _ in range(WORKERS)]
    for worker in workers:
        worker.start()
    for _ in workers:
        assert ready.acquire(timeout=120)
    start.set()  # every worker claims at the same moment
    results = [out.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(30)
    assert not [r for r in results if isinstance(r, str)], results  # a worker failed
    claimed = [contact for worker in results for contact, _ in worker]
    call_ids = [call for worker in results for _, call in worker]
    # 3 × 8 × 25 = 600 wanted from 500 contacts: every contact exactly once, then nobody is eligible
    assert len(claimed) == CONTACTS
    assert len(set(claimed)) == CONTACTS
    with connect() as conn:
        stored = conn.execute("select call_id, contact_id from calls order by call_id").fetchall()
        in_flight = conn.execute(
            "select count(*) from campaign_contacts cc join calls c on c.call_id = cc.in_flight_call_id"
            " and c.contact_id = cc.contact_id where cc.attempts = 1").fetchone()[0]
    assert sorted(stored) == sorted(zip(call_ids, claimed))  # every claim recorded, nothing else
    assert in_flight == CONTACTS
    assert all(len(worker) > 0 for worker in results), "each worker got a share"


def _claim_many(url: str, campaign_id: int, ready, start, out) -> None:
    """A worker process: claim CLAIMS_PER_WORKER batches; puts its (contact, call) pairs or its error."""
    import os
    import tempfile
    import traceback
    from pathlib import Path

    try:
        os.environ.update(_store_env(url, Path(tempfile.mkdtemp())))
        reset_settings()
        with connect() as conn:  # open the store before the start signal
            plan = load_plans(conn, [campaign_id])[0]
        ready.release()
        start.wait(120)
        got: list[tuple[int, int]] = []
        for _ in range(CLAIMS_PER_WORKER):
            with transaction() as conn:
                numbers, why = usable_numbers(conn, plan, TUE_10_PHOENIX)
                assert why is None, why
                run_id, calls = claim_batch(conn, plan, TUE_10_PHOENIX, kind="manual", from_numbers=numbers,
                                            provider_name="simulator", size=CLAIM_SIZE)
            if run_id is None:  # everybody is claimed
                continue
            got.extend(zip(calls["contact_id"].to_list(), calls["call_id"].to_list()))
        out.put(got)
    except BaseException:
        ready.release()
        out.put(traceback.format_exc())


def test_a_write_outside_a_transaction_waits_for_the_writer_and_is_not_lost(shared_store):
    # The extension updates rows by physical address: without the writer lock, this UPDATE racing the
    # held transaction's change to the same row updated nothing (yet said 1 row) once that committed.
    with transaction() as conn:
        agent = add_agent(conn, "Ava", None, TUE_10_PHOENIX)
    holding, release = threading.Event(), threading.Event()

    def hold():
        with transaction() as conn:
            conn.execute("update agents set name = 'Held' where agent_id = ?", [agent])
            holding.set()
            release.wait(10)

    def append():
        with connect() as conn:
            conn.execute("update agents set name = name || '+B' where agent_id = ?", [agent])

    holder, other = threading.Thread(target=hold), threading.Thread(target=append)
    holder.start()
    try:
        assert holding.wait(10)
        other.start()
        time.sleep(1.0)  # the append is waiting meanwhile
    finally:
        release.set()
        holder.join()
    other.join(30)
    with connect() as conn:
        assert conn.execute("select name from agents where agent_id = ?", [agent]).fetchone()[0] == "Held+B"


# ------------------------------------------------------------------ campaign-scoped claims

HOLD_SECONDS = 0.4  # each claim transaction stays open this long: overlap is measurable, not luck
SCOPED_CLAIMS, SCOPED_CONTACTS = 6, 300


@pytest.mark.slow
@pytest.mark.parametrize("share_number", [False, True], ids=["independent", "sharing-a-number"])
def test_scoped_claims_of_different_campaigns_overlap_and_lose_nothing(shared_store, share_number):
    # Four processes: two on campaign A (shards: same campaign key), one on B, one on C. Independent
    # campaigns' claims run at the same time; campaigns sharing an outbound number (per-number daily
    # cap, number health) escalate to the store-wide key and take turns, as every claim did before.
    from flows.cluster_sim import add_campaigns_like, enroll_numbered_contacts
    from tests.invariants import check_invariants

    first = make_campaign_db(None, batch_size=20, number_daily_cap=1000)["campaign_id"]
    campaigns = [first, *add_campaigns_like(None, first, 2)]
    if share_number:
        with transaction() as conn:
            conn.execute("update campaigns set outbound_number_ids = (select outbound_number_ids from campaigns"
                         " where campaign_id = ?) where campaign_id = ?", [first, campaigns[1]])
    enroll_numbered_contacts(None, campaigns, SCOPED_CONTACTS)
    plan_of = [campaigns[0], campaigns[0], campaigns[1], campaigns[2]]
    context = multiprocessing.get_context("spawn")
    start, ready, out = context.Event(), context.Semaphore(0), context.Queue()
    workers = [context.Process(target=_claim_scoped, args=(shared_store, campaign, ready, start, out))
               for campaign in plan_of]
    for worker in workers:
        worker.start()
    for _ in workers:
        assert ready.acquire(timeout=120)
    start.set()
    results = [out.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(30)
    assert not [r for r in results if isinstance(r, str)], results
    spans = [(campaign, begun, ended) for r in results for campaign, begun, ended, _ in r["claims"]]
    overlapping = {(a[0], b[0]) for a in spans for b in spans
                   if a is not b and a[1] < b[2] and b[1] < a[2]}
    # one campaign's claims never overlap (the campaign key; the shards would read the same contacts)
    assert not [pair for pair in overlapping if pair[0] == pair[1]], overlapping
    if share_number:
        assert not overlapping, overlapping  # escalated: every claim took turns
    else:
        assert {(campaigns[1], campaigns[2]), (campaigns[0], campaigns[1])} <= overlapping, overlapping
    claimed = [pair for r in results for *_, pairs in r["claims"] for pair in pairs]
    assert len(claimed) == len({contact for contact, _ in claimed}) == SCOPED_CONTACTS  # each exactly once
    with connect() as conn:
        stored = conn.execute("select call_id, contact_id from calls order by call_id").fetchall()
        in_flight = conn.execute(
            "select count(*) from campaign_contacts cc join calls c on c.call_id = cc.in_flight_call_id"
            " and c.contact_id = cc.contact_id and c.campaign_id = cc.campaign_id where cc.attempts = 1").fetchone()[0]
        attempts = conn.execute("select count(*) from phone_attempts").fetchone()[0]
    assert sorted(stored) == sorted((call, contact) for contact, call in claimed)  # no claim lost
    assert in_flight == attempts == SCOPED_CONTACTS  # no enrollment update lost
    check_invariants(None, settled=False)


def _claim_scoped(url: str, campaign_id: int, ready, start, out) -> None:
    """A worker process: SCOPED_CLAIMS claims in `lock_scope(campaign_id)`, each held HOLD_SECONDS; puts
    {"claims": [(campaign, begun, ended, [(contact, call), ...]), ...]} (wall times) or its error."""
    import os
    import tempfile
    import traceback
    from pathlib import Path

    from tasks.store import lock_scope

    try:
        os.environ.update(_store_env(url, Path(tempfile.mkdtemp())))
        reset_settings()
        with connect() as conn:
            plan = load_plans(conn, [campaign_id])[0]
        ready.release()
        start.wait(120)
        claims = []
        with lock_scope(campaign_id):
            for _ in range(SCOPED_CLAIMS):
                with transaction() as conn:
                    begun = time.time()  # the locks are held from here to the commit
                    numbers, why = usable_numbers(conn, plan, TUE_10_PHOENIX)
                    assert why is None, why
                    run_id, calls = claim_batch(conn, plan, TUE_10_PHOENIX, kind="manual", from_numbers=numbers,
                                                provider_name="simulator", size=plan.batch_size)
                    time.sleep(HOLD_SECONDS)
                    ended = time.time()
                pairs = [] if run_id is None else list(zip(calls["contact_id"].to_list(), calls["call_id"].to_list()))
                claims.append((campaign_id, begun, ended, pairs))
        out.put({"claims": claims})
    except BaseException:
        ready.release()
        out.put(traceback.format_exc())


def test_a_campaign_that_stops_being_independent_is_locked_store_wide_at_once(shared_store):
    # The verdict is cached per store-write epoch: the store-wide enrollment below must invalidate it.
    from flows.cluster_sim import add_campaigns_like, enroll_numbered_contacts
    from tasks.compliance import resolve_zones
    from tasks.store import lock_scope

    first = make_campaign_db(None)["campaign_id"]
    second = add_campaigns_like(None, first, 1)[0]
    enroll_numbered_contacts(None, [first, second], 4)
    with transaction() as conn:
        resolve_zones(conn)  # new contacts wait for zone resolution: their campaign is not independent
        assert conn.scope is None
    with lock_scope(first), transaction() as conn:
        assert conn.scope == first
    with transaction() as conn:  # one of the first campaign's contacts joins the second campaign too
        conn.execute("insert into campaign_contacts (campaign_id, contact_id) select ?, min(contact_id)"
                     " from campaign_contacts where campaign_id = ?", [second, first])
    with lock_scope(first), transaction() as conn:
        assert conn.scope is None  # its claims could now pass a person's rolling caps: store-wide


def test_a_forecast_on_the_shared_store_simulates_a_local_copy_and_leaves_the_store_alone(shared_store):
    # every connect(copy) went to the shared store: the copy's "delete from <table>" emptied the live tables, and
    # only a failing sequence step rolled it back
    from datetime import UTC, datetime

    from tasks.forecast import forecast

    setup = make_campaign_db(None, batch_size=10, max_attempts=1)
    add_contacts(None, setup["campaign_id"], 6)
    with connect() as conn:
        before = {t: conn.execute(f"select count(*) from {t}").fetchone()[0]
                  for t in ("agents", "campaigns", "contacts", "campaign_contacts", "calls", "calling_rules")}
    result = forecast(None, setup["campaign_id"], datetime(2026, 4, 27, 15, 0, tzinfo=UTC), seed=3)
    assert result.calls == 6 and result.completion is not None  # the copy was dialed, one attempt each
    with connect() as conn:
        after = {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in before}
    assert after == before and before["calls"] == 0 and before["contacts"] == 6


def test_init_names_the_shared_store_and_backup_points_to_pg_dump(shared_store, capsys):
    # init printed a DuckDB path nobody created; backup said the store "does not exist", or copied the live store
    from tests.flows.cli_run import run

    code, out, err = run(capsys, Path(get_settings().db), "init")
    assert (code, err) == (0, "")
    assert out.startswith("database ready: shared store postgresql://") and ".duckdb" not in out
    code, out, err = run(capsys, Path(get_settings().db), "backup", "--out", str(Path(get_settings().db).parent / "b.duckdb"))
    assert code == 2 and err.startswith("error: the store is the shared PostgreSQL store") and "pg_dump" in err
