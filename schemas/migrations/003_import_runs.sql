-- 003: an audit row per contact import (what file, what mapping, what it did). Documented in docs/schema.md.
create sequence if not exists import_id_seq start 1;

create table import_runs (
    import_id         bigint primary key default nextval('import_id_seq'),
    campaign_id       bigint not null,
    file_name         varchar not null,
    mapping           json not null,
    country           varchar,
    rows_read         integer not null,
    imported          integer not null,
    updated           integer not null,
    enrolled          integer not null,
    duplicates_merged integer not null,
    invalid           integer not null,
    imported_at       timestamptz not null
);
