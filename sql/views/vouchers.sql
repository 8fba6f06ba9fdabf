-- Voucher events (lake_voucher_events, partitioned by event_date in OPS_TIMEZONE), one row per event_id: an
-- event published twice after a crash counts once. Amounts are integer minor units and DECIMAL major units.
CREATE OR REPLACE VIEW voucher_events AS
SELECT e.event_id, e.voucher_id, e.program_id, e.event, e.from_status, e.to_status, e.currency,
       e.face_value_minor, e.price_paid_minor,
       CAST(e.face_value_minor * c.unit AS DECIMAL(38, 4)) AS face_value,
       CAST(e.price_paid_minor * c.unit AS DECIMAL(38, 4)) AS price_paid,
       e.holder_id, e.actor, e.reason, e.event_at, e.event_date
FROM lake_voucher_events e
LEFT JOIN currencies c ON c.code = e.currency
QUALIFY row_number() OVER (PARTITION BY e.event_id ORDER BY e.event_at) = 1;

-- Each voucher as its events leave it: the latest status and holder, and the time it entered each status.
CREATE OR REPLACE VIEW vouchers AS
SELECT voucher_id, program_id, currency,
       arg_max(to_status, event_at) AS status,
       arg_max(holder_id, event_at) AS holder_id,
       any_value(face_value_minor) AS face_value_minor, any_value(price_paid_minor) AS price_paid_minor,
       any_value(face_value) AS face_value, any_value(price_paid) AS price_paid,
       min(event_at) FILTER (WHERE event = 'issued') AS issued_at,
       min(event_at) FILTER (WHERE event = 'distributed') AS distributed_at,
       min(event_at) FILTER (WHERE event = 'redeemed') AS redeemed_at,
       min(event_at) FILTER (WHERE event = 'expired') AS expired_at,
       min(event_at) FILTER (WHERE event = 'cancelled') AS cancelled_at,
       max(event_at) AS updated_at
FROM voucher_events
GROUP BY voucher_id, program_id, currency;

-- Vouchers per day, program and event: counts and sums (minor units), for daily reporting.
CREATE OR REPLACE VIEW voucher_daily AS
SELECT event_date, program_id, currency, event, count(*) AS vouchers,
       sum(face_value_minor) AS face_value_minor, sum(price_paid_minor) AS price_paid_minor
FROM voucher_events
GROUP BY ALL;
