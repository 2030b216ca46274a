-- 010: campaigns.paused_at — when Active was last turned off by hand (NULL: never, or on again since),
-- so an inactive campaign that was never activated (a new one, a duplicate) shows Draft, not Paused.
-- Documented in docs/schema.md.
-- migrate: one statement per transaction
-- (an ALTER and an UPDATE of the same non-empty table cannot commit together; both are idempotent)

alter table campaigns add column if not exists paused_at timestamptz;

-- existing inactive campaigns with a start date showed Paused: they keep it
update campaigns set paused_at = updated_at where not active and start_date is not null and paused_at is null;
