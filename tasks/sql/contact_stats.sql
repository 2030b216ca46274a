-- Contact List rows for the enrollments in scope: every enrollment of the campaigns being rebuilt
-- (temp table metrics_campaigns) and the enrollments listed in metrics_scope_contacts (never of a
-- rebuilt campaign). One row per enrolled contact, with or without calls; calls of removed contacts
-- are dropped by the final join. Connected = a person picked up (see docs/schema.md).
with rebuild as (
    select campaign_id from metrics_campaigns where rebuild
),

-- whole campaigns being rebuilt, plus single contacts of incrementally aggregated ones
enrollments as (
    select cc.campaign_id, cc.contact_id, cc.added_at
    from campaign_contacts cc
    semi join rebuild using (campaign_id)
    union all
    select cc.campaign_id, cc.contact_id, cc.added_at
    from campaign_contacts cc
    semi join metrics_scope_contacts s using (campaign_id, contact_id)
),

scoped_calls as (
    select
        c.campaign_id, c.contact_id, c.call_id, c.counts_as_attempt, c.status, c.disconnect_reason,
        c.in_voicemail, c.call_successful, c.credits, c.duration_seconds,
        coalesce(c.registered_at, c.started_at, c.queued_at) as placed_at
    from calls c
    semi join rebuild using (campaign_id)
    union all
    select
        c.campaign_id, c.contact_id, c.call_id, c.counts_as_attempt, c.status, c.disconnect_reason,
        c.in_voicemail, c.call_successful, c.credits, c.duration_seconds,
        coalesce(c.registered_at, c.started_at, c.queued_at) as placed_at
    from calls c
    semi join metrics_scope_contacts s using (campaign_id, contact_id)
),

classified as (
    select
        *,
        -- the one connected rule, tasks.metrics.CONNECTED_SQL (a person picked up, docs/schema.md "Metrics")
        {{connected}} as is_connected
    from scoped_calls
),

-- Few, fixed-width aggregate states: the hash aggregate over every enrollment is most of a full
-- rebuild, and a string state (arg_max of the reason) or three separate counters cost a third more.
per_contact as (
    select
        campaign_id,
        contact_id,
        -- attempts, connected and successful counted in one sum, 21 bits each (2,097,151 calls a contact)
        sum(counts_as_attempt::bigint
            + (is_connected::bigint << 21)
            + (coalesce(call_successful, false)::bigint << 42)) as packed_counts,
        sum(credits) as credits,
        sum(duration_seconds) as total_duration_seconds,
        -- call ids grow with queue time: the highest attempt is the most recent one; its reason rides
        -- in the low 5 bits as its position in $reasons (0 = none; the column's check allows only these)
        max(case when counts_as_attempt
                 then call_id * 32 + coalesce(list_position($reasons, disconnect_reason), 0) end) as last_attempt,
        -- when the last attempt was placed (registered with the provider), as the Call Logs date
        max(placed_at) filter (where counts_as_attempt) as last_call_at
    from classified
    group by campaign_id, contact_id
),

final as (
    select
        e.campaign_id,
        e.contact_id,
        coalesce(p.packed_counts & 2097151, 0)::integer as attempts,
        coalesce((p.packed_counts >> 21) & 2097151, 0)::integer as connected,
        coalesce(p.packed_counts >> 42, 0)::integer as successful,
        coalesce(p.credits, 0)::bigint as credits,
        coalesce(p.total_duration_seconds, 0)::double as total_duration_seconds,
        $reasons[(p.last_attempt % 32)::integer] as last_disconnect_reason,
        p.last_call_at,
        e.added_at as created_at
    from enrollments e
    left join per_contact p using (campaign_id, contact_id)
)

select * from final
