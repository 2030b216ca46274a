-- 011: phone_attempts.phone_e164 — the number each counted attempt rang. A deleted campaign's calls are
-- gone from `calls`, but their attempts stay in the rolling caps (tasks/campaigns.delete_campaign); a
-- contact's rows re-derived from `calls` (its zone resolved again after any edit) kept only the calls
-- that still exist, so the caps forgot them. With the number stored, a re-derivation keeps those rows
-- while the contact still holds the number they rang, and drops them once its phone was changed.
-- Documented in docs/schema.md.
-- migrate: one statement per transaction
-- (an ALTER and an UPDATE of the same non-empty table cannot commit together; each step is idempotent)

alter table phone_attempts add column if not exists phone_e164 varchar;

-- existing rows: the number their call rang; a deleted campaign's call, the number its contact holds now
update phone_attempts a set phone_e164 = c.phone_e164 from calls c where a.phone_e164 is null and c.call_id = a.call_id;

update phone_attempts a set phone_e164 = k.phone_e164 from contacts k where a.phone_e164 is null and k.contact_id = a.contact_id;
