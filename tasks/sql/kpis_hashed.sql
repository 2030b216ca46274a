-- kpis.sql by hash aggregates instead of bitmaps, for campaigns whose contact ids span too widely
-- for a bitmap (tasks.metrics.MAX_BITMAP_SPAN): the same columns, the same definitions.
with enrolled as (
    select contact_id
    from campaign_contacts
    where campaign_id = $campaign_id
),

range_calls as (
    -- the campaign's calls in range with is_successful and is_connected: tasks/sql/range_calls.sql
    {{range_calls}}
),

call_totals as (
    select
        coalesce(sum(credits), 0)::bigint as credits_used,
        count(*) filter (where counts_as_attempt) as total_calls,
        count(distinct contact_id) filter (where counts_as_attempt) as contacts_called,
        count(*) filter (where is_connected) as connected_calls,
        avg(duration_seconds) filter (where is_connected) as avg_call_duration_seconds
    from range_calls
),

contact_outcomes as (
    select
        contact_id,
        bool_or(is_connected) as connected,
        bool_or(is_successful) as successful
    from range_calls
    semi join enrolled using (contact_id)
    group by contact_id
),

funnel as (
    select
        (select count(*) from enrolled) as total_contacts,
        count(*) filter (where connected) as connected_contacts,
        count(*) filter (where successful) as successful_contacts
    from contact_outcomes
),

final as (
    select * from call_totals cross join funnel
)

select * from final
