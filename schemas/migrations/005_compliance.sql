-- 005: compliance — legal calling rules, do-not-call lists, the claim audit, callee time zones.
-- The shipped rules are the rows of data/calling_rules.csv (a test keeps the two equal).
create table calling_rules (
    rule_id            varchar primary key,
    country            varchar,
    subdivision        varchar,
    mon                varchar,
    tue                varchar,
    wed                varchar,
    thu                varchar,
    fri                varchar,
    sat                varchar,
    sun                varchar,
    no_public_holidays boolean not null default false,
    max_calls_24h      integer check (max_calls_24h >= 0),
    max_calls_30d      integer check (max_calls_30d >= 0),
    source             varchar not null,
    updated_at         timestamptz not null default now()
);

insert into calling_rules (rule_id, country, subdivision, mon, tue, wed, thu, fri, sat, sun,
                           no_public_holidays, max_calls_24h, max_calls_30d, source) values
    ('US', 'US', null, '08:00-21:00', '08:00-21:00', '08:00-21:00', '08:00-21:00', '08:00-21:00', '08:00-21:00',
     '08:00-21:00', false, null, null,
     '47 CFR 64.1200(c)(1): calls only 08:00-21:00 at the called party''s location; AI voices are artificial voices (FCC 24-17)'),
    ('US-FL', 'US', 'FL', '08:00-20:00', '08:00-20:00', '08:00-20:00', '08:00-20:00', '08:00-20:00', '08:00-20:00',
     '08:00-20:00', false, 3, null,
     'Florida Telephone Solicitation Act, Fla. Stat. 501.059(8): 08:00-20:00 callee-local, at most 3 calls per 24 h on the same subject whatever the caller number'),
    ('FR', 'FR', null, '10:00-13:00 14:00-20:00', '10:00-13:00 14:00-20:00', '10:00-13:00 14:00-20:00',
     '10:00-13:00 14:00-20:00', '10:00-13:00 14:00-20:00', null, null, true, null, 4,
     'Code de la consommation L221-17 and Decret 2022-1313: Mon-Fri 10:00-13:00 and 14:00-20:00, never weekends or public holidays, at most 4 calls per 30 days'),
    ('CO', 'CO', null, '07:00-19:00', '07:00-19:00', '07:00-19:00', '07:00-19:00', '07:00-19:00', '08:00-15:00',
     null, true, null, null,
     'Colombia Ley 2300 de 2023 art. 3: Mon-Fri 07:00-19:00, Sat 08:00-15:00, never Sundays or public holidays'),
    ('DEFAULT', null, null, '09:00-20:00', '09:00-20:00', '09:00-20:00', '09:00-20:00', '09:00-20:00', '09:00-20:00',
     null, true, null, null,
     'voice-campaigns default for countries without a rule: Mon-Sat 09:00-20:00 callee-local, no Sundays or public holidays (conservative: edit or add a row per country)');

create sequence if not exists dnc_id_seq start 1;

create table do_not_call (
    dnc_id      bigint primary key default nextval('dnc_id_seq'),
    pattern     varchar not null,
    prefix      varchar not null,
    is_prefix   boolean not null,
    campaign_id bigint,
    reason      varchar,
    source      varchar not null,
    added_at    timestamptz not null
);

create table claim_audit (
    tick_at            timestamptz not null,
    campaign_id        bigint not null,
    run_kind           varchar not null,
    rule               varchar not null,
    skipped            integer not null,
    sample_contact_ids bigint[] not null
);

create table zone_keys (
    zone_key    integer primary key,
    time_zones  varchar[],
    country     varchar,
    subdivision varchar,
    zone_source varchar not null
);

alter table contacts add column time_zone_override varchar;
alter table contacts add column subdivision_override varchar;
alter table contacts add column subdivision varchar;
alter table contacts add column zone_source varchar;
alter table contacts add column zone_key integer;
alter table contacts add column zone_resolved_at timestamptz;
