-- 007: phone_attempts — the counted attempts of the last 30 days per contact (a contact is one phone
-- number), so the rolling 24 h / 30 day caps are a lookup on the claim's candidates instead of a scan
-- of `calls`. Written in the claim's transaction (insert) and the refund's (delete); a contact's rows
-- are re-derived from `calls` by phone number whenever its zone is (re)resolved (new contact, edited
-- phone). Documented in docs/schema.md.
create table if not exists phone_attempts (
    contact_id   bigint not null,
    call_id      bigint not null,
    attempted_at timestamptz not null
);

-- existing stores: the last 31 days of counted attempts (relative to the newest call: stores may run
-- on a simulated clock), attributed to the contact who holds the number now
insert into phone_attempts
select k.contact_id, c.call_id, c.queued_at
from calls c join contacts k on k.phone_e164 = c.phone_e164
where c.counts_as_attempt and c.queued_at > (select max(queued_at) from calls) - interval 31 days
order by c.call_id;
