-- 002: metrics tables maintained by aggregate_metrics (documented in docs/schema.md, "Metrics").
-- No primary keys on purpose: the aggregation replaces whole key sets (delete-then-insert in one
-- transaction), and DuckDB's ART indexes would make the 10M-call full rebuild several times slower.

create table contact_stats (
    campaign_id            bigint not null,
    contact_id             bigint not null,
    attempts               integer not null,
    connected              integer not null,
    successful             integer not null,
    credits                bigint not null,
    total_duration_seconds double not null,
    last_disconnect_reason varchar,
    last_call_at           timestamptz,
    created_at             timestamptz not null
);

create table metrics_daily (
    campaign_id                bigint not null,
    day                        date not null,
    disconnect_reason          varchar,
    calls                      integer not null,
    connected                  integer not null,
    credits                    bigint not null,
    duration_seconds           double not null,
    connected_duration_seconds double not null
);

create table metrics_state (
    campaign_id     bigint not null,
    time_zone       varchar not null,
    calls_watermark timestamptz,
    aggregated_at   timestamptz not null
);
