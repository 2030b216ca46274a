-- 013: import_runs.warned — rows the import kept with a field left empty (a bad e-mail, name, company or
-- property beside a good phone). NULL for imports recorded before 013: those rejected such rows (`invalid`).
-- Documented in docs/schema.md.

alter table import_runs add column if not exists warned integer;
