-- 012: contacts of Washington State and D.C. area codes resolved again. The phone library names their
-- area codes "Washington State" / "Washington D.C.", which the state lookup did not know before 2026-12-05:
-- they got no state, so a WA or DC rule (or a D.C. holiday) never applied to them. Clearing
-- `zone_resolved_at` has the next claim that reaches them resolve them again (tasks/compliance.resolve_zones);
-- a state set by hand or mapped from a property is kept by that resolution. Documented in docs/schema.md.
update contacts set zone_resolved_at = null
where subdivision is null
  and left(phone_e164, 5) in ('+1206', '+1253', '+1360', '+1425', '+1509', '+1564', '+1202', '+1771');
