-- The Metrics tab's KPI cards and funnel (also `campaigns metrics`) for one campaign and a UTC range
-- [$lo, $hi) (the campaign-local dates already turned into instants): one scan of the campaign's calls
-- in range, so the figures are always current. Per-contact facts ("called", "connected", "successful",
-- "enrolled") are bitmaps over contact ids (bitstring_agg between $first_id and $last_id, from
-- kpi_id_span.sql) combined with AND and counted with bit_count: a million-call campaign needs no hash
-- aggregate or semi-join, which cost several times the scan. Definitions: docs/schema.md, "Metrics".
with range_calls as (
    -- the campaign's calls in range with is_successful and is_connected: tasks/sql/range_calls.sql
    {{range_calls}}
),

call_totals as (
    select
        coalesce(sum(credits), 0)::bigint as credits_used,
        count(*) filter (where counts_as_attempt) as total_calls,
        bitstring_agg(contact_id, $first_id, $last_id) filter (where counts_as_attempt) as called_set,
        count(*) filter (where is_connected) as connected_calls,
        avg(duration_seconds) filter (where is_connected) as avg_call_duration_seconds,
        bitstring_agg(contact_id, $first_id, $last_id) filter (where is_connected) as connected_set,
        bitstring_agg(contact_id, $first_id, $last_id) filter (where is_successful) as successful_set
    from range_calls
),

enrolled as (
    select count(*) as total_contacts, bitstring_agg(contact_id, $first_id, $last_id) as enrolled_set
    from campaign_contacts
    where campaign_id = $campaign_id
),

final as (
    select
        credits_used,
        total_calls,
        -- calls of contacts since removed count as called, not in the enrolled funnel
        coalesce(bit_count(called_set), 0) as contacts_called,
        connected_calls,
        avg_call_duration_seconds,
        coalesce(bit_count(connected_set & enrolled_set), 0) as connected_contacts,
        coalesce(bit_count(successful_set & enrolled_set), 0) as successful_contacts,
        total_contacts
    from call_totals
    cross join enrolled
)

select * from final
