-- Calls Made rows per campaign, campaign-local day and disconnect reason, for the scope in temp
-- tables: metrics_scope_ranges (campaign, UTC [lo, hi), whole = every day of it) and
-- metrics_scope_days (the days wanted when not whole). The local day comes from the campaign's UTC
-- offset segments (metrics_tz_segments) with integer arithmetic: `at time zone` per row is ~80x slower.
with ranged_calls as (
    select
        c.campaign_id, c.queued_at, c.disconnect_reason, c.status, c.in_voicemail,
        c.counts_as_attempt, c.credits, c.duration_seconds, r.whole,
        epoch_us(c.queued_at) as queued_us
    from calls c
    join metrics_scope_ranges r
        on c.campaign_id = r.campaign_id and c.queued_at >= r.lo and c.queued_at < r.hi
    -- the overall bounds again as constants, so DuckDB can skip row groups by their min/max
    where c.queued_at >= $lo and c.queued_at < $hi
),

localised as (
    select
        rc.*,
        date '1970-01-01' + ((rc.queued_us + s.offset_us) // 86400000000)::integer as day
    from ranged_calls rc
    join metrics_tz_segments s
        on rc.campaign_id = s.campaign_id and rc.queued_us >= s.lo_us and rc.queued_us < s.hi_us
),

scoped as (
    select l.*
    from localised l
    left join metrics_scope_days d using (campaign_id, day)
    where l.whole or d.campaign_id is not null
),

classified as (
    select
        *,
        -- the one connected rule, tasks.metrics.CONNECTED_SQL (a person picked up, docs/schema.md "Metrics")
        {{connected}} as is_connected
    from scoped
),

final as (
    select
        campaign_id,
        day,
        disconnect_reason,
        count(*) filter (where counts_as_attempt)::integer as calls,
        count(*) filter (where is_connected)::integer as connected,
        coalesce(sum(credits), 0)::bigint as credits,
        coalesce(sum(duration_seconds), 0)::double as duration_seconds,
        coalesce(sum(duration_seconds) filter (where is_connected), 0)::double as connected_duration_seconds
    from classified
    group by campaign_id, day, disconnect_reason
)

select * from final
