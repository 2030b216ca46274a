-- 006: smart dialing — retry policy, number health, best time to call. Documented in docs/schema.md.
-- DuckDB cannot add a column with a NOT NULL constraint to an existing table: defaults stand in.
-- migrate: one statement per transaction
-- (several ALTERs with defaults on a non-empty table cannot commit together; each is idempotent)

-- Per-campaign options (null retry_policy = the built-in defaults; null number_daily_cap = no cap).
alter table campaigns add column if not exists retry_policy json;
alter table campaigns add column if not exists smart_ordering boolean default false;
alter table campaigns add column if not exists exploration_share double default 0.2;
alter table campaigns add column if not exists number_daily_cap integer;

-- A number taken out of rotation (automatically by health thresholds, or by hand) until restored.
alter table phone_numbers add column if not exists rotation_paused_at timestamptz;
alter table phone_numbers add column if not exists rotation_paused_reason varchar;

-- The outbound number the contact's next attempt must not use (its last call was marked as spam).
alter table campaign_contacts add column if not exists avoid_number varchar;

create table if not exists number_status_changes (
    number_id  bigint not null,
    changed_at timestamptz not null,
    action     varchar not null check (action in ('paused', 'restored')),
    reason     varchar
);

-- Connection rate by callee-local weekday and hour per campaign; rebuilt by aggregate_metrics.
create table if not exists best_time_stats (
    campaign_id bigint not null,
    weekday     smallint not null,
    hour        smallint not null,
    calls       integer not null,
    connected   integer not null,
    updated_at  timestamptz not null
);
