-- 008: `analyzed_at` is set only once a call is final (tasks/call_state.py `merge_records`), so the
-- pending-calls read can test `analyzed_at is null` first. Earlier code stamped it when a record said
-- "analysed" on a call still in flight; clear those stamps: the call's final record sets it again.
update calls set analyzed_at = null
where analyzed_at is not null and status in ('queued', 'created', 'registered', 'in_progress');
