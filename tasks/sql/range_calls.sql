-- The campaign's calls queued in the UTC range [$lo, $hi), with the per-call facts the KPIs count: the
-- `range_calls` of kpis.sql and kpis_hashed.sql (inserted where they name it). `is_connected` is the one
-- connected rule, tasks.metrics.CONNECTED_SQL (a person picked up, docs/schema.md "Metrics").
select
    contact_id, counts_as_attempt, credits, duration_seconds,
    coalesce(call_successful, false) as is_successful,
    {{connected}} as is_connected
from calls
where campaign_id = $campaign_id and queued_at >= $lo and queued_at < $hi
