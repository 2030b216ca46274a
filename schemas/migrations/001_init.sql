-- 001: the core tables of voice-campaigns. Every column is documented in docs/schema.md.
create sequence if not exists agent_id_seq start 1;
create sequence if not exists number_id_seq start 1;
create sequence if not exists campaign_id_seq start 1;
create sequence if not exists contact_id_seq start 1;
create sequence if not exists enroll_seq start 1;
create sequence if not exists call_id_seq start 1;
create sequence if not exists run_id_seq start 1;

create table agents (
    agent_id          bigint primary key default nextval('agent_id_seq'),
    name              varchar not null,
    provider_agent_id varchar,
    created_at        timestamptz not null default now()
);

create table phone_numbers (
    number_id        bigint primary key default nextval('number_id_seq'),
    e164             varchar not null unique,
    nickname         varchar,
    sip_trunk_status varchar not null default 'active' check (sip_trunk_status in ('active', 'inactive', 'error')),
    created_at       timestamptz not null default now()
);

create table campaigns (
    campaign_id          bigint primary key default nextval('campaign_id_seq'),
    name                 varchar not null,
    objective            varchar,
    agent_id             bigint not null,
    start_date           date,
    end_date             date,
    calling_days         varchar[] not null default ['mon', 'tue', 'wed', 'thu', 'fri'],
    weekly_schedule      json not null,
    time_zone            varchar not null,
    country              varchar,
    max_attempts         integer not null default 3 check (max_attempts between 1 and 20),
    attempts_per_day     integer not null default 1 check (attempts_per_day >= 1),
    batch_size           integer not null default 100 check (batch_size between 1 and 500),
    rotation_enabled     boolean not null default false,
    outbound_number_ids  bigint[] not null default [],
    active               boolean not null default false,
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now()
);

create table contacts (
    contact_id  bigint primary key default nextval('contact_id_seq'),
    phone_e164  varchar not null unique,
    name        varchar,
    company     varchar,
    email       varchar,
    properties  json not null default '{}',
    number_type varchar,
    region      varchar,
    time_zones  varchar[],
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);

create table campaign_contacts (
    campaign_id       bigint not null,
    contact_id        bigint not null,
    added_at          timestamptz not null default now(),
    enroll_seq        bigint not null default nextval('enroll_seq'),
    attempts          integer not null default 0,
    call_seq          integer not null default 0,
    attempts_day      date,
    attempts_on_day   integer not null default 0,
    last_call_at      timestamptz,
    in_flight_call_id bigint,
    finished_at       timestamptz,
    finished_reason   varchar check (finished_reason in ('successful', 'not_retryable', 'max_attempts')),
    next_call_at      timestamptz,
    primary key (campaign_id, contact_id)
);

create table calls (
    call_id               bigint primary key default nextval('call_id_seq'),
    campaign_id           bigint not null,
    contact_id            bigint not null,
    run_id                bigint,
    attempt_key           varchar not null unique,
    attempt_number        integer not null,
    counts_as_attempt     boolean not null default true,
    phone_e164            varchar not null,
    from_number           varchar,
    status                varchar not null check (status in (
        'queued', 'created', 'registered', 'in_progress', 'ended', 'not_connected', 'error', 'failed_rate_limit')),
    disconnect_reason     varchar check (disconnect_reason in (
        'dial_no_answer', 'dial_busy', 'dial_failed', 'voicemail_reached', 'user_hangup', 'agent_hangup',
        'user_declined', 'inactivity', 'max_duration_reached', 'call_transfer', 'marked_as_spam',
        'invalid_destination', 'concurrency_limit_reached', 'telephony_provider_unavailable',
        'telephony_provider_permission_denied', 'error_no_audio_received', 'error_asr', 'error_dapta',
        'error_unknown')),
    disconnect_reason_raw varchar,
    call_successful       boolean,
    user_sentiment        varchar check (user_sentiment in ('Positive', 'Neutral', 'Negative', 'Unknown')),
    in_voicemail          boolean,
    summary               varchar,
    duration_seconds      double,
    credits               integer,
    tools_count           integer,
    dynamic_variables     json,
    custom_analysis       json,
    transcript            varchar,
    recording_url         varchar,
    cost_cents            double,
    provider              varchar not null,
    provider_call_id      varchar,
    error_message         varchar,
    queued_at             timestamptz not null,
    registered_at         timestamptz,
    started_at            timestamptz,
    ended_at              timestamptz,
    analyzed_at           timestamptz,
    updated_at            timestamptz not null
);

create table call_feedback (
    call_id    bigint primary key,
    rating     varchar check (rating in ('up', 'down')),
    comment    varchar,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table dial_runs (
    run_id       bigint primary key default nextval('run_id_seq'),
    campaign_id  bigint not null,
    kind         varchar not null check (kind in ('scheduled', 'manual')),
    state        varchar not null check (state in ('running', 'completed', 'failed')),
    started_at   timestamptz not null,
    ended_at     timestamptz,
    calls_placed integer not null default 0,
    message      varchar,
    owner_host   varchar,
    owner_pid    integer,
    heartbeat_at timestamptz
);
