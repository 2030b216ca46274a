-- 006: smart dialing — retry policy, number health, best time to call. Documented in docs/schema.md.
-- DuckDB cannot add a column with a NOT NULL constraint to an existing table: defaults stand in.

-- Per-campaign options (null retry_policy = the built-in defaults; null number_daily_cap = no cap).
alter table campaigns add column retry_policy json;
alter table campaigns add column smart_ordering boolean default false;
alter table campaigns add column exploration_share double default 0.2;
alter table campaigns add column number_daily_cap integer;

-- A number taken out of rotation (automatically by health thresholds, or by hand) until restored.
alter table phone_numbers add column rotation_paused_at timestamptz;
alter table phone_numbers add column rotation_paused_reason varchar;

-- The outbound number the contact's next attempt must not use (its last call was marked as spam).
alter table campaign_contacts add column avoid_number varchar;

create table number_status_changes (
    number_id  bigint not null,
    changed_at timestamptz not null,
    action     varchar not null check (action in ('paused', 'restored')),
    reason     varchar
);

-- Connection rate by callee-local weekday and hour per campaign; rebuilt by aggregate_metrics.
create table best_time_stats (
    campaign_id bigint not null,
    weekday     smallint not null,
    hour        smallint not null,
    calls       integer not null,
    connected   integer not null,
    updated_at  timestamptz not null
);
