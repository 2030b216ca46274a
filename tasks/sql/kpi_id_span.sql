-- The contact ids kpis.sql's bitmaps must span: the campaign's enrolled contacts and its calls in range.
with ids as (
    select min(contact_id) as first_id, max(contact_id) as last_id
    from campaign_contacts
    where campaign_id = $campaign_id
    union all
    select min(contact_id), max(contact_id)
    from calls
    where campaign_id = $campaign_id and queued_at >= $lo and queued_at < $hi
),

final as (
    select min(first_id) as first_id, max(last_id) as last_id
    from ids
)

select * from final
